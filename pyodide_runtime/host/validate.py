"""Check one export bundle: integrity, schema, provenance and internal consistency.

What is checked:

- the manifest: every file listed is present with its sha256 and size, nothing unlisted, the canonical digest;
- the schema: required files present, no unknown files, CSV headers and cell types as declared, the codebook
  lists every file and column;
- provenance: the metadata's canonical and participant-local parts, config digest, seeds, episode list;
- consistency: frames contiguous from 0, one row per agent per frame in the declared order, per-frame values
  equal across its rows, episode numbering, episodes.csv and resets.csv against frames.csv, complete/partial
  against the episodes and the tail file, blob references;
- ``participant/`` entries (attached by :func:`pyodide_runtime.export.participant.attach`), when present:
  their own manifest, the tables' columns and cells, answers as JSON matching the record, required answers when
  the record lists the questions, and any practice bundle as a bundle of its own. A bundle with only these
  entries (no game part) is valid as ``participant-only``;
- the state-hash chain, recomputed from the exported rows with :class:`pyodide_runtime.framelog.FrameLog` itself
  (the rows hold every chained field exactly, so the whole chain is reproducible). With ``frame_hash = "bytes"``
  the arrays hashed by their bytes are first rebuilt from the rows and ``observation_layouts`` (dtype, shape) in
  the metadata; a missing layout, or a value that does not fit its layout, is reported.

:func:`validate` raises :class:`~pyodide_runtime.export.bundle.BundleError` only when the bundle cannot be read.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from pyodide_runtime.canonical import digest
from pyodide_runtime.export import schema
from pyodide_runtime.export.bundle import canonical_digest, open_bundle
from pyodide_runtime.export.cells import CsvError, parse_cell
from pyodide_runtime.export.participant import participant_files
from pyodide_runtime.export.tables import SchemaError, Table, blob_map, read_json, read_table

__all__ = ["ValidationResult", "validate"]

_MAX_PER_KIND = 20


@dataclass
class ValidationResult:
    """Problems found (empty when valid) and the names of the checks that ran."""

    source: str
    problems: list[str] = field(default_factory=list)
    checks: list[str] = field(default_factory=list)
    summary: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.problems

    def to_dict(self) -> dict[str, Any]:
        return {"source": self.source, "valid": self.ok, "problems": self.problems, "checks": self.checks,
                "summary": self.summary}


class _Checker:
    def __init__(self, files: dict[str, bytes], result: ValidationResult) -> None:
        self.files = files
        self.r = result
        self.tables: dict[str, Table] = {}
        self.meta: dict[str, Any] = {}
        self.blobs: dict[str, str] = {}

    def problem(self, text: str) -> None:
        self.r.problems.append(text)

    # -- integrity ----------------------------------------------------------------------------------------------
    def manifest(self) -> None:
        self.r.checks.append("manifest")
        data = self.files.get(schema.MANIFEST.path)
        if data is None:
            self.problem("manifest.json is missing")
            return
        try:
            man = read_json(data, "manifest.json")
            entries = man["files"]
        except (CsvError, KeyError, TypeError):
            self.problem("manifest.json is not a valid manifest")
            return
        for path, entry in entries.items():
            got = self.files.get(path)
            if got is None:
                self.problem(f"{path}: listed in the manifest but missing")
            elif hashlib.sha256(got).hexdigest() != entry.get("sha256") or len(got) != entry.get("bytes"):
                self.problem(f"{path}: sha256 or size differs from the manifest (the file was changed)")
        for path in self.files:
            if path != schema.MANIFEST.path and path not in entries:
                self.problem(f"{path}: present but not listed in the manifest")
        content = {p: d for p, d in self.files.items() if p != schema.MANIFEST.path}
        try:
            if man.get("canonical_digest") != canonical_digest(content):
                self.problem("manifest canonical_digest does not match the canonical files")
        except (ValueError, KeyError, TypeError):
            self.problem("metadata.json has no readable canonical member (canonical digest not computable)")
        if man.get("format") != schema.FORMAT or man.get("format_version") != schema.FORMAT_VERSION:
            self.problem(f"manifest format {man.get('format')}/{man.get('format_version')} is not "
                         f"{schema.FORMAT}/{schema.FORMAT_VERSION}")

    # -- schema -------------------------------------------------------------------------------------------------
    def layout(self) -> None:
        self.r.checks.append("schema")
        for spec in schema.FILES:
            if spec.required and spec.path not in self.files:
                self.problem(f"{spec.path}: required file is missing")
        for path in self.files:
            if schema.spec_for(path) is None:
                self.problem(f"{path}: not a file of format version {schema.FORMAT_VERSION}")
        for spec in schema.FILES:
            if spec.kind != "csv" or spec.path not in self.files:
                continue
            try:
                self.tables[spec.path] = read_table(spec, self.files[spec.path])
            except (CsvError, SchemaError) as exc:
                self.problem(str(exc))
        try:
            self.blobs = blob_map(self.files)
        except (CsvError, SchemaError):
            self.blobs = {}
        for key, text in self.blobs.items():
            if hashlib.sha256(text.encode("utf-8")).hexdigest() != key:
                self.problem(f"blobs.csv: the value stored under {key[:12]}... does not hash to it")
        for path, table in self.tables.items():
            self.cell_types(table)

    def cell_types(self, table: Table) -> None:
        bad = 0
        for col_index, col in enumerate(table.spec.columns):
            for line, r in enumerate(table.rows, start=2):
                text = r[col_index]
                if text == "":
                    if not col.nullable:
                        bad += 1
                        if bad <= _MAX_PER_KIND:
                            self.problem(f"{table.spec.path} line {line}: {col.name} is empty")
                    continue
                try:
                    if col.type == "hash":
                        ok = len(text) == 64 and all(c in "0123456789abcdef" for c in text)
                        if not ok:
                            raise ValueError("not a sha256 hex digest")
                    else:
                        parse_cell(col.type, text, self.blobs)
                except (ValueError, KeyError) as exc:
                    bad += 1
                    if bad <= _MAX_PER_KIND:
                        self.problem(f"{table.spec.path} line {line}: {col.name} {text[:40]!r} is not "
                                     f"{col.type} ({exc})")

    def codebook(self) -> None:
        self.r.checks.append("codebook")
        data = self.files.get(schema.CODEBOOK_JSON.path)
        if data is None:
            return  # reported as a missing required file
        try:
            book = read_json(data, "codebook.json")
            described = {f["path"]: [c["name"] for c in f["columns"]] for f in book["files"]}
        except (CsvError, KeyError, TypeError):
            self.problem("codebook.json is not a valid codebook")
            return
        for path in self.files:
            if path not in described:
                self.problem(f"{path}: not described in codebook.json")
        for path, table in self.tables.items():
            if path in described and described[path] != table.header:
                self.problem(f"{path}: codebook.json describes columns {described[path]}, the file has "
                             f"{table.header}")

    # -- provenance ---------------------------------------------------------------------------------------------
    def provenance(self) -> None:
        self.r.checks.append("provenance")
        data = self.files.get(schema.METADATA.path)
        if data is None:
            return
        try:
            meta = read_json(data, "metadata.json")
            canon, local = meta["canonical"], meta["participant_local"]
        except (CsvError, KeyError, TypeError):
            self.problem("metadata.json lacks its canonical and participant_local parts")
            return
        self.meta = canon
        need = ("format", "format_version", "study", "session", "package", "runtime", "env", "agents", "seats",
                "config", "config_digest", "seeds", "episodes", "confirmed_frames", "status", "status_reason")
        for key in need:
            if key not in canon:
                self.problem(f"metadata.json: canonical.{key} is missing")
        for key in ("participant", "seat"):
            if key not in local:
                self.problem(f"metadata.json: participant_local.{key} is missing")
        env = canon.get("env") or {}
        for key in ("env_id", "env_version"):
            if key not in env:
                self.problem(f"metadata.json: canonical.env.{key} is missing")
        if "version" not in (canon.get("package") or {}):
            self.problem("metadata.json: canonical.package.version is missing")
        if "config" in canon and canon.get("config_digest") != digest(canon["config"]):
            self.problem("metadata.json: config_digest does not match config")
        if canon.get("status") not in ("complete", "partial", "interim"):
            self.problem(f"metadata.json: status {canon.get('status')!r} is not complete, partial or interim")

    # -- consistency --------------------------------------------------------------------------------------------
    def frames(self) -> None:
        table = self.tables.get(schema.FRAMES.path)
        if table is None or not self.meta:
            return
        self.r.checks.append("frames")
        agents = list(self.meta.get("agents") or [])
        seats = list(self.meta.get("seats") or [])
        h = {name: i for i, name in enumerate(table.header)}
        groups = _group(table.rows, h["global_frame"])
        session = self.meta.get("session")
        expect_episode, expect_frame, counts = 0, 0, {}
        bad = 0
        for n, (g, rows) in enumerate(groups):
            where = f"frames.csv global_frame {g}"
            if g != str(n):
                self.problem(f"frames.csv: frame {n} is missing (found {g} instead); frames must be contiguous")
                return
            first = rows[0]
            names = [r[h["agent"]] for r in rows]
            if names[: len(agents)] != agents or len(set(names)) != len(names):
                bad += 1
                if bad <= _MAX_PER_KIND:
                    self.problem(f"{where}: agent rows {names} are not one per agent in the order {agents}")
            for col in ("session", "episode", "frame", "episode_over", "state_hash"):
                if any(r[h[col]] != first[h[col]] for r in rows):
                    bad += 1
                    if bad <= _MAX_PER_KIND:
                        self.problem(f"{where}: {col} differs between its rows")
            if first[h["session"]] != session:
                bad += 1
                if bad <= _MAX_PER_KIND:
                    self.problem(f"{where}: session {first[h['session']]!r} is not the metadata's {session!r}")
            for r in rows:
                agent = r[h["agent"]]
                seat = str(seats.index(agent)) if agent in seats else ""
                bot = seat == ""
                if r[h["seat"]] != seat or bot != (r[h["input"]] == "") or bot != (r[h["away"]] == ""):
                    bad += 1
                    if bad <= _MAX_PER_KIND:
                        self.problem(f"{where}: seat/input/away of agent {agent} do not match the seats {seats}")
            ep, fr = first[h["episode"]], first[h["frame"]]
            if (ep, fr) != (str(expect_episode), str(expect_frame)):
                bad += 1
                if bad <= _MAX_PER_KIND:
                    self.problem(f"{where}: episode/frame {ep}/{fr}, expected {expect_episode}/{expect_frame}")
                try:
                    expect_episode, expect_frame = int(ep), int(fr)
                except ValueError:
                    return
            counts[expect_episode] = counts.get(expect_episode, 0) + 1
            if first[h["episode_over"]] == "true":
                expect_episode, expect_frame = expect_episode + 1, 0
            else:
                expect_frame += 1
        self.r.summary["confirmed_frames"] = len(groups)
        if self.meta.get("confirmed_frames") != len(groups):
            self.problem(f"metadata.json: confirmed_frames {self.meta.get('confirmed_frames')} but frames.csv "
                         f"holds {len(groups)} frames")
        self.episodes(table, h, groups, counts)
        self.chain(table, h, groups)

    def episodes(self, table: Table, h: dict[str, int], groups: list[tuple[str, list[list[str]]]],
                 counts: dict[int, int]) -> None:
        eps = self.tables.get(schema.EPISODES.path)
        resets = self.tables.get(schema.RESETS.path)
        if eps is None:
            return
        self.r.checks.append("episodes")
        listed = self.meta.get("episodes") or []
        e = {name: i for i, name in enumerate(eps.header)}
        ends: dict[int, list[list[str]]] = {}
        for _g, rows in groups:
            if rows[0][h["episode_over"]] == "true":
                ends[int(rows[0][h["episode"]])] = rows
        if len(eps.rows) != len(listed):
            self.problem(f"episodes.csv has {len(eps.rows)} episodes, metadata lists {len(listed)}")
        for i, r in enumerate(eps.rows):
            ep = int(r[e["episode"]])
            if ep != i:
                self.problem(f"episodes.csv: episode {ep} on row {i + 2}; episodes must be 0, 1, 2, ...")
                return
            frames = counts.get(ep, 0)
            if r[e["frames"]] != str(frames):
                self.problem(f"episodes.csv: episode {ep} says {r[e['frames']]} frames, frames.csv has {frames}")
            ended = ep in ends
            if r[e["ended"]] != ("true" if ended else "false"):
                self.problem(f"episodes.csv: episode {ep} ended={r[e['ended']]} disagrees with frames.csv")
            if ended:
                for col in ("terminated", "truncated"):
                    any_flag = any(parse_cell("scalar", x[h[col]]) for x in ends[ep])
                    if r[e[col]] != ("true" if any_flag else "false"):
                        self.problem(f"episodes.csv: episode {ep} {col} disagrees with its last frame")
            if i < len(listed):
                m = listed[i]
                as_text = {k: ("true" if v is True else "false" if v is False else str(v)) for k, v in m.items()}
                for col in ("seed", "start_frame", "frames", "ended", "terminated", "truncated"):
                    if as_text.get(col) != r[e[col]]:
                        self.problem(f"metadata.json: episode {ep} {col} differs from episodes.csv")
        if resets is not None:
            have = {}
            for r in resets.rows:
                have.setdefault(r[resets.index("episode")], []).append(r)
            for r in eps.rows:
                rs = have.get(r[e["episode"]], [])
                if not rs or any(x[resets.index("seed")] != r[e["seed"]] or
                                 x[resets.index("start_frame")] != r[e["start_frame"]] for x in rs):
                    self.problem(f"resets.csv: episode {r[e['episode']]} reset rows missing or inconsistent")
        ended = sum(1 for r in eps.rows if r[e["ended"]] == "true")
        wanted = (self.meta.get("config") or {}).get("episodes")
        complete = wanted is not None and ended >= wanted
        status = self.meta.get("status")
        self.r.summary.update({"episodes": len(eps.rows), "episodes_ended": ended, "status": status})
        tail = self.files.get(schema.TAIL.path)
        if status == "interim":
            # Taken at a confirmed episode end while the session went on: only whole, ended episodes, no tail.
            if complete or ended != len(eps.rows) or ended == 0:
                self.problem(f"metadata.json: status 'interim' but {ended} of {len(eps.rows)} listed episodes "
                             f"ended ({wanted} wanted); an interim export holds only whole, ended episodes")
            if tail is not None:
                self.problem("unconfirmed_tail.csv is present in an interim bundle")
        elif status != ("complete" if complete else "partial"):
            self.problem(f"metadata.json: status {status!r} but {ended} of {wanted} episodes ended")
        if status == "complete" and tail is not None:
            self.problem("unconfirmed_tail.csv is present in a complete bundle")
        if status == "partial":
            if tail is None:
                self.problem("unconfirmed_tail.csv is missing from a partial bundle")
            elif schema.TAIL.path in self.tables:
                t = self.tables[schema.TAIL.path]
                if any(r[t.index("confirmed")] != "false" for r in t.rows):
                    self.problem("unconfirmed_tail.csv: a row is not flagged confirmed=false")
                frames = {int(r[t.index("global_frame")]) for r in t.rows}
                if frames and min(frames) < len(groups):
                    self.problem("unconfirmed_tail.csv: holds a frame that frames.csv has as confirmed")

    def chain(self, table: Table, h: dict[str, int], groups: list[tuple[str, list[list[str]]]]) -> None:
        from pyodide_runtime.framelog import EpisodeStart, FrameLog, FrameRecord

        self.r.checks.append("state_hash_chain")
        cfg = self.meta.get("config") or {}
        try:
            log = FrameLog(cfg["frame_hash"], cfg["hash_interval"]) if "frame_hash" in cfg else FrameLog()
        except (TypeError, ValueError) as exc:
            self.problem(f"state-hash chain: cannot rebuild the frame log ({exc})")
            return
        seats = list(self.meta.get("seats") or [])
        resets = self.tables.get(schema.RESETS.path)
        blobs = self.blobs
        starts = []
        try:
            if resets is not None:
                rh = {name: i for i, name in enumerate(resets.header)}
                for ep, rows in _group(resets.rows, rh["episode"]):
                    first = rows[0]
                    obs = {r[rh["agent"]]: parse_cell("json", r[rh["observation"]], blobs)
                           for r in rows if r[rh["observation"]] != ""}
                    infos = {r[rh["agent"]]: parse_cell("json", r[rh["info"]], blobs)
                             for r in rows if r[rh["info"]] != ""}
                    starts.append(EpisodeStart(int(ep), int(first[rh["seed"]]), int(first[rh["start_frame"]]),
                                               obs, infos))
            records = [_record(FrameRecord, rows, h, seats, blobs) for _g, rows in groups]
        except (ValueError, KeyError, IndexError) as exc:
            self.problem(f"state-hash chain: rows cannot be rebuilt ({exc})")
            return
        if log.hash_mode == "bytes" and not self.raw_observations(starts, records, log.sample_every):
            return
        for start in starts:
            log.add_episode_start(start)
        for rec in records:
            log.add(rec)
        log.promote(len(groups), 0.0)
        bad = 0
        for rec, (g, rows) in zip(log.confirmed, groups):
            if rec.state_hash != rows[0][h["state_hash"]]:
                bad += 1
                if bad == 1:
                    self.problem(f"frames.csv: state_hash of global_frame {g} does not match the chain "
                                 "recomputed from the rows (this frame or the reset before it was changed)")
        if bad > 1:
            self.problem(f"frames.csv: {bad} frames in all have a state_hash that does not match the chain")
        last = log.confirmed[-1].state_hash if log.confirmed else None
        if groups and self.meta.get("final_state_hash") != last:
            self.problem("metadata.json: final_state_hash is not the last frame's recomputed hash")


    def raw_observations(self, starts: list[Any], records: list[Any], every: int) -> bool:
        """``frame_hash = "bytes"``: rebuild the arrays the chain hashed by their bytes, in the reset observations
        and at every hash point (dtype and shape from ``observation_layouts`` in the metadata, values from the
        rows). Returns ``False`` when the layouts are missing, so the chain cannot be checked."""
        from pyodide_runtime.framelog import is_hash_point

        self.r.checks.append("observation_bytes")
        layouts = self.meta.get("observation_layouts")
        if not isinstance(layouts, dict) or not all(
                isinstance(layouts.get(part), dict) and all(isinstance(v, list) for v in layouts[part].values())
                for part in ("frames", "resets")):
            self.problem("metadata.json: frame_hash is 'bytes' but canonical.observation_layouts is missing or "
                         "malformed, so the observations' hashed bytes cannot be rebuilt and the chain not checked")
            return False
        self._bad_layouts = 0
        for start in starts:
            self._rebuild(start.observations, layouts["resets"], start.episode, f"resets.csv episode {start.episode}")
        for rec in records:
            g = rec.global_frame
            if is_hash_point(g, rec.episode_over, every):
                self._rebuild(rec.observations, layouts["frames"], g, f"frames.csv global_frame {g}")
        return True

    def _rebuild(self, observations: dict[str, Any], layouts: dict[str, list[Any]], at: int, where: str) -> None:
        from pyodide_runtime.arrayhash import rebuild

        for agent, value in observations.items():
            shape = None
            for run in layouts.get(agent, ()):
                if isinstance(run, list) and len(run) == 2 and isinstance(run[0], int) and run[0] <= at:
                    shape = run[1]
            try:
                observations[agent] = rebuild(value, shape)
            except (ValueError, TypeError) as exc:
                self._bad_layouts += 1
                if self._bad_layouts <= _MAX_PER_KIND:
                    self.problem(f"{where}: the observation of {agent} cannot be rebuilt as the array its state_hash "
                                 f"covers ({exc}); it or metadata.json observation_layouts was changed")


def _group(rows: list[list[str]], col: int) -> list[tuple[str, list[list[str]]]]:
    out: list[tuple[str, list[list[str]]]] = []
    for r in rows:
        if out and out[-1][0] == r[col]:
            out[-1][1].append(r)
        else:
            out.append((r[col], [r]))
    return out


def _record(cls: Any, rows: list[list[str]], h: Mapping[str, int], seats: list[str], blobs: Mapping[str, str]) -> Any:
    first = rows[0]
    by_agent = {r[h["agent"]]: r for r in rows}
    inputs = tuple(int(by_agent[s][h["input"]]) for s in seats)
    away = tuple(by_agent[s][h["away"]] == "true" for s in seats)

    def per_agent(col: str, kind: str) -> dict[str, Any]:
        i = h[col]
        return {r[h["agent"]]: parse_cell(kind, r[i], blobs) for r in rows if r[i] != ""}

    return cls(
        int(first[h["global_frame"]]), int(first[h["episode"]]), int(first[h["frame"]]), inputs, away,
        per_agent("action", "scalar"), per_agent("observation", "json"), per_agent("reward", "scalar"),
        per_agent("terminated", "scalar"), per_agent("truncated", "scalar"), per_agent("info", "json"),
        first[h["episode_over"]] == "true", False, 0.0,
    )


def validate(source: str | os.PathLike[str] | bytes) -> ValidationResult:
    """Validate a bundle (zip path, zip bytes or extracted directory). See the module docstring."""
    files = open_bundle(source)
    result = ValidationResult("<bytes>" if isinstance(source, (bytes, bytearray)) else str(source))
    part = participant_files(files)
    game = {p: d for p, d in files.items() if p not in part}
    if part:
        # Attached after the game bundle was made: its own manifest covers them, the game's does not.
        result.summary["bundle"] = "game+participant" if game else "participant-only"
        _check_participant(part, result)
        if not game:
            return result
    checker = _Checker(game, result)
    checker.manifest()
    checker.layout()
    checker.codebook()
    checker.provenance()
    checker.frames()
    return result


def _check_participant(files: dict[str, bytes], result: ValidationResult) -> None:
    """The ``participant/`` entries: their manifest, the tables' columns and cells, JSON answers, the record."""
    from pyodide_runtime.export import participant as p

    result.checks.append("participant")
    problem = result.problems.append
    man = files.get(p.MANIFEST.path)
    listed: dict[str, Any] = {}
    if man is None:
        problem(f"{p.MANIFEST.path} is missing")
    else:
        try:
            listed = read_json(man, p.MANIFEST.path)["files"]
        except (CsvError, KeyError, TypeError):
            problem(f"{p.MANIFEST.path} is not a valid manifest")
    for path, entry in listed.items():
        got = files.get(path)
        if got is None:
            problem(f"{path}: listed in {p.MANIFEST.path} but missing")
        elif hashlib.sha256(got).hexdigest() != entry.get("sha256") or len(got) != entry.get("bytes"):
            problem(f"{path}: sha256 or size differs from {p.MANIFEST.path} (the file was changed)")
    for path in files:
        if path != p.MANIFEST.path and path not in listed and man is not None and listed:
            problem(f"{path}: present but not listed in {p.MANIFEST.path}")
        if p.spec_for(path) is None and not path.startswith(p.PRACTICE_PREFIX):
            problem(f"{path}: not a participant file of schema version {p.SCHEMA_VERSION}")
    tables: dict[str, Table] = {}
    for spec in p.FILES:
        if spec.path not in files:
            problem(f"{spec.path}: required file is missing")
            continue
        if spec.kind != "csv":
            continue
        try:
            tables[spec.path] = table = read_table(spec, files[spec.path])
        except (CsvError, SchemaError) as exc:
            problem(str(exc))
            continue
        checker = _Checker({}, result)
        checker.cell_types(table)
    record: dict[str, Any] = {}
    if p.RECORD.path in files:
        try:
            saved = read_json(files[p.RECORD.path], p.RECORD.path)
            record = saved["record"]
            if saved.get("schema_version") != p.SCHEMA_VERSION:
                problem(f"{p.RECORD.path}: schema_version {saved.get('schema_version')!r} is not {p.SCHEMA_VERSION}")
        except (CsvError, KeyError, TypeError):
            problem(f"{p.RECORD.path} does not hold a record")
    answers = tables.get(p.ANSWERS.path)
    if answers is not None and record:
        try:
            expected = p.tables({k: record.get(k) for k in ("answers",)})[p.ANSWERS.path]
            if expected != files[p.ANSWERS.path]:
                problem(f"{p.ANSWERS.path} does not hold the answers of {p.RECORD.path}")
        except (p.ParticipantError, TypeError, ValueError) as exc:
            problem(f"{p.RECORD.path}: answers cannot be read ({exc})")
        _required_answers(record, answers, tables.get(p.SCENES.path), problem)
    result.summary["participant_scenes"] = len(tables[p.SCENES.path].rows) if p.SCENES.path in tables else 0
    result.summary["participant_answers"] = len(answers.rows) if answers is not None else 0
    practice = [e for e in record.get("practice") or [] if isinstance(e, dict)] if record else []
    for entry in practice:
        prefix = str(entry.get("entry"))
        inner = {k[len(prefix):]: v for k, v in files.items() if k.startswith(prefix)}
        if not inner:
            problem(f"{prefix}: practice bundle listed in {p.RECORD.path} but missing")
            continue
        sub = ValidationResult(prefix)
        checker = _Checker(inner, sub)
        checker.manifest()
        checker.layout()
        checker.codebook()
        checker.provenance()
        checker.frames()
        result.problems.extend(f"{prefix}{x}" for x in sub.problems)


def _required_answers(record: dict[str, Any], answers: Table, scenes: Table | None, problem: Any) -> None:
    """Every answer parses as JSON and belongs to a scene shown; when the record lists the study's questions, each
    required question of a survey the participant completed has a non-empty answer."""
    from pyodide_runtime.export.cells import parse_json

    shown = set(scenes.column("scene_id")) if scenes is not None else set()
    given: dict[tuple[str, str], Any] = {}
    for line, r in enumerate(answers.rows, start=2):
        try:
            value = parse_json(r[answers.index("answer")])
        except (ValueError, KeyError) as exc:
            problem(f"participant/answers.csv line {line}: answer is not JSON ({exc})")
            continue
        if scenes is not None and r[answers.index("scene_id")] not in shown:
            problem(f"participant/answers.csv line {line}: scene {r[answers.index('scene_id')]!r} is not in "
                    "participant/scenes.csv")
        given[(r[answers.index("scene_id")], r[answers.index("question_id")])] = value
    if scenes is None or not isinstance(record.get("questions"), list):
        return
    completed = {r[scenes.index("scene_id")] for r in scenes.rows
                 if r[scenes.index("kind")] == "survey" and r[scenes.index("outcome")] == "completed"}
    for q in record["questions"]:
        if not isinstance(q, dict) or not q.get("required", True) or q.get("scene_id") not in completed:
            continue
        value = given.get((q.get("scene_id"), q.get("question_id")))
        if value is None or value == "" or value == []:
            problem(f"participant/answers.csv: required question {q.get('question_id')!r} of survey "
                    f"{q.get('scene_id')!r} has no answer")

