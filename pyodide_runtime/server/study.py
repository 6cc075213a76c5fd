"""The study a server runs: the env spec, the study config file, and what ``/study.json`` tells the page.

The config file is a JSON object. Two keys have a meaning here, everything else is passed to the page as given:

- ``env_config``: the object passed to the env factory (omit it to call the factory with no argument);
- ``session``: session settings (``players``, ``fps``, ``input_delay``, ``episodes``, ``seed``, ...), checked
  against :class:`pyodide_runtime.config.SessionConfig` when that is available. ``players`` is the room size.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

__all__ = ["Study", "StudyError", "load_study", "validate_env", "safe_name"]

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

    @property
    def players(self) -> int:
        session = self.config.get("session") or {}
        return int(session.get("players", 2))

    @property
    def env_config(self) -> dict[str, Any] | None:
        return self.config.get("env_config")

    @property
    def file_name(self) -> str | None:
        return self.env_file.name if self.env_file is not None else None

    def describe(self) -> dict[str, Any]:
        """The study part of ``/study.json``."""
        env: dict[str, Any] = {"spec": self.env_spec, "function": self.function, "file": None}
        if self.env_file is not None:
            # The page writes the file into its own file system; where it lives on this machine is not its concern.
            env["spec"] = f"{self.env_file.name}:{self.function}"
            env["file"] = {
                "url": "/study/" + quote(self.env_file.name),
                "name": self.env_file.name,
                "sha256": hashlib.sha256(self.env_file.read_bytes()).hexdigest(),
            }
        return {"study": self.id, "env": env, "players": self.players, "config": self.config}


def load_study(env_spec: str, config_path: Path | None = None, study_id: str | None = None) -> Study:
    """Parse the env spec and the config file (without importing the env); raise :class:`StudyError`."""
    target, sep, function = env_spec.rpartition(":")
    if not sep or not target or not function:
        raise StudyError(f"--env {env_spec!r} must look like 'package.module:function' or 'path/to/file.py:function'")
    env_file: Path | None = None
    if target.endswith(".py") or "/" in target or "\\" in target:
        env_file = Path(target).expanduser().resolve()
        if not env_file.is_file():
            raise StudyError(f"--env {env_spec!r}: env file {target} not found")
    config: dict[str, Any] = {}
    if config_path is not None:
        try:
            config = json.loads(Path(config_path).read_text(encoding="utf-8"))
        except OSError as exc:
            raise StudyError(f"--config {config_path}: cannot read it ({exc.strerror or exc})") from None
        except json.JSONDecodeError as exc:
            raise StudyError(f"--config {config_path}: not valid JSON ({exc})") from None
        if not isinstance(config, dict):
            raise StudyError(f"--config {config_path}: must hold a JSON object, not {type(config).__name__}")
    env_config = config.get("env_config")
    if env_config is not None and not isinstance(env_config, dict):
        raise StudyError(f"--config {config_path}: 'env_config' must be an object")
    session = config.get("session", {})
    if not isinstance(session, dict):
        raise StudyError(f"--config {config_path}: 'session' must be an object")
    _check_session(session, config_path)
    default_id = env_file.stem if env_file is not None else target.rsplit(".", 1)[-1]
    return Study(
        id=safe_name(study_id or default_id),
        env_spec=env_spec,
        function=function,
        env_file=env_file,
        config=config,
    )


def _check_session(session: dict[str, Any], config_path: Path | None) -> None:
    players = session.get("players", 2)
    if type(players) is not int or not 1 <= players <= 16:
        raise StudyError(f"--config {config_path}: session.players must be an integer between 1 and 16")
    try:
        from pyodide_runtime.config import ConfigError, SessionConfig
    except ImportError:  # the core is optional for serving
        return
    try:
        SessionConfig(**session)
    except TypeError as exc:
        raise StudyError(f"--config {config_path}: session: {exc}") from None
    except ConfigError as exc:
        raise StudyError(f"--config {config_path}: {exc}") from None


def validate_env(study: Study) -> str | None:
    """Load the env in CPython as the page will; raise :class:`StudyError` naming the problem.

    Returns a warning for module specs the page may not be able to import (not shipped in the served wheels),
    or ``None``. Skipped (returns ``None``) when the env loader is not installed.
    """
    try:
        from pyodide_runtime.envs.loading import load_game
    except ImportError:
        return None
    spec = study.env_spec if study.env_file is None else f"{study.env_file}:{study.function}"
    try:
        load_game(spec, study.env_config)
    except Exception as exc:  # any failure of the researcher's code is reported, not raised
        raise StudyError(f"cannot load env {study.env_spec!r}: {type(exc).__name__}: {exc}") from None
    if study.env_file is None:
        top = study.env_spec.split(":", 1)[0].split(".", 1)[0]
        if top != "pyodide_runtime":
            return (
                f"env module {top!r} is not part of the pyodide_runtime wheel; the page can only import it if "
                "its wheel is among the served assets. A file spec (path/to/env.py:function) is served as is."
            )
    return None
