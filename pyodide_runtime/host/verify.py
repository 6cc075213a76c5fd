"""Re-run a session from its export bundle and check that the data is what the env produces.

``validate`` shows that a bundle is intact: its hashes, schema and hash chain agree with its own rows. ``verify``
shows that the rows are what the declared env, config and seeds produce from the recorded inputs. It rebuilds the
game from the bundle's metadata (factory spec, env config, bots, default inputs, global generators), feeds the
confirmed inputs and away flags of ``frames.csv`` to :func:`pyodide_runtime.host.testing.replay` (the runtime's own
timeline and episode logic, without network or prediction), encodes the result with the exporter's own encoder,
and compares every canonical cell: ``resets.csv``, ``frames.csv`` (``state_hash`` included, so the whole hash chain
is recomputed from the re-run), ``episodes.csv`` and the metadata's frame count, seeds and final hash.

The core (:func:`verify_files`) is pure: it takes the bundle's files as bytes and returns a
:class:`VerifyResult`. The same source runs inside Pyodide for ``--engine pyodide`` (see
:func:`verify_in_pyodide`), where float results are bit-identical to the participants' browsers.
"""

from __future__ import annotations

import base64
import json
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

__all__ = [
    "ENGINES", "VerifyError", "Divergence", "VerifyResult", "read_bundle", "verify_files", "verify",
    "verify_in_pyodide",
]

ENGINES = ("cpython", "pyodide")
_CANONICAL_PATHS = ("metadata.json", "frames.csv", "resets.csv", "episodes.csv", "blobs.csv")
_SHOW = 160  # characters of a value shown in a report


class VerifyError(Exception):
    """The bundle cannot be verified (unreadable, no metadata, env not loadable, refused env version): exit 2."""


@dataclass
class Divergence:
    """The first cell where the re-run differs from the bundle."""

    table: str
    column: str
    recorded: str
    replayed: str
    global_frame: int | None = None
    episode: int | None = None
    frame: int | None = None
    agent: str | None = None
    #: where inside a JSON cell the values first differ (``position[0]``), when the column holds JSON
    path: str | None = None
    #: every differing cell of this frame differs only in float values, by at most a few units in the last place
    float_only: bool = False

    def describe(self) -> str:
        where = []
        if self.global_frame is not None:
            where.append(f"global_frame {self.global_frame}")
        if self.episode is not None:
            where.append(f"episode {self.episode}" + (f" frame {self.frame}" if self.frame is not None else ""))
        if self.agent is not None:
            where.append(f"agent {self.agent}")
        column = self.column + (f" at {self.path}" if self.path else "")
        return (f"{self.table} {', '.join(where)}: {column}: recorded {self.recorded}, re-run {self.replayed}"
                if where else f"{self.table}: {column}: recorded {self.recorded}, re-run {self.replayed}")


@dataclass
class VerifyResult:
    """What :func:`verify_files` found. ``status`` is ``verified`` or ``diverged``."""

    source: str
    engine: str
    status: str
    frames: int = 0
    episodes: int = 0
    resets: int = 0
    divergence: Divergence | None = None
    #: canonical cells that differ in all (0 when verified)
    differing_cells: int = 0
    #: the bundle's own status (complete or partial) and its unconfirmed tail, which is not verified
    bundle_status: str | None = None
    tail_frames: int = 0
    env: dict[str, Any] = field(default_factory=dict)
    forced: bool = False
    notes: list[str] = field(default_factory=list)
    runtime: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.status == "verified"

    @property
    def float_only(self) -> bool:
        return bool(self.divergence and self.divergence.float_only)

    @property
    def exit_code(self) -> int:
        return 0 if self.ok else 1

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["verified"] = self.ok
        out["float_only"] = self.float_only
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> VerifyResult:
        kw = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        if kw.get("divergence"):
            kw["divergence"] = Divergence(**kw["divergence"])
        return cls(**kw)

    def verdict(self) -> str:
        """One line: the outcome, with the float caveat when it applies."""
        if self.ok:
            return f"verified ({self.frames} frames, {self.episodes} episode(s), {self.resets} reset(s))"
        if self.float_only and self.engine == "cpython":
            return "float difference in the last bits; verify with --engine pyodide to decide"
        return "DIVERGED"


class _Inputs(NamedTuple):
    inputs: tuple[int, ...]
    away: tuple[bool, ...]


# -- reading ------------------------------------------------------------------------------------------------------
def read_bundle(source: str | os.PathLike[str] | bytes) -> dict[str, bytes]:
    """Every file of a bundle (zip path, zip bytes or extracted directory); :class:`VerifyError` when unreadable."""
    from pyodide_runtime.export.bundle import BundleError, open_bundle

    if not isinstance(source, (bytes, bytearray)) and not Path(source).exists():
        raise VerifyError(f"{source}: no such file or directory")
    try:
        files = open_bundle(source)
    except BundleError as exc:
        raise VerifyError(str(exc)) from None
    if not files:
        raise VerifyError(f"{_name(source)}: empty (no files)")
    return files


def _name(source: Any) -> str:
    return "<bytes>" if isinstance(source, (bytes, bytearray)) else str(source)


def _metadata(files: Mapping[str, bytes]) -> dict[str, Any]:
    data = files.get("metadata.json")
    if data is None:
        raise VerifyError("metadata.json is missing: not an export bundle (or an incomplete one)")
    try:
        meta = json.loads(data.decode("utf-8"))
        canon = meta["canonical"]
    except (UnicodeDecodeError, ValueError, KeyError, TypeError):
        raise VerifyError("metadata.json is not readable, or has no canonical part") from None
    if not isinstance(canon, dict):
        raise VerifyError("metadata.json: its canonical part is not an object")
    for key in ("env", "config", "seats", "agents", "session"):
        if key not in canon:
            raise VerifyError(f"metadata.json: canonical.{key} is missing, so the session cannot be re-run")
    env = canon["env"]
    if not isinstance(env, dict) or not env.get("factory"):
        raise VerifyError("metadata.json: canonical.env.factory is missing (the env's factory spec), so the env "
                          "cannot be rebuilt")
    return meta


def _table(files: Mapping[str, bytes], spec: Any) -> Any:
    from pyodide_runtime.export.cells import CsvError
    from pyodide_runtime.export.tables import SchemaError, read_table

    data = files.get(spec.path)
    if data is None:
        raise VerifyError(f"{spec.path} is missing")
    try:
        return read_table(spec, data)
    except (CsvError, SchemaError) as exc:
        raise VerifyError(str(exc)) from None


def _inputs(frames: Any, seats: Sequence[str]) -> list[_Inputs]:
    """Each confirmed frame's seat inputs and away flags, in frame order."""
    h = {name: i for i, name in enumerate(frames.header)}
    out: list[_Inputs] = []
    current: str | None = None
    by_agent: dict[str, list[str]] = {}

    def flush() -> None:
        try:
            rows = [by_agent[s] for s in seats]
            out.append(_Inputs(tuple(int(r[h["input"]]) for r in rows),
                               tuple(r[h["away"]] == "true" for r in rows)))
        except (KeyError, ValueError):
            raise VerifyError(f"frames.csv global_frame {current}: no readable input for every seat "
                              f"{list(seats)}") from None

    for row in frames.rows:
        g = row[h["global_frame"]]
        if g != current:
            if current is not None:
                flush()
            if g != str(len(out)):
                raise VerifyError(f"frames.csv: global_frame {g} where {len(out)} was expected (frames must be "
                                  "contiguous from 0; run validate)")
            current, by_agent = g, {}
        by_agent[row[h["agent"]]] = row
    if current is not None:
        flush()
    return out


# -- the env ------------------------------------------------------------------------------------------------------
def _factory_module(spec: str) -> str:
    return spec.rpartition(":")[0]


def _resolve_bots(recorded: Mapping[str, str], factory: str, given: Mapping[str, str]) -> dict[str, Any]:
    """Bots as ``load_game`` takes them. The metadata records a policy's name (``Partner``), or its spec; a bare
    name is looked up in the factory's module, ``RandomPolicy``/``ConstantPolicy`` are the built-in bots."""
    from pyodide_runtime.envs.loading import load_factory

    bots: dict[str, Any] = {}
    for agent, name in recorded.items():
        if agent in given:
            bots[agent] = given[agent]
        elif name in ("random", "RandomPolicy"):
            bots[agent] = "random"
        elif name in ("idle", "ConstantPolicy"):
            bots[agent] = "idle"
        elif ":" in str(name):
            bots[agent] = name
        else:
            # The env's own module first, then the policies that ship with the runtime.
            for module in (_factory_module(factory), "pyodide_runtime.bots"):
                try:
                    bots[agent] = load_factory(f"{module}:{name}")
                    break
                except Exception:  # noqa: BLE001, S112 - not there: try the next place
                    continue
            else:
                raise VerifyError(f"bot {name!r} of agent {agent} is not defined in {_factory_module(factory)}; "
                                  f"name its policy with --bot {agent}=module:Class")
            if isinstance(bots[agent], type):
                bots[agent] = bots[agent]()
    for agent, spec in given.items():
        bots.setdefault(agent, spec)
    return bots


def _load(canon: Mapping[str, Any], env_spec: str | None, bots: Mapping[str, str]) -> Any:
    from pyodide_runtime.envs.loading import load_game

    env = canon["env"]
    spec = env_spec or str(env["factory"])
    rng = env.get("global_rng") or {}
    options: dict[str, Any] = {"global_rng": (bool(rng.get("random")), bool(rng.get("numpy")))}
    if env.get("default_inputs") is not None:
        options["default_inputs"] = [int(x) for x in env["default_inputs"]]
    try:
        resolved = _resolve_bots(env.get("bots") or {}, spec, bots)
        return load_game(spec, env.get("config"), bots=resolved or None, **options)
    except VerifyError:
        raise
    except Exception as exc:  # noqa: BLE001 - a researcher's env may raise anything while loading
        text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        raise VerifyError(f"cannot load env {spec!r}: {type(exc).__name__}: {text}"
                          + ("" if env_spec else " (pass --env SPEC where the env lives on this machine)")) from None


def _check_identity(canon: Mapping[str, Any], game: Any, force: bool, notes: list[str]) -> dict[str, Any]:
    """Compare the recorded env identity with the loaded one; refuse a different version unless forced."""
    recorded, here = canon["env"], dict(game.describe())
    info = {"factory": recorded.get("factory"), "loaded": here.get("factory"),
            "env_id": recorded.get("env_id"), "env_version": recorded.get("env_version"),
            "source_hash": recorded.get("source_hash"), "loaded_source_hash": here.get("source_hash")}
    differs = [f"{key} {recorded.get(key)!r} recorded, {here.get(key)!r} here"
               for key in ("env_id", "env_version", "source_hash") if recorded.get(key) != here.get(key)]
    if recorded.get("source_hash") is None:
        notes.append("the bundle records no env source hash, so the env's version cannot be confirmed")
    for key in ("agents", "seats"):
        if list(here.get(key) or []) != list(canon.get(key) or []):
            raise VerifyError(f"the loaded env has {key} {here.get(key)}, the bundle {canon.get(key)}")
    if differs:
        reason = "a different env version: " + "; ".join(differs)
        if not force:
            raise VerifyError(f"refused: {reason} (--force verifies against it anyway)")
        notes.append(f"FORCED against {reason}")
    return info


def _check_packages(canon: Mapping[str, Any], engine: str, lock: Mapping[str, Any] | None,
                    notes: list[str]) -> None:
    """Say where the packages the page loaded differ from the ones this engine runs (a note, not a refusal)."""
    recorded = canon.get("packages")
    if not recorded:
        return
    if engine == "pyodide" and lock is not None:
        entries = {_norm(name): p for name, p in (lock.get("packages") or {}).items()}
        for p in recorded:
            have = entries.get(_norm(str(p.get("name"))))
            if have is None:
                notes.append(f"package {p.get('name')} {p.get('version')} is not in this engine's lock file")
            elif p.get("sha256") and have.get("sha256") != p.get("sha256"):
                notes.append(f"package {p.get('name')}: recorded {p.get('version')} sha256 {str(p.get('sha256'))[:12]}"
                             f"..., this engine loads {have.get('version')} sha256 {str(have.get('sha256'))[:12]}...")
        return
    from importlib import metadata

    for p in recorded:
        try:
            version = metadata.version(str(p.get("name")))
        except metadata.PackageNotFoundError:
            version = None
        if version is not None and str(version) != str(p.get("version")):
            notes.append(f"package {p.get('name')}: recorded {p.get('version')}, {version} here")


def _norm(name: str) -> str:
    return name.lower().replace("_", "-").replace(".", "-")


# -- comparing ----------------------------------------------------------------------------------------------------
def _show(text: str) -> str:
    if text == "":
        return "(empty)"
    return text if len(text) <= _SHOW else text[:_SHOW] + "..."


def _first_difference(a: Any, b: Any, path: str = "") -> tuple[str, Any, Any] | None:
    """The first path where two decoded JSON values differ, with both values there."""
    if isinstance(a, dict) and isinstance(b, dict):
        for key in sorted(set(a) | set(b), key=str):
            if key not in a or key not in b:
                return (f"{path}.{key}" if path else str(key), a.get(key, "<absent>"), b.get(key, "<absent>"))
            found = _first_difference(a[key], b[key], f"{path}.{key}" if path else str(key))
            if found:
                return found
        return None
    if isinstance(a, list) and isinstance(b, list):
        for i, (x, y) in enumerate(zip(a, b)):
            found = _first_difference(x, y, f"{path}[{i}]")
            if found:
                return found
        return None if len(a) == len(b) else (f"{path} length", len(a), len(b))
    if type(a) is not type(b) or (a != b and not (_nan(a) and _nan(b))):
        return (path, a, b)
    return None


def _nan(x: Any) -> bool:
    return isinstance(x, float) and math.isnan(x)


def _floats_close(a: Any, b: Any) -> bool:
    """Equal but for float leaves within a few units in the last place (native libm vs Pyodide's)."""
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_floats_close(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_floats_close(x, y) for x, y in zip(a, b))
    if isinstance(a, float) and isinstance(b, float):
        if a == b or (_nan(a) and _nan(b)):
            return True
        if math.isinf(a) or math.isinf(b) or _nan(a) or _nan(b):
            return False
        return abs(a - b) <= 1e-9 * max(1.0, abs(a), abs(b))
    return type(a) is type(b) and a == b


def _decode(kind: str, text: str, blobs: Mapping[str, str]) -> Any:
    from pyodide_runtime.export.cells import parse_cell

    if text == "":
        return None
    try:
        return parse_cell(kind, text, blobs)
    except (ValueError, KeyError):
        return text


class _Compare:
    """Cell-by-cell comparison of recorded and re-run tables; keeps the first divergence and a count."""

    def __init__(self, rec_blobs: Mapping[str, str], run_blobs: Mapping[str, str]) -> None:
        self.rec_blobs, self.run_blobs = rec_blobs, run_blobs
        self.found: list[Divergence] = []
        self.cells = 0

    def rows(self, spec: Any, recorded: list[list[str]], replayed: list[list[str]],
             group: str | None = None) -> None:
        """Compare two tables' rows in order; ``group`` names the column whose equal values form one frame."""
        kinds = {c.name: c.type for c in spec.columns}
        names = list(spec.names)
        h = {n: i for i, n in enumerate(names)}
        first: Divergence | None = None
        for i, (a, b) in enumerate(zip(recorded, replayed)):
            for col, name in enumerate(names):
                if a[col] == b[col]:
                    continue
                self.cells += 1
                if first is None:
                    j, c = self._earliest_column(recorded, replayed, i, h, group)
                    first = self._divergence(spec, recorded[j], replayed[j], h, names[c], kinds[names[c]])
                    first.float_only = self._float_only(recorded, replayed, i, h, names, kinds, group)
        if len(recorded) != len(replayed):
            self.cells += abs(len(recorded) - len(replayed))
            if first is None:
                n = min(len(recorded), len(replayed))
                sample = (recorded if len(recorded) > n else replayed)[n]
                first = self._divergence(spec, sample, sample, h, "rows", "str")
                first.column, first.recorded, first.replayed = "row count", f"{len(recorded)} rows", \
                    f"{len(replayed)} rows"
        if first is not None:
            self.found.append(first)

    def add(self, divergence: Divergence) -> None:
        self.cells += 1
        self.found.append(divergence)

    @property
    def first(self) -> Divergence | None:
        """The earliest divergence: by global frame, an episode's reset before its first frame."""
        order = {"resets.csv": 0, "frames.csv": 1, "episodes.csv": 2, "metadata.json": 3}
        return min(self.found, default=None, key=lambda d: (
            d.global_frame if d.global_frame is not None else math.inf, order.get(d.table, 9)))

    def _divergence(self, spec: Any, a: list[str], b: list[str], h: dict[str, int], name: str, kind: str) -> Divergence:
        def get(col: str, cast: Any = str) -> Any:
            if col not in h or a[h[col]] == "":
                return None
            try:
                return cast(a[h[col]])
            except ValueError:
                return None

        d = Divergence(spec.path, name, _show(a[h[name]]) if name in h else "", _show(b[h[name]]) if name in h else "",
                       global_frame=get("global_frame", int), episode=get("episode", int), frame=get("frame", int),
                       agent=get("agent"))
        if spec.path == "resets.csv":
            d.global_frame = get("start_frame", int)
        if kind == "json" and name in h:
            found = _first_difference(_decode(kind, a[h[name]], self.rec_blobs),
                                      _decode(kind, b[h[name]], self.run_blobs))
            if found is not None and found[0]:
                d.path, x, y = found
                d.recorded, d.replayed = _show(json.dumps(x)), _show(json.dumps(y))
        return d

    @staticmethod
    def _group_rows(recorded: list[list[str]], replayed: list[list[str]], i: int, h: dict[str, int],
                    group: str | None) -> range:
        """Row indices of the frame (or episode) that row ``i`` belongs to, from ``i`` on."""
        j = i + 1
        if group:
            key = recorded[i][h[group]]
            while j < min(len(recorded), len(replayed)) and recorded[j][h[group]] == key:
                j += 1
        return range(i, j)

    def _earliest_column(self, recorded: list[list[str]], replayed: list[list[str]], i: int, h: dict[str, int],
                         group: str | None) -> tuple[int, int]:
        """The differing cell of the frame with the earliest column (inputs and actions before their effects)."""
        cells = [(col, j) for j in self._group_rows(recorded, replayed, i, h, group)
                 for col in range(len(recorded[j])) if recorded[j][col] != replayed[j][col]]
        col, j = min(cells)
        return j, col

    def _float_only(self, recorded: list[list[str]], replayed: list[list[str]], i: int, h: dict[str, int],
                    names: list[str], kinds: dict[str, str], group: str | None) -> bool:
        """Whether every differing cell of the first divergent frame (or row) differs only in float values."""
        for j in self._group_rows(recorded, replayed, i, h, group):
            a, b = recorded[j], replayed[j]
            for col, name in enumerate(names):
                if a[col] == b[col] or kinds[name] == "hash":
                    continue
                x, y = _decode(kinds[name], a[col], self.rec_blobs), _decode(kinds[name], b[col], self.run_blobs)
                if not _floats_close(x, y) or not _has_float(x):
                    return False
        return True


def _has_float(x: Any) -> bool:
    if isinstance(x, float):
        return True
    if isinstance(x, dict):
        return any(_has_float(v) for v in x.values())
    if isinstance(x, list):
        return any(_has_float(v) for v in x)
    return False


# -- the core -----------------------------------------------------------------------------------------------------
def verify_files(
    files: Mapping[str, bytes],
    *,
    source: str = "<bytes>",
    env: str | None = None,
    bots: Mapping[str, str] | None = None,
    force: bool = False,
    engine: str = "cpython",
    lock: Mapping[str, Any] | None = None,
) -> VerifyResult:
    """Re-run the session of a bundle's ``files`` and compare every canonical cell (see the module docstring).

    ``env`` replaces the recorded factory spec (same function, this machine's path); ``bots`` maps agents to
    policy specs where the recorded name cannot be resolved; ``force`` accepts an env whose id, version or source
    hash differs from the recorded one (and says so). Raises :class:`VerifyError` for unusable input.
    """
    import platform

    from pyodide_runtime.config import ConfigError, SessionConfig
    from pyodide_runtime.export import schema
    from pyodide_runtime.export.cells import CsvError
    from pyodide_runtime.export.context import ExportContext
    from pyodide_runtime.export.tables import SchemaError, blob_map, read_table
    from pyodide_runtime.export.writer import TableEncoder
    from pyodide_runtime.host.testing.replay import replay

    meta = _metadata(files)
    canon = meta["canonical"]
    local = meta.get("participant_local") or {}
    frames = _table(files, schema.FRAMES)
    resets = _table(files, schema.RESETS)
    episodes = _table(files, schema.EPISODES)
    try:
        rec_blobs = blob_map(files)
    except (CsvError, SchemaError) as exc:
        raise VerifyError(str(exc)) from None
    seats = [str(s) for s in canon["seats"]]
    records = _inputs(frames, seats)
    try:
        config = SessionConfig(**canon["config"])
    except (ConfigError, TypeError, ValueError) as exc:
        raise VerifyError(f"metadata.json: canonical.config is not a session config ({exc})") from None

    notes: list[str] = []
    game = _load(canon, env, dict(bots or {}))
    env_info = _check_identity(canon, game, force, notes)
    env_info["spec"] = env or canon["env"].get("factory")
    _check_packages(canon, engine, lock, notes)
    recorded_runtime = canon.get("runtime") or {}
    if engine == "cpython" and recorded_runtime.get("pyodide"):
        notes.append(f"recorded in Pyodide {recorded_runtime['pyodide']}; native floats may differ in the last bits "
                     "(--engine pyodide re-runs it there)")

    try:
        log = replay(game, config, records)
    except Exception as exc:  # noqa: BLE001 - the env raising during the re-run is a finding, not a crash
        text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        raise VerifyError(f"the env raised during the re-run: {type(exc).__name__}: {text}") from None
    ctx = ExportContext(
        study=str(canon.get("study") or "study"), session=str(canon["session"]), participant="verify", seat=0,
        config=canon["config"], env=canon["env"], agents=tuple(canon["agents"]), seats=tuple(seats),
        inline_limit=int(canon.get("inline_limit") or 16384),
    )
    enc = TableEncoder(ctx)
    enc.update(log)
    run_frames = read_table(schema.FRAMES, enc.frames.to_bytes(schema.FRAMES.header + "\n"))
    run_resets = read_table(schema.RESETS, enc.resets.to_bytes(schema.RESETS.header + "\n"))
    run_episodes = read_table(schema.EPISODES, enc.episodes_text().encode("utf-8"))
    run_blobs = dict(enc.blobs)

    n = len(records)
    cmp = _Compare(rec_blobs, run_blobs)
    # A re-run of a partial bundle may reset the next episode right after the last confirmed frame, which the
    # participant's copy may not have confirmed yet: such a reset is compared only when the bundle holds it.
    start_col = run_resets.index("start_frame")
    wanted_resets = [r for r in run_resets.rows if int(r[start_col]) < n]
    later = [r for r in run_resets.rows if int(r[start_col]) >= n]
    wanted_resets += later[: max(0, len(resets.rows) - len(wanted_resets))]
    kept_episodes = {r[run_resets.index("episode")] for r in wanted_resets}
    ep_col = run_episodes.index("episode")
    wanted_episodes = [r for r in run_episodes.rows if r[ep_col] in kept_episodes]
    cmp.rows(schema.RESETS, resets.rows, wanted_resets, group="episode")
    cmp.rows(schema.FRAMES, frames.rows, run_frames.rows, group="global_frame")
    cmp.rows(schema.EPISODES, episodes.rows, wanted_episodes)
    for key, have in (("confirmed_frames", n), ("final_state_hash", enc.last_hash)):
        if key in canon and canon[key] != have:
            cmp.add(Divergence("metadata.json", key, _show(str(canon[key])), _show(str(have))))
    if enc.layouts is not None or "observation_layouts" in canon:
        # frame_hash "bytes": the arrays' dtypes and shapes (the rows hold only their values) must be the re-run's
        have_layouts = json.loads(json.dumps(enc.layouts)) if enc.layouts is not None else None
        if canon.get("observation_layouts") != have_layouts:
            cmp.add(Divergence("metadata.json", "observation_layouts", _show(str(canon.get("observation_layouts"))),
                               _show(str(have_layouts))))
    seeds = [int(r[run_episodes.index("seed")]) for r in wanted_episodes]
    recorded_seeds = (canon.get("seeds") or {}).get("episodes")
    if recorded_seeds is not None and list(recorded_seeds) != seeds:
        cmp.add(Divergence("metadata.json", "seeds.episodes", _show(str(recorded_seeds)), _show(str(seeds))))

    tail = int(local.get("unconfirmed_tail_frames") or 0)
    if canon.get("status") == "partial":
        notes.append(f"partial bundle: its {n} confirmed frames are verified"
                     + (f"; the {tail} unconfirmed tail frame(s) are not canonical and not verified" if tail else ""))
    if local.get("recovered_from_checkpoint"):
        notes.append("a copy recovered from checkpoints: verified up to its last checkpointed frame")
    return VerifyResult(
        source=source, engine=engine, status="verified" if cmp.first is None else "diverged",
        frames=n, episodes=len(wanted_episodes), resets=len(wanted_resets), divergence=cmp.first,
        differing_cells=cmp.cells, bundle_status=canon.get("status"), tail_frames=tail, env=env_info,
        forced=any(note.startswith("FORCED") for note in notes), notes=notes,
        runtime={"python": platform.python_version(), "implementation": platform.python_implementation()},
    )


# -- engines ------------------------------------------------------------------------------------------------------
def verify(
    source: str | os.PathLike[str] | bytes,
    *,
    env: str | None = None,
    bots: Mapping[str, str] | None = None,
    force: bool = False,
    engine: str = "cpython",
    assets: Path | None = None,
    timeout: float = 600.0,
) -> VerifyResult:
    """Verify a bundle (zip path, zip bytes or extracted directory) with the ``cpython`` or ``pyodide`` engine."""
    if engine not in ENGINES:
        raise ValueError(f"engine must be one of {ENGINES}")
    files = read_bundle(source)
    if engine == "pyodide":
        return verify_in_pyodide(files, source=_name(source), env=env, bots=bots, force=force, assets=assets,
                                 timeout=timeout)
    return verify_files(files, source=_name(source), env=env, bots=bots, force=force)


_PYODIDE_SCRIPT = """
import base64, json, sys, types
from pyodide_runtime.pyodide_compat import prepare
facts = prepare()
job = json.loads(base64.b64decode(JOB).decode("utf-8"))
if job["env_file"]:
    # As the page does: the env file is written into the working directory and loaded by its relative name.
    with open(job["env_file"]["name"], "w", encoding="utf-8") as fh:
        fh.write(job["env_file"]["text"])
core = types.ModuleType("pyodide_runtime_verify_core")
core.__file__ = "verify.py"
sys.modules[core.__name__] = core
exec(compile(CORE, "pyodide_runtime/host/verify.py", "exec"), core.__dict__)
files = {p: base64.b64decode(d) for p, d in job["files"].items()}
try:
    out = core.verify_files(files, source=job["source"], env=job["env"], bots=job["bots"], force=job["force"],
                            engine="pyodide", lock=job["lock"]).to_dict()
    out["runtime"] = {"python": facts["python"], "pyodide": facts["pyodide"], "implementation": "Pyodide"}
    result = {"ok": out}
except core.VerifyError as exc:
    result = {"error": str(exc)}
"""


def _pyodide_env(files: Mapping[str, bytes], env: str | None) -> tuple[str | None, dict[str, str] | None]:
    """The spec Pyodide loads, and the env file to write into its working directory for a file spec."""
    spec = env or str(_metadata(files)["canonical"]["env"]["factory"])
    target, _, function = spec.rpartition(":")
    if not (target.endswith(".py") or "/" in target or os.sep in target):
        return env, None
    path = Path(target)
    if not path.is_file():
        raise VerifyError(f"env file not found: {target} (pass --env path/to/env.py:{function or 'function'})")
    return f"{path.name}:{function}", {"name": path.name, "text": path.read_text(encoding="utf-8")}


def verify_in_pyodide(
    files: Mapping[str, bytes],
    *,
    source: str = "<bytes>",
    env: str | None = None,
    bots: Mapping[str, str] | None = None,
    force: bool = False,
    assets: Path | None = None,
    timeout: float = 600.0,
) -> VerifyResult:
    """Run :func:`verify_files` inside Pyodide under Node, from the self-hosted assets (the page's build).

    This module's source is sent along with the bundle's canonical files, so the check is the same code as the
    ``cpython`` engine's; the env and the runtime come from the assets' lock, as the page loads them.
    """
    from pyodide_runtime.host.assets import AssetError, open_assets
    from pyodide_runtime.host.pyodide_host import PyodideHostError, run_in_pyodide

    _metadata(files)  # unusable input is reported before starting Pyodide
    spec, env_file = _pyodide_env(files, env)
    try:
        root = open_assets(assets).root
    except AssetError as exc:
        raise VerifyError(f"--engine pyodide needs the self-hosted assets: {exc}") from None
    lock_path = root / "pyodide-lock.json"
    lock = json.loads(lock_path.read_text()) if lock_path.is_file() else None
    job = {
        "files": {p: base64.b64encode(files[p]).decode("ascii") for p in _CANONICAL_PATHS if p in files},
        "source": source, "env": spec, "bots": dict(bots or {}), "force": force, "env_file": env_file,
        "lock": {"packages": {k: {"version": v.get("version"), "sha256": v.get("sha256")}
                              for k, v in (lock or {}).get("packages", {}).items()}} if lock else None,
    }
    core = Path(__file__).read_text(encoding="utf-8")
    code = (f"JOB = {base64.b64encode(json.dumps(job).encode()).decode('ascii')!r}\nCORE = {core!r}\n"
            + _PYODIDE_SCRIPT)
    try:
        run = run_in_pyodide(code, {}, assets=root, timeout=timeout)
    except PyodideHostError as exc:
        last = str(exc).strip().splitlines()[-1] if str(exc).strip() else "no output"
        raise VerifyError(f"the Pyodide engine failed: {last}") from None
    out = run.result or {}
    if "error" in out:
        raise VerifyError(out["error"])
    result = VerifyResult.from_dict(out["ok"])
    if env_file is not None and result.env.get("spec") == spec and env is None:
        result.env["spec"] = str(_metadata(files)["canonical"]["env"]["factory"])
    return result

