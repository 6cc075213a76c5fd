"""The study config file: one TOML (or JSON) file that describes a whole study.

:func:`load_study_config` reads, checks and normalises a config file. Every error names the file and the dotted
field (``study.toml: session.fps: must be between 1 and 240 (got 0)``); unknown keys are errors, with a "did you
mean" when a known key is close. The result holds ``page``, the plain dict the participant page reads from
``/study.json`` under ``config`` (``title``, ``instructions``, ``test_mode``, ``env_config``, ``session``,
``bots``, ``controls``, ``network``, ``relay``, ``p2p_timeout_ms``, ``away_action``, ``scenes``), plus what only
the server uses (the env spec, the data directory, ICE servers, the files the scenes reference, ``max_sessions``).
``[[scenes]]`` is checked and normalised by ``_Scenes``: ids and defaults filled in, image paths in texts checked
and turned into ``/study-files/`` addresses. JSON files use that flat page layout directly; TOML files
group it into tables (``[env]``, ``[session]``, ``[bots]``, ``[controls]``, ``[network]``, ``[relay]``,
``[data]``). The full format is in ``docs/study-config.md``.

The example studies shipped in :mod:`pyodide_runtime.examples` are found with :func:`list_examples` and
:func:`example_config`. This module needs only the standard library (no aiohttp, no numpy).
"""

from __future__ import annotations

import difflib
import json
import math
import re
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote

__all__ = [
    "StudyConfig", "StudyConfigError", "load_study_config", "parse_study_config", "example_config",
    "list_examples", "SESSION_FIELDS", "CONDITION_KEYS", "Condition", "NETWORK_CONDITIONS", "P2P_TIMEOUT_MS",
    "P2P_TIMEOUT_MAX_MS", "SCENE_KINDS", "SCENE_KEYS", "QUESTION_KEYS", "IMAGE_SUFFIXES", "IMAGE_MAX_BYTES",
    "STUDY_FILES_URL", "practice_scenes",
]


@dataclass(frozen=True)
class Condition:
    """One network condition key: its default, the largest value a study config may give, and its kind."""

    default: int | float
    high: int | float
    #: A per-packet probability (at most 1).
    probability: bool = False
    #: Only whole numbers (the seed).
    integer: bool = False
    #: Qualifies the other conditions (the seed, the reorder delay): set alone, it conditions nothing.
    modifier: bool = False

    def to_json(self) -> dict[str, Any]:
        return {"default": self.default, "max": self.high, "probability": self.probability,
                "integer": self.integer, "modifier": self.modifier}


#: The network conditions a test study or test URL may ask for, in order. The single source for the study config
#: check, the page's conditioner (``js_bridge/conditioner.mjs``, served in ``/study.json`` ``page_config``) and the
#: defaults of :class:`pyodide_runtime.host.testing.netsim.LinkSpec`.
NETWORK_CONDITIONS: dict[str, Condition] = {
    "latency_ms": Condition(0, 60_000),
    "jitter_ms": Condition(0, 60_000),
    "loss": Condition(0, 1, probability=True),
    "reorder": Condition(0, 1, probability=True),
    "reorder_ms": Condition(60, 60_000, modifier=True),
    "duplicate": Condition(0, 1, probability=True),
    "seed": Condition(0, 2**32 - 1, integer=True, modifier=True),
}
#: Network condition keys; probabilities are at most 1.
CONDITION_KEYS = tuple(NETWORK_CONDITIONS)
_PROBABILITIES = tuple(key for key, c in NETWORK_CONDITIONS.items() if c.probability)

#: How long WebRTC may take to open before the page falls back to the relay, unless ``relay.p2p_timeout_ms`` says.
P2P_TIMEOUT_MS = 5000
#: The largest ``relay.p2p_timeout_ms`` a study config may give.
P2P_TIMEOUT_MAX_MS = 600_000


def _session_fields() -> dict[str, Any]:
    from pyodide_runtime.config import session_defaults  # pure Python, no numpy

    return session_defaults()


#: Every ``[session]`` key with its default (the fields of :class:`pyodide_runtime.config.SessionConfig`).
SESSION_FIELDS: dict[str, Any] = _session_fields()


class StudyConfigError(ValueError):
    """A config file that cannot be used; the message names the file and the field."""


@dataclass(frozen=True)
class StudyConfig:
    """A checked study config.

    ``page`` is what the participant page reads (``/study.json`` ``config``); the other fields are for the server.
    """

    page: dict[str, Any]
    #: ``env.spec`` from the file (a file spec is made absolute, relative to the config file), or ``None``.
    env_spec: str | None = None
    #: ``data.dir`` (absolute), where the server stores uploads unless ``--data-dir`` is given.
    data_dir: Path | None = None
    #: ``data.upload``: ``False`` turns uploads off even when the server has a data directory.
    upload: bool = True
    #: ``relay.ice_servers``: STUN/TURN URLs added to the server's ``--ice-server`` list.
    ice_servers: tuple[str, ...] = ()
    source: Path | None = None
    #: ``env.packages``: pip requirement strings the page loads with the runtime (resolved and self-hosted by serve).
    packages: tuple[str, ...] = ()
    #: ``env.source``: a local env directory (absolute), packed into a wheel the page installs.
    env_source: Path | None = None
    #: ``env.exclude``: names of declared dependencies the page does not load because the env never imports them.
    exclude: tuple[str, ...] = ()
    #: The files the scenes' texts reference (images), by their path relative to the config file's folder; the
    #: server serves exactly these at ``/study-files/<path>``.
    study_files: Mapping[str, Path] = field(default_factory=dict)
    #: The waiting scene's ``max_sessions``: how many sessions the study needs (``None``: no limit).
    max_sessions: int | None = None
    #: ``[policies]``: agent -> :class:`pyodide_runtime.policies.PolicySpec` (an ONNX model playing that agent's seat).
    policies: Mapping[str, Any] = field(default_factory=dict)

    @property
    def players(self) -> int:
        return int(self.page.get("session", {}).get("players", SESSION_FIELDS["players"]))


def load_study_config(path: Path | str) -> StudyConfig:
    """Read ``path`` (``.toml``, else JSON) and return the checked, normalised config."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise StudyConfigError(f"{path}: cannot read it ({exc.strerror or exc})") from None
    except UnicodeDecodeError as exc:
        raise StudyConfigError(f"{path}: not UTF-8 text ({exc})") from None
    if path.suffix.lower() == ".toml":
        try:
            raw = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise StudyConfigError(f"{path}: not valid TOML ({exc})") from None
        return parse_study_config(raw, source=path, layout="toml")
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as exc:
        raise StudyConfigError(f"{path}: not valid JSON ({exc})") from None
    if not isinstance(raw, dict):
        raise StudyConfigError(f"{path}: must hold a JSON object, not {type(raw).__name__}")
    return parse_study_config(raw, source=path, layout="json")


def parse_study_config(raw: Mapping[str, Any], *, source: Path | None = None, layout: str = "toml") -> StudyConfig:
    """Check and normalise an already parsed config (``layout`` ``"toml"`` or the flat ``"json"`` one)."""
    name = str(source) if source is not None else "study config"
    base = source.resolve().parent if source is not None else Path.cwd()
    reader = _Reader(name)
    if layout == "toml":
        return _parse_toml(reader, dict(raw), base, source)
    if layout == "json":
        return _parse_json(reader, dict(raw), base, source)
    raise ValueError(f"layout must be 'toml' or 'json', not {layout!r}")


# -- the two layouts ----------------------------------------------------------------------------------------------

_TOML_TOP = ("title", "instructions", "completion_url", "test_mode", "away_action", "env", "session", "bots",
             "policies", "controls", "network", "relay", "data", "scenes")
_JSON_TOP = ("title", "instructions", "completion_url", "test_mode", "away_action", "env_config", "session", "bots",
             "policies", "controls", "network", "relay", "p2p_timeout_ms", "scenes")


def _parse_toml(r: _Reader, raw: dict[str, Any], base: Path, source: Path | None) -> StudyConfig:
    r.known(raw, "", _TOML_TOP)
    page = _common(r, raw)
    env_spec = None
    packages: tuple[str, ...] = ()
    env_source: Path | None = None
    exclude: tuple[str, ...] = ()
    env = r.table(raw, "env")
    if env is not None:
        r.known(env, "env", ("spec", "config", "packages", "source", "exclude"))
        if (directory := r.string(env, "env.source")) is not None:
            env_source = (base / Path(directory).expanduser()).resolve()
            if not env_source.is_dir():
                r.fail("env.source", f"env directory {env_source} not found (paths are relative to the config file)")
        spec = r.string(env, "env.spec")
        if spec is not None:
            env_spec = _env_spec(r, spec, base, env_source)
        packages = _packages(r, env)
        exclude = _exclude(r, env)
        env_config = r.table(env, "env.config")
        if env_config is not None:
            page["env_config"] = env_config
    relay = r.table(raw, "relay")
    ice: tuple[str, ...] = ()
    if relay is not None:
        r.known(relay, "relay", ("force", "p2p_timeout_ms", "ice_servers"))
        if (force := r.boolean(relay, "relay.force")) is not None:
            page["relay"] = force
        if (timeout := r.number(relay, "relay.p2p_timeout_ms", 0, P2P_TIMEOUT_MAX_MS)) is not None:
            page["p2p_timeout_ms"] = timeout
        ice = _ice_servers(r, relay)
    data_dir, upload = None, True
    data = r.table(raw, "data")
    if data is not None:
        r.known(data, "data", ("upload", "dir"))
        if (flag := r.boolean(data, "data.upload")) is not None:
            upload = flag
        if (directory := r.string(data, "data.dir")) is not None:
            data_dir = (base / Path(directory).expanduser()).resolve()
    files, max_sessions = _scenes(r, raw, page, base)
    return StudyConfig(page, env_spec, data_dir, upload, ice, source, packages, env_source, exclude, files,
                       max_sessions, _policies(r, raw, page, base))


def _scenes(r: _Reader, raw: dict[str, Any], page: dict[str, Any], base: Path) -> tuple[dict[str, Path], int | None]:
    """``scenes`` (after every other key, whose values the scenes' defaults come from) into ``page``."""
    if raw.get("scenes") is None:
        return {}, None
    scenes = _Scenes(r, base, page)
    page["scenes"] = scenes.parse(raw["scenes"])
    return scenes.files, scenes.max_sessions


def _parse_json(r: _Reader, raw: dict[str, Any], base: Path, source: Path | None) -> StudyConfig:
    r.known(raw, "", _JSON_TOP)
    page = _common(r, raw)
    if "env_config" in raw:
        page["env_config"] = r.table(raw, "env_config")
    if (force := r.boolean(raw, "relay")) is not None:
        page["relay"] = force
    if (timeout := r.number(raw, "p2p_timeout_ms", 0, P2P_TIMEOUT_MAX_MS)) is not None:
        page["p2p_timeout_ms"] = timeout
    files, max_sessions = _scenes(r, raw, page, base)
    return StudyConfig(page, source=source, study_files=files, max_sessions=max_sessions,
                       policies=_policies(r, raw, page, base))


def _common(r: _Reader, raw: dict[str, Any]) -> dict[str, Any]:
    """The keys both layouts share, in the page's form."""
    page: dict[str, Any] = {}
    for key in ("title", "instructions"):
        if (text := r.string(raw, key)) is not None:
            page[key] = text
    if (url := r.string(raw, "completion_url")) is not None:
        # Shown as a link once the data is saved; only web addresses, never script or data URLs.
        if not url.startswith(("https://", "http://")) or any(c.isspace() for c in url):
            r.fail("completion_url", f"must be an http(s) address without spaces, e.g. the recruitment platform's "
                                     f"completion link (got {url!r})")
        page["completion_url"] = url
    test_mode = r.boolean(raw, "test_mode")
    if test_mode is not None:
        page["test_mode"] = test_mode
    page["session"] = _session(r, r.table(raw, "session") or {})
    if (away := r.integer(raw, "away_action", 0, 255)) is not None:
        page["away_action"] = away
    if (bots := r.table(raw, "bots")) is not None:
        _check_bots(r, bots, "bots")
        page["bots"] = dict(bots)
    if (controls := r.table(raw, "controls")) is not None:
        for key in controls:
            r.integer(controls, f"controls.{key}", 0, 255, required=True)
        page["controls"] = dict(controls)
    if (network := r.table(raw, "network")) is not None:
        page["network"] = _network(r, network)
        if not page.get("test_mode"):
            r.fail("network", "network conditions are only honoured in test mode; add test_mode = true")
    return page


def _policies(r: _Reader, raw: dict[str, Any], page: dict[str, Any], base: Path) -> dict[str, Any]:
    """``[policies]``: each agent's ONNX policy, checked (the model file must exist; it is resolved against the env
    when the server starts). The page learns the agents in ``page["policies"]``."""
    table = r.table(raw, "policies")
    if not table:
        return {}
    from pyodide_runtime.policies.spec import PolicyError, PolicySpec

    specs: dict[str, Any] = {}
    for agent, entry in table.items():
        where = f"policies.{agent}"
        if not isinstance(entry, dict):
            r.fail(where, "must be a table with at least model = \"file.onnx\" (see docs/ai-partners.md)")
        if agent in (page.get("bots") or {}):
            r.fail(where, f"agent {agent!r} has a bot in [bots] too; give it either a bot or a policy")
        try:
            specs[agent] = PolicySpec.from_table(agent, entry, base)
        except PolicyError as exc:  # its message starts with the field (policies.<agent>.<key>)
            raise StudyConfigError(f"{r.name}: {exc}") from None
    if int(page["session"].get("rejoin_grace_ms", 0) or 0) > 0:
        r.fail("session.rejoin_grace_ms", "rejoining is not available in a study with [policies]: the page that runs "
                                          "a policy cannot rebuild it after a reload; set rejoin_grace_ms = 0")
    page["policies"] = sorted(specs)
    return specs


def _session(r: _Reader, session: dict[str, Any]) -> dict[str, Any]:
    from pyodide_runtime.config import ConfigError, SessionConfig

    r.known(session, "session", tuple(SESSION_FIELDS))
    for key, value in session.items():
        default = SESSION_FIELDS[key]
        if isinstance(default, bool):
            if type(value) is not bool:
                r.fail(f"session.{key}", f"must be true or false (got {value!r})")
        elif isinstance(default, int) and (type(value) is not int):
            r.fail(f"session.{key}", f"must be an integer (got {value!r})")
        if isinstance(default, str) and not isinstance(value, str):
            r.fail(f"session.{key}", f"must be a string (got {value!r})")
    try:
        SessionConfig(**session)
    except ConfigError as exc:
        # "SessionConfig.fps = 0: must be between 1 and 240" -> "session.fps: must be between 1 and 240 (got 0)"
        text = str(exc)
        head, _, rule = text.partition(": ")
        key, _, value = head.removeprefix("SessionConfig.").partition(" = ")
        r.fail(f"session.{key}", f"{rule} (got {value})")
    return dict(session)


def _network(r: _Reader, network: dict[str, Any]) -> dict[str, Any]:
    r.known(network, "network", (*CONDITION_KEYS, "seats"))
    out = {key: _condition(r, network, "network", key) for key in CONDITION_KEYS if key in network}
    if "seats" in network:
        seats = r.table(network, "network.seats") or {}
        out["seats"] = {}
        for seat, conditions in seats.items():
            where = f"network.seats.{seat}"
            if not seat.isdigit():
                r.fail(where, "seat keys are seat numbers: 0, 1, ...")
            if not isinstance(conditions, dict):
                r.fail(where, "must be a table of network conditions")
            r.known(conditions, where, CONDITION_KEYS)
            out["seats"][seat] = {key: _condition(r, conditions, where, key) for key in conditions}
    return out


def _condition(r: _Reader, table: dict[str, Any], where: str, key: str) -> float | int:
    condition = NETWORK_CONDITIONS[key]
    read = r.integer if condition.integer else r.number
    value = read(table, f"{where}.{key}", 0, condition.high)
    assert value is not None
    return value


def _ice_servers(r: _Reader, relay: dict[str, Any]) -> tuple[str, ...]:
    if "ice_servers" not in relay:
        return ()
    urls = relay["ice_servers"]
    if not isinstance(urls, list) or not all(isinstance(u, str) for u in urls):
        r.fail("relay.ice_servers", "must be a list of STUN/TURN URLs, e.g. [\"stun:stun.example.org:3478\"]")
    for url in urls:
        if not url.startswith(("stun:", "stuns:", "turn:", "turns:")):
            r.fail("relay.ice_servers", f"{url!r} must start with stun:, stuns:, turn: or turns:")
    return tuple(urls)


def _env_spec(r: _Reader, spec: str, base: Path, source: Path | None = None) -> str:
    target, sep, function = spec.rpartition(":")
    if not sep or not target or not function:
        r.fail("env.spec", f"{spec!r} must look like 'package.module:function' or 'path/to/file.py:function'")
    is_file = target.endswith(".py") or "/" in target or "\\" in target
    if source is not None:
        if is_file:
            r.fail("env.spec", f"with env.source, name the factory as 'module:function' inside that directory "
                               f"(got the file path {target!r})")
        return spec
    if is_file:
        path = (base / Path(target).expanduser()).resolve()
        if not path.is_file():
            r.fail("env.spec", f"env file {path} not found (file paths are relative to the config file)")
        return f"{path}:{function}"
    return spec


def _packages(r: _Reader, env: Mapping[str, Any]) -> tuple[str, ...]:
    """``env.packages``: a list of pip requirement strings (checked in full when serve resolves them)."""
    value = r._get(env, "env.packages", lambda v: isinstance(v, list), "must be a list of requirement strings, "
                   "e.g. [\"pettingzoo==1.27.0\", \"scipy\"]")
    if value is None:
        return ()
    out: list[str] = []
    for i, item in enumerate(value):
        if not isinstance(item, str) or not item.strip() or item.strip().startswith(("-", "/", ".")) or "://" in item:
            r.fail(f"env.packages[{i}]", f"must be a pip requirement string such as \"name==1.2\" or \"name>=2\" "
                                         f"(got {item!r})")
        out.append(item.strip())
    return tuple(out)


_NAME = re.compile(r"^([A-Za-z0-9]|[A-Za-z0-9][A-Za-z0-9._-]*[A-Za-z0-9])$")


def _exclude(r: _Reader, env: Mapping[str, Any]) -> tuple[str, ...]:
    """``env.exclude``: a list of package names (no versions) that the packages declare but the env never imports;
    the page does not load them (the start-up check still refuses the study if the env imports one)."""
    value = r._get(env, "env.exclude", lambda v: isinstance(v, list), "must be a list of package names, "
                   "e.g. [\"opencv-python\"]")
    if value is None:
        return ()
    out: list[str] = []
    for i, item in enumerate(value):
        if not isinstance(item, str) or not _NAME.match(item.strip()):
            r.fail(f"env.exclude[{i}]", f"must be a package name such as \"opencv-python\", without a version "
                                        f"(got {item!r})")
        out.append(item.strip())
    return tuple(out)


# -- value checks -------------------------------------------------------------------------------------------------

class _Reader:
    """Typed look-ups that raise :class:`StudyConfigError` naming the file and the dotted field."""

    def __init__(self, name: str) -> None:
        self.name = name

    def fail(self, where: str, message: str) -> None:
        raise StudyConfigError(f"{self.name}: {where}: {message}")

    def known(self, table: Mapping[str, Any], where: str, allowed: tuple[str, ...]) -> None:
        for key in table:
            if key not in allowed:
                close = difflib.get_close_matches(key, allowed, n=1)
                hint = f"; did you mean {close[0]!r}?" if close else f"; known keys: {', '.join(allowed)}"
                self.fail(f"{where}.{key}" if where else key, f"unknown key{hint}")

    def _get(self, table: Mapping[str, Any], where: str, check: Callable[[Any], bool], rule: str,
             required: bool = False) -> Any:
        key = where.rsplit(".", 1)[-1]
        if key not in table:
            if required:
                self.fail(where, "is required")
            return None
        value = table[key]
        if not check(value):
            self.fail(where, f"{rule} (got {value!r})")
        return value

    def string(self, table: Mapping[str, Any], where: str) -> str | None:
        return self._get(table, where, lambda v: isinstance(v, str), "must be a string")

    def boolean(self, table: Mapping[str, Any], where: str) -> bool | None:
        return self._get(table, where, lambda v: isinstance(v, bool), "must be true or false")

    def table(self, table: Mapping[str, Any], where: str) -> dict[str, Any] | None:
        value = self._get(table, where, lambda v: isinstance(v, dict), "must be a table")
        return dict(value) if value is not None else None

    def integer(self, table: Mapping[str, Any], where: str, low: int, high: int, required: bool = False) -> int | None:
        return self._get(table, where, lambda v: type(v) is int and low <= v <= high,
                         f"must be an integer between {low} and {high}", required)

    def number(self, table: Mapping[str, Any], where: str, low: float, high: float) -> float | int | None:
        def ok(value: Any) -> bool:
            return type(value) in (int, float) and math.isfinite(value) and low <= value <= high

        return self._get(table, where, ok, f"must be a number between {low} and {high}")


# -- scenes -------------------------------------------------------------------------------------------------------

#: The scene kinds of ``[[scenes]]``, each with its keys (besides ``kind``, ``id``, ``title`` and ``shuffle``).
SCENE_KEYS: dict[str, tuple[str, ...]] = {
    "consent": ("text", "agree", "decline"),
    "instructions": ("text", "button", "min_seconds"),
    "practice": ("episodes", "bots", "env_config", "text"),
    "waiting": ("timeout_s", "timeout_text", "timeout_code", "timeout_url", "max_rtt_ms", "max_requeues", "text",
                "max_sessions"),
    "game": ("text",),
    "survey": ("questions", "button"),
    "end": ("text", "completion_code", "redirect_url", "redirect_after_s"),
}
SCENE_KINDS = tuple(SCENE_KEYS)
#: Scene kinds that may carry a ``shuffle`` label.
SHUFFLE_KINDS = ("instructions", "survey", "practice")
#: The question kinds of a survey, each with its own keys (besides ``id``, ``kind``, ``prompt``, ``required``).
QUESTION_KEYS: dict[str, tuple[str, ...]] = {
    "likert": ("scale", "labels"),
    "choice": ("options", "multiple"),
    "number": ("min", "max", "integer"),
    "text": ("max_length",),
}
#: Image files an instructions text may show, and their largest size.
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".gif", ".webp", ".svg")
IMAGE_MAX_BYTES = 5 * 1024 * 1024
#: Where the server serves the files the scenes reference.
STUDY_FILES_URL = "/study-files/"
WAITING_TIMEOUT_TEXT = "No partner could be found. Thank you for your time."
END_TEXT = "Thank you! You have finished the study."
_SCENE_ID = re.compile(r"[a-z0-9_-]{1,40}")
_QUESTION_ID = re.compile(r"[A-Za-z0-9_]{1,40}")
_IMAGE = re.compile(r"!\[([^\]]*)\]\(([^)\s]*)\)")
#: Anything that starts like an image: each must also match :data:`_IMAGE`.
_IMAGE_START = re.compile(r"!\[[^\]]*\]\(")
_MAX_SECONDS = 86_400


class _Scenes:
    """Checks and normalises ``[[scenes]]``; collects the files the texts reference (relative path -> file)."""

    def __init__(self, r: _Reader, base: Path, page: dict[str, Any]) -> None:
        self.r = r
        self.base = base.resolve()
        self.page = page
        self.files: dict[str, Path] = {}
        self.max_sessions: int | None = None
        self.question_ids: set[str] = set()

    def parse(self, raw: Any) -> list[dict[str, Any]]:
        r = self.r
        if not isinstance(raw, list) or not raw or not all(isinstance(s, dict) for s in raw):
            r.fail("scenes", "must be a list of scene tables ([[scenes]] in TOML), at least one")
        if len(raw) > 100:
            r.fail("scenes", f"at most 100 scenes (got {len(raw)})")
        kinds = []
        for i, scene in enumerate(raw):
            kind = scene.get("kind")
            if kind is None:
                r.fail(f"scenes[{i}].kind", f"is required: one of {', '.join(SCENE_KINDS)}")
            if not isinstance(kind, str) or kind not in SCENE_KEYS:
                close = difflib.get_close_matches(str(kind), SCENE_KINDS, n=1)
                hint = f"; did you mean {close[0]!r}?" if close else ""
                r.fail(f"scenes[{i}].kind", f"unknown scene kind {kind!r}{hint} (kinds: {', '.join(SCENE_KINDS)})")
            kinds.append(kind)
        scenes = [self.scene(i, dict(scene), kinds) for i, scene in enumerate(raw)]
        self.order(scenes)
        return scenes

    def order(self, scenes: list[dict[str, Any]]) -> None:
        r = self.r
        kinds = [s["kind"] for s in scenes]
        players = int(self.page.get("session", {}).get("players", SESSION_FIELDS["players"]))
        if kinds.count("game") != 1:
            r.fail("scenes", f"needs exactly one scene of kind 'game' (found {kinds.count('game')})")
        game = kinds.index("game")
        waiting = [i for i, k in enumerate(kinds) if k == "waiting"]
        if players > 1:
            if len(waiting) != 1:
                r.fail("scenes", f"session.players is {players}: needs exactly one scene of kind 'waiting', before "
                                 f"the game (found {len(waiting)})")
            if waiting[0] > game:
                r.fail(f"scenes[{waiting[0]}]", "the waiting scene must come before the game scene")
        elif waiting:
            r.fail(f"scenes[{waiting[0]}]", "a waiting scene needs session.players > 1 (a one-player study has no "
                                            "partner to wait for)")
        for kind in ("consent", "end"):
            if kinds.count(kind) > 1:
                r.fail("scenes", f"at most one scene of kind {kind!r} (found {kinds.count(kind)})")
        if "end" in kinds and kinds.index("end") != len(kinds) - 1:
            r.fail(f"scenes[{kinds.index('end')}]", "the end scene must be the last scene")
        seen: dict[str, int] = {}
        for i, s in enumerate(scenes):
            if s["id"] in seen:
                r.fail(f"scenes[{i}].id", f"{s['id']!r} is already the id of scenes[{seen[s['id']]}]; ids must be "
                                          "unique")
            seen[s["id"]] = i
        groups: dict[str, list[int]] = {}
        for i, s in enumerate(scenes):
            if s["shuffle"] is not None:
                groups.setdefault(s["shuffle"], []).append(i)
        # Which stretch a scene is in: before the waiting scene, between it and the game, or after the game.
        stretch = [sum(1 for k in kinds[:i] if k in ("waiting", "game")) for i in range(len(kinds))]
        for label, members in groups.items():
            if len(members) < 2:
                r.fail(f"scenes[{members[0]}].shuffle", f"only this scene has the label {label!r}; scenes with the "
                                                        "same label swap positions, so a label needs two or more")
            if len({stretch[i] for i in members}) > 1:
                r.fail(f"scenes[{members[-1]}].shuffle", f"the scenes labelled {label!r} are on both sides of the "
                                                         "waiting or game scene; shuffled scenes swap positions, so "
                                                         "they must all come before it or all after it")

    def scene(self, i: int, scene: dict[str, Any], kinds: list[str]) -> dict[str, Any]:
        r = self.r
        where = f"scenes[{i}]"
        scene = {k: v for k, v in scene.items() if v is not None}  # JSON null = not given
        kind = scene["kind"]
        r.known(scene, where, ("kind", "id", "title", "shuffle", *SCENE_KEYS[kind]))
        out: dict[str, Any] = {"kind": kind}
        scene_id = r.string(scene, f"{where}.id")
        if scene_id is None:
            scene_id = kind if kinds.count(kind) == 1 else f"{kind}-{kinds[:i + 1].count(kind)}"
        elif not _SCENE_ID.fullmatch(scene_id):
            r.fail(f"{where}.id", f"must be 1 to 40 of a-z, 0-9, _ and - (got {scene_id!r})")
        out["id"] = scene_id
        out["title"] = r.string(scene, f"{where}.title")
        shuffle = r.string(scene, f"{where}.shuffle")
        if shuffle is not None:
            if kind not in SHUFFLE_KINDS:
                r.fail(f"{where}.shuffle", f"only scenes of kind {', '.join(SHUFFLE_KINDS)} may be shuffled")
            if not 1 <= len(shuffle) <= 40:
                r.fail(f"{where}.shuffle", f"must be a label of 1 to 40 characters (got {shuffle!r})")
        out["shuffle"] = shuffle
        getattr(self, f"_{kind}")(scene, where, out)
        return out

    # -- one method per kind: fill ``out`` from ``scene`` ------------------------------------------------------
    def _consent(self, scene: dict[str, Any], where: str, out: dict[str, Any]) -> None:
        out["text"] = self.text(scene, f"{where}.text", required=True)
        out["agree"] = self.label(scene, f"{where}.agree", "I agree")
        out["decline"] = self.label(scene, f"{where}.decline", "I do not agree")

    def _instructions(self, scene: dict[str, Any], where: str, out: dict[str, Any]) -> None:
        out["text"] = self.text(scene, f"{where}.text", required=True)
        out["button"] = self.label(scene, f"{where}.button", "Continue")
        out["min_seconds"] = self.seconds(scene, f"{where}.min_seconds", 0, zero_ok=True)

    def _practice(self, scene: dict[str, Any], where: str, out: dict[str, Any]) -> None:
        r = self.r
        out["episodes"] = r.integer(scene, f"{where}.episodes", 1, 1000)
        if out["episodes"] is None:
            out["episodes"] = 1
        bots = r.table(scene, f"{where}.bots")
        if bots is not None:
            _check_bots(r, bots, f"{where}.bots")
        else:
            bots = dict(self.page.get("bots") or {})
        out["bots"] = bots
        env_config = r.table(scene, f"{where}.env_config")
        out["env_config"] = env_config if env_config is not None else self.page.get("env_config")
        out["text"] = self.text(scene, f"{where}.text")

    def _waiting(self, scene: dict[str, Any], where: str, out: dict[str, Any]) -> None:
        r = self.r
        out["timeout_s"] = self.seconds(scene, f"{where}.timeout_s", 300)
        out["timeout_text"] = self.text(scene, f"{where}.timeout_text") or WAITING_TIMEOUT_TEXT
        out["timeout_code"] = r.string(scene, f"{where}.timeout_code")
        out["timeout_url"] = self.url(scene, f"{where}.timeout_url")
        rtt = scene.get("max_rtt_ms")
        if rtt is not None and not (type(rtt) in (int, float) and math.isfinite(rtt) and 0 < rtt <= 60_000):
            r.fail(f"{where}.max_rtt_ms", f"must be a number above 0 and at most 60000 (got {rtt!r})")
        out["max_rtt_ms"] = rtt
        requeues = r.integer(scene, f"{where}.max_requeues", 0, 100)
        out["max_requeues"] = 2 if requeues is None else requeues
        out["text"] = self.text(scene, f"{where}.text")
        self.max_sessions = r.integer(scene, f"{where}.max_sessions", 1, 1_000_000)
        out["max_sessions"] = self.max_sessions

    def _game(self, scene: dict[str, Any], where: str, out: dict[str, Any]) -> None:
        out["text"] = self.text(scene, f"{where}.text")

    def _survey(self, scene: dict[str, Any], where: str, out: dict[str, Any]) -> None:
        r = self.r
        questions = scene.get("questions")
        if questions is None:
            r.fail(f"{where}.questions", "is required: a list of question tables ([[scenes.questions]] in TOML)")
        if not isinstance(questions, list) or not questions or not all(isinstance(q, dict) for q in questions):
            r.fail(f"{where}.questions", f"must be a list of one or more question tables (got {questions!r})")
        out["questions"] = [self.question(dict(q), f"{where}.questions[{n}]") for n, q in enumerate(questions)]
        out["button"] = self.label(scene, f"{where}.button", "Continue")

    def _end(self, scene: dict[str, Any], where: str, out: dict[str, Any]) -> None:
        out["text"] = self.text(scene, f"{where}.text") or END_TEXT
        out["completion_code"] = self.r.string(scene, f"{where}.completion_code")
        out["redirect_url"] = self.url(scene, f"{where}.redirect_url")
        out["redirect_after_s"] = self.seconds(scene, f"{where}.redirect_after_s", None, zero_ok=True)

    def question(self, q: dict[str, Any], where: str) -> dict[str, Any]:
        r = self.r
        q = {k: v for k, v in q.items() if v is not None}
        kind = q.get("kind")
        if not isinstance(kind, str) or kind not in QUESTION_KEYS:
            close = difflib.get_close_matches(str(kind), tuple(QUESTION_KEYS), n=1)
            hint = f"; did you mean {close[0]!r}?" if close and kind is not None else ""
            r.fail(f"{where}.kind", ("is required" if kind is None else f"unknown question kind {kind!r}{hint}")
                   + f": one of {', '.join(QUESTION_KEYS)}")
        r.known(q, where, ("id", "kind", "prompt", "required", *QUESTION_KEYS[kind]))
        qid = q.get("id")
        if qid is None:
            r.fail(f"{where}.id", "is required")
        if not isinstance(qid, str) or not _QUESTION_ID.fullmatch(qid):
            r.fail(f"{where}.id", f"must be 1 to 40 of A-Z, a-z, 0-9 and _ (got {qid!r})")
        if qid in self.question_ids:
            r.fail(f"{where}.id", f"{qid!r} is already the id of another question; question ids are unique "
                                  "across the study")
        self.question_ids.add(qid)
        prompt = q.get("prompt")
        if prompt is None:
            r.fail(f"{where}.prompt", "is required")
        prompt = self.text(q, f"{where}.prompt", required=True)
        required = r.boolean(q, f"{where}.required")
        out: dict[str, Any] = {"id": qid, "kind": kind, "prompt": prompt, "required": True if required is None
                               else required}
        if kind == "likert":
            scale = r.integer(q, f"{where}.scale", 2, 11)
            out["scale"] = 7 if scale is None else scale
            labels = q.get("labels")
            if labels is not None and (not isinstance(labels, list) or len(labels) != 2
                                       or not all(isinstance(x, str) for x in labels)):
                r.fail(f"{where}.labels", f"must be two strings, the low and the high end (got {labels!r})")
            out["labels"] = list(labels) if labels is not None else None
        elif kind == "choice":
            options = q.get("options")
            if options is None:
                r.fail(f"{where}.options", "is required: a list of two or more strings")
            if (not isinstance(options, list) or len(options) < 2 or not all(isinstance(x, str) and x for x in options)
                    or len(set(options)) != len(options)):
                r.fail(f"{where}.options", f"must be a list of two or more different, non-empty strings "
                                           f"(got {options!r})")
            out["options"] = list(options)
            multiple = r.boolean(q, f"{where}.multiple")
            out["multiple"] = bool(multiple)
        elif kind == "number":
            bounds = []
            for key in ("min", "max"):
                value = q.get(key)
                if value is not None and not (type(value) in (int, float) and math.isfinite(value)):
                    r.fail(f"{where}.{key}", f"must be a number (got {value!r})")
                out[key] = value
                bounds.append(value)
            if None not in bounds and bounds[0] > bounds[1]:
                r.fail(f"{where}.max", f"must be at least min ({bounds[0]}) (got {bounds[1]})")
            out["integer"] = bool(r.boolean(q, f"{where}.integer"))
        else:
            length = r.integer(q, f"{where}.max_length", 1, 100_000)
            out["max_length"] = 1000 if length is None else length
        return out

    # -- values -------------------------------------------------------------------------------------------------
    def label(self, table: dict[str, Any], where: str, default: str) -> str:
        value = self.r.string(table, where)
        if value is not None and not value.strip():
            self.r.fail(where, "must not be empty")
        return default if value is None else value

    def seconds(self, table: dict[str, Any], where: str, default: float | None, zero_ok: bool = False) -> Any:
        key = where.rsplit(".", 1)[-1]
        value = table.get(key)
        if value is None:
            return default
        ok = type(value) in (int, float) and math.isfinite(value) and value <= _MAX_SECONDS and (
            value >= 0 if zero_ok else value > 0)
        if not ok:
            rule = "at least 0" if zero_ok else "above 0"
            self.r.fail(where, f"must be a number of seconds, {rule} and at most {_MAX_SECONDS} (got {value!r})")
        return value

    def url(self, table: dict[str, Any], where: str) -> str | None:
        value = self.r.string(table, where)
        if value is None:
            return self.page.get("completion_url")
        _check_url(self.r, where, value)
        return value

    def text(self, table: dict[str, Any], where: str, required: bool = False) -> str | None:
        """A text field; its Markdown images must be files in the study folder, and become ``/study-files/`` URLs."""
        key = where.rsplit(".", 1)[-1]
        if required and key not in table:
            self.r.fail(where, "is required")
        value = self.r.string(table, where)
        if value is None:
            return None
        if required and not value.strip():
            self.r.fail(where, "must not be empty")
        if len(_IMAGE_START.findall(value)) != len(_IMAGE.findall(value)):
            self.r.fail(where, "an image must be written ![description](path) with no space in the path and "
                               "nothing after it inside the parentheses")
        return _IMAGE.sub(lambda m: f"![{m.group(1)}]({self.image(where, m.group(2))})", value)

    def image(self, where: str, target: str) -> str:
        r = self.r
        name = target.removeprefix(STUDY_FILES_URL)
        if name != target:
            name = unquote(name)  # an already normalised reference (the JSON layout of a checked config)
        elif ":" in target or target.startswith(("/", "//", "\\")):
            r.fail(where, f"image {target!r}: images must be files in the study folder, given as a path "
                          "relative to the config file (e.g. ![map](images/map.png))")
        parts = [p for p in name.replace("\\", "/").split("/") if p]
        if not parts or any(p.startswith(".") for p in parts):
            r.fail(where, f"image {target!r}: the path must stay inside the study folder (no '..' or hidden parts)")
        suffix = Path(parts[-1]).suffix.lower()
        if suffix not in IMAGE_SUFFIXES:
            r.fail(where, f"image {target!r}: only {', '.join(s[1:] for s in IMAGE_SUFFIXES)} files can be shown")
        path = self.base.joinpath(*parts).resolve()
        if not path.is_relative_to(self.base):
            r.fail(where, f"image {target!r}: the path must stay inside the study folder")
        if not path.is_file():
            r.fail(where, f"image {target!r}: file {path} not found (image paths are relative to the config file)")
        size = path.stat().st_size
        if size > IMAGE_MAX_BYTES:
            r.fail(where, f"image {target!r}: {size} bytes; images may be at most {IMAGE_MAX_BYTES} bytes (5 MB)")
        relative = path.relative_to(self.base).as_posix()
        self.files[relative] = path
        return STUDY_FILES_URL + quote(relative)


def _check_bots(r: _Reader, bots: dict[str, Any], where: str) -> None:
    for agent, spec in bots.items():
        if not isinstance(spec, str) or not spec:
            r.fail(f"{where}.{agent}", "must be a bot name: 'random', 'idle', 'module:attr' or 'file.py:attr'")
        if spec not in ("random", "idle") and ":" not in spec:
            r.fail(f"{where}.{agent}", f"unknown bot {spec!r}; use 'random', 'idle', 'module:attr' or 'file.py:attr'")


def _check_url(r: _Reader, where: str, url: str) -> None:
    if not url.startswith(("https://", "http://")) or any(c.isspace() for c in url):
        r.fail(where, f"must be an http(s) address without spaces (got {url!r})")


# -- the example studies ------------------------------------------------------------------------------------------

def list_examples() -> list[str]:
    """Names of the example studies shipped in :mod:`pyodide_runtime.examples` (one TOML file each)."""
    folder = resources.files("pyodide_runtime.examples")
    return sorted(entry.name[:-5] for entry in folder.iterdir() if entry.name.endswith(".toml"))


def example_config(name: str) -> Path:
    """The config file of the example study ``name``; ``ValueError`` naming the examples when there is none."""
    examples = list_examples()
    if name not in examples:
        close = difflib.get_close_matches(name, examples, n=1)
        hint = f"did you mean {close[0]!r}? " if close else ""
        raise ValueError(f"no example study {name!r}; {hint}examples: {', '.join(examples)}")
    return Path(str(resources.files("pyodide_runtime.examples") / f"{name}.toml"))



def practice_scenes(page: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The practice scenes of a checked config's page form (each with its ``bots`` and ``env_config`` filled)."""
    return [dict(s) for s in page.get("scenes") or () if s.get("kind") == "practice"]
