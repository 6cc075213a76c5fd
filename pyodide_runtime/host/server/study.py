"""The study a server runs: the env spec, the study config file, and what ``/study.json`` tells the page.

The config file (TOML or JSON) is read and checked by :mod:`pyodide_runtime.host.study_config`; ``config`` holds its
normalised page form (``env_config``, ``session``, ``bots``, ``controls``, ...). ``session.players`` is the room
size. The format is documented in ``docs/study-config.md``.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

from pyodide_runtime.host.study_config import (
    SESSION_FIELDS,
    StudyConfig,
    StudyConfigError,
    load_study_config,
)

__all__ = ["Study", "StudyError", "load_study", "validate_env", "check_practice", "check_study", "safe_name",
           "resolve_policies", "POLICIES_URL"]

#: Where the page fetches a policy's model: ``/policies/<sha256>.onnx``.
POLICIES_URL = "/policies/"
_UNSAFE = re.compile(r"(?:[^A-Za-z0-9._-]|\.{2,})+")


class StudyError(ValueError):
    """The env spec or the config file is unusable; the message names the problem."""


def safe_name(text: str, *, limit: int = 64, fallback: str = "_") -> str:
    """A file-name-safe form of ``text``: ``[A-Za-z0-9._-]``, no ``..``, no leading dot, at most ``limit`` chars."""
    name = _UNSAFE.sub("_", text).strip("._")[:limit]
    return name or fallback


@dataclass(frozen=True)
class Study:
    """One study: what the server serves about it."""

    id: str
    env_spec: str
    function: str
    #: The env's source file when the spec names a file; it is served at ``/study/<file_name>``.
    env_file: Path | None
    config: dict[str, Any]
    #: From the config file's ``[data]`` and ``[relay]`` tables (server settings the command line may override).
    data_dir: Path | None = None
    upload: bool = True
    ice_servers: tuple[str, ...] = ()
    #: ``[env] packages``: requirement strings the page loads with the runtime.
    packages: tuple[str, ...] = ()
    #: ``[env] source``: the env's local directory, packed into a wheel for the page.
    env_source: Path | None = None
    #: ``[env] exclude``: declared dependencies of ``packages`` the page does not load (the env never imports them).
    exclude: tuple[str, ...] = ()
    #: The prepared packages (a :class:`pyodide_runtime.host.packages.StudyPackages`), set by ``serve`` at start-up.
    resolved: Any = None
    #: The files the scenes reference (images), by path relative to the config file; served at
    #: ``/study-files/<path>`` and nothing else there.
    study_files: Mapping[str, Path] = field(default_factory=dict)
    #: The waiting scene's ``max_sessions`` (``None``: no limit from the config file).
    max_sessions: int | None = None
    #: ``[policies]``: agent -> :class:`pyodide_runtime.policies.PolicySpec`.
    policies: Mapping[str, Any] = field(default_factory=dict)
    #: The policies resolved against the env and their models (``ResolvedPolicy.to_json()`` plus the model's URL),
    #: set by :func:`resolve_policies` at start-up; ``/study.json`` hands them to the page.
    resolved_policies: tuple[dict[str, Any], ...] = ()

    @property
    def players(self) -> int:
        """Seats in a session: every participant's and every policy's."""
        session = self.config.get("session") or {}
        return int(session.get("players", SESSION_FIELDS["players"]))

    @property
    def pages(self) -> int:
        """Participant pages in a session (the room size): the seats no policy plays."""
        return self.players - len(self.policies)

    def policy_model(self, name: str) -> Path | None:
        """The model file served as ``/policies/<name>`` (``<sha256>.onnx``), or ``None``."""
        for entry in self.resolved_policies:
            if entry["url"] == f"{POLICIES_URL}{name}":
                return self.policies[entry["agent"]].model
        return None

    @property
    def env_config(self) -> dict[str, Any] | None:
        return self.config.get("env_config")

    @property
    def file_name(self) -> str | None:
        return self.env_file.name if self.env_file is not None else None

    def describe(self) -> dict[str, Any]:
        """The study part of ``/study.json``."""
        env: dict[str, Any] = {"spec": self.env_spec, "function": self.function, "file": None,
                               "packages": list(self.resolved.load_names) if self.resolved is not None else []}
        if self.env_file is not None:
            # The page writes the file into its own file system; where it lives on this machine is not its concern.
            env["spec"] = f"{self.env_file.name}:{self.function}"
            env["file"] = {
                "url": "/study/" + quote(self.env_file.name),
                "name": self.env_file.name,
                "sha256": hashlib.sha256(self.env_file.read_bytes()).hexdigest(),
            }
        return {"study": self.id, "env": env, "players": self.players, "pages": self.pages, "config": self.config,
                "policies": [dict(p) for p in self.resolved_policies]}


def load_study(env_spec: str | None, config_path: Path | None = None, study_id: str | None = None) -> Study:
    """Parse the env spec and the config file (without importing the env); raise :class:`StudyError`.

    ``env_spec`` (the command line's ``--env``) wins over the config file's ``env.spec``; one of them is needed.
    """
    loaded = StudyConfig(page={"session": {}})
    if config_path is not None:
        try:
            loaded = load_study_config(config_path)
        except StudyConfigError as exc:
            raise StudyError(f"--config {exc}") from None
    where = "--env"
    if env_spec is None:
        env_spec, where = loaded.env_spec, "env.spec"
    if env_spec is None:
        raise StudyError("no env given: pass --env SPEC, set env.spec in the --config TOML file, or use --example NAME")
    target, sep, function = env_spec.rpartition(":")
    if not sep or not target or not function:
        raise StudyError(f"{where} {env_spec!r} must look like 'package.module:function' or 'path/to/file.py:function'")
    env_file: Path | None = None
    if target.endswith(".py") or "/" in target or "\\" in target:
        env_file = Path(target).expanduser().resolve()
        if not env_file.is_file():
            raise StudyError(f"{where} {env_spec!r}: env file {target} not found")
    default_id = env_file.stem if env_file is not None else target.rsplit(".", 1)[-1]
    return Study(
        id=safe_name(study_id or default_id),
        env_spec=env_spec,
        function=function,
        env_file=env_file,
        config=loaded.page,
        data_dir=loaded.data_dir,
        upload=loaded.upload,
        ice_servers=loaded.ice_servers,
        packages=loaded.packages,
        env_source=loaded.env_source,
        exclude=loaded.exclude,
        study_files=dict(loaded.study_files),
        max_sessions=loaded.max_sessions,
        policies=dict(loaded.policies),
    )


def env_target(study: Study) -> Any:
    """The study's env as ``check-env`` sees it: spec, config, bots, packages and env directory."""
    from pyodide_runtime.host.checkenv.target import EnvTarget

    spec = study.env_spec if study.env_file is None else f"{study.env_file}:{study.function}"
    return EnvTarget(spec, study.env_config, dict(study.config.get("bots") or {}), study.env_source, study.packages,
                     study.exclude)


def validate_env(study: Study) -> str | None:
    """Load the env in CPython as the page will; raise :class:`StudyError` naming the problem.

    Returns a warning for module specs the page may not be able to import (not shipped in the served wheels),
    or ``None``. Skipped (returns ``None``) when the env loader is not installed.
    """
    try:
        from pyodide_runtime.envs.loading import load_game
    except ImportError:
        return None
    target = env_target(study)
    try:
        game = target.load_game(verify=True)
    except Exception as exc:  # any failure of the researcher's code is reported, not raised
        raise StudyError(f"cannot load env {study.env_spec!r}: {type(exc).__name__}: {exc}") from None
    if len(game.seats) != study.players:
        bots = sorted(set(game.agents) - set(game.seats))
        raise StudyError(
            f"session.players is {study.players} but the env has {len(game.seats)} human seat(s) "
            f"({', '.join(game.seats)}; bots: {', '.join(bots) or 'none'}); give every agent without a human a bot"
            " in [bots], or change session.players"
        )
    if study.policies:
        last = list(game.seats[study.pages:])
        if sorted(last) != sorted(study.policies):
            raise StudyError(
                f"[policies] must play the last seats: the env's seats are {', '.join(game.seats)}, so with "
                f"{len(study.policies)} policies they must be {', '.join(last)}, not {', '.join(sorted(study.policies))}"
            )
    away = study.config.get("away_action")
    for seat in range(len(game.seats)):
        if away is not None and not 0 <= away < game.input_count(seat):
            raise StudyError(f"away_action {away} is not an action of seat {seat} (0..{game.input_count(seat) - 1})")
    check_practice(study)
    return None


def resolve_policies(study: Study) -> Study:
    """Check every policy against the env and its model (names, shapes, dtypes, one score per action) and return
    the study with ``resolved_policies`` set; raise :class:`StudyError` naming the problem."""
    if not study.policies:
        return study
    from dataclasses import replace

    from pyodide_runtime.policies import PolicyError, resolve_policy

    game = env_target(study).load_game(verify=False)
    observations = game.reset(int((study.config.get("session") or {}).get("seed", 0) or 0)).observations
    resolved = []
    for agent, spec in sorted(study.policies.items()):
        seat = list(game.seats).index(agent)
        try:
            policy = resolve_policy(spec, seat, game.input_count(seat), observations[agent])
        except PolicyError as exc:
            raise StudyError(f"[policies.{agent}]: {exc}") from None
        except ImportError as exc:
            raise StudyError(f"[policies.{agent}]: checking the model needs the onnx package ({exc}); "
                             "install it with: pip install 'pyodide-runtime[ai]'") from None
        entry = policy.to_json()
        entry["url"] = f"{POLICIES_URL}{entry['model_sha256']}.onnx"
        resolved.append(entry)
    return replace(study, resolved_policies=tuple(resolved))


def check_practice(study: Study) -> None:
    """Load the env of every practice scene (its ``env_config`` and ``bots``) as the page will; each must leave
    exactly one agent to the participant, since practice is played alone. Raises :class:`StudyError`."""
    from dataclasses import replace

    for index, scene in enumerate(study.config.get("scenes") or ()):
        if scene.get("kind") != "practice":
            continue
        where = f"scenes[{index}] (practice {scene.get('id')!r})"
        target = replace(env_target(study), config=scene.get("env_config"), bots=dict(scene.get("bots") or {}))
        try:
            game = target.load_game(verify=True)
        except Exception as exc:  # any failure of the researcher's code is reported, not raised
            raise StudyError(f"{where}: cannot load env {study.env_spec!r} with the practice's env_config and bots: "
                             f"{type(exc).__name__}: {exc}") from None
        if len(game.seats) != 1:
            bots = sorted(set(game.agents) - set(game.seats))
            raise StudyError(
                f"{where}: practice is played alone, so exactly one agent must be left to the participant, but "
                f"{len(game.seats)} are ({', '.join(game.seats)}; bots: {', '.join(bots) or 'none'}); give the "
                "others a bot in the scene's bots table"
            )


#: Frames the start-up study check steps the env with random inputs.
CHECK_FRAMES = 300


def check_study(study: Study, assets: Path | None, *, frames: int = CHECK_FRAMES, timeout: float = 300.0) -> str:
    """The start-up study check: in a fresh interpreter, load the env as the page will, step it ``frames`` frames
    with seeded random inputs, and check every module it imports against what the page loads (the study's lock).

    Raises :class:`StudyError` with the env's exception at its file and line, or with each module the page could
    not import and the ``[env]`` line that fixes it. Returns a one-line summary.
    """
    from pyodide_runtime.host.checkenv.determinism import child_search_path
    from pyodide_runtime.host.checkenv.pyodide import check_modules, page_modules

    target = env_target(study)
    args = json.dumps({"target": target.to_json(), "seed": 0, "frames": frames, "modules": True,
                       "report_errors": True})
    env = {**os.environ, "PYTHONHASHSEED": "0", "PYTHONPATH": child_search_path()}
    try:
        proc = subprocess.run([sys.executable, "-m", "pyodide_runtime.host.checkenv.rollout", args], capture_output=True,
                              text=True, env=env, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise StudyError(f"the env did not step {frames} frames within {timeout:.0f} s at start-up") from None
    if proc.returncode != 0:
        last = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        raise StudyError(f"the start-up study check could not run the env: {last}")
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    error = out.get("error")
    if error:
        where = f"{error['file']}:{error['line']}" if error.get("file") else "unknown location"
        phase = {"load": "while loading and verifying snapshots", "reset": f"in reset (episode {error['episode']})",
                 "step": f"in step at frame {error['frame']} of episode {error['episode']}"}.get(error["phase"], "")
        raise StudyError(f"the env raised {error['type']}: {error['message']} {phase}, at {where}"
                         + (f": {error['code']}" if error.get("code") else "")
                         + f" (start-up check: {frames} frames of random inputs; fix the env before recruiting)")
    result = check_modules(out["modules"], page_modules(target, assets, study.resolved))
    if result.failed:
        raise StudyError(f"{result.message}. Fix: {result.fix}")
    return f"stepped {frames} frames with random inputs; {result.message}"
