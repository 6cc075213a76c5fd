"""Turn a frame log into the bundle's files.

:class:`TableEncoder` encodes confirmed records and episode starts into canonical CSV text incrementally: each
record is encoded once, when first seen, so checkpoints taken during the session make the final export cheap.
:func:`build_files` assembles every file of a bundle (canonical tables, metadata, diagnostics, unconfirmed tail,
codebook); :mod:`pyodide_runtime.export.bundle` zips them with a manifest.

Pure standard library: this runs inside Pyodide, on the page's thread.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from functools import partial
from typing import Any

from pyodide_runtime.arrayhash import layout
from pyodide_runtime.canonical import digest, json_file
from pyodide_runtime.export import schema
from pyodide_runtime.export.cells import json_cell, quote, row, scalar_cell
from pyodide_runtime.export.context import Diagnostics, ExportContext, _as_dict
from pyodide_runtime.export.textstore import TextStore
from pyodide_runtime.framelog import is_hash_point

__all__ = [
    "AwayTracker", "TableEncoder", "build_files", "assemble_files", "canonical_metadata", "diag_frame_text",
    "json_file",
]

_MISSING = object()


def _mapping(value: Any) -> Mapping[str, Any]:
    if isinstance(value, Mapping):
        if all(type(k) is str for k in value):
            return value
        return {str(k): v for k, v in value.items()}
    raise TypeError(f"per-agent values must be a mapping keyed by agent id, got {type(value).__name__}")


def confirmed_since(log: Any, frames: int) -> list[Any]:
    """The confirmed records of ``log`` from global frame ``frames`` on (any object with a ``confirmed`` list,
    or a :class:`~pyodide_runtime.framelog.FrameLog` that may have released older records)."""
    since = getattr(log, "confirmed_since", None)
    return since(frames) if since is not None else log.confirmed[frames:]


def _b(value: bool) -> str:
    return "true" if value else "false"


def _f(value: Any) -> str:
    return "" if value is None else float.__repr__(float(value))


def _i(value: Any) -> str:
    return "" if value is None else str(int(value))


class TableEncoder:
    """Incremental encoder of the canonical tables (frames, resets, episodes, blobs) of one log."""

    def __init__(self, context: ExportContext) -> None:
        self.context = context
        self.agents = context.agents
        self._agent_set = frozenset(self.agents)
        self._seat_of = {agent: i for i, agent in enumerate(context.seats)}
        self._qagent = {agent: quote(agent) for agent in self.agents}
        self._qsession = quote(context.session)
        self._limit = context.inline_limit
        #: Encoded rows (older ones compressed), each chunk marked with frames_done / starts_done before it, so
        #: a checkpoint can take the text since a point.
        self.frames = TextStore()
        self.resets = TextStore()
        #: diagnostics/frames.csv rows of the encoded records, as they were when encoded (see :meth:`diag_since`)
        self.diag = TextStore()
        #: away spans over the encoded records
        self.away = AwayTracker(len(context.seats))
        self.blobs: dict[str, str] = {}
        #: episode -> [seed, start_frame, frames, ended, terminated, truncated]
        self.episodes: dict[int, list[Any]] = {}
        self.frames_done = 0
        self.starts_done = 0
        self.last_hash: str | None = None
        cfg = context.config
        #: With ``frame_hash = "bytes"``: ``{"frames": {agent: [[global_frame, layout], ...]}, "resets": {agent:
        #: [[episode, layout], ...]}}``, an entry wherever the layout (:func:`pyodide_runtime.arrayhash.layout`) of
        #: an agent's observation at a hash point, or at a reset, changed; ``None`` in the other modes.
        self.layouts: dict[str, dict[str, list[list[Any]]]] | None = (
            {"frames": {}, "resets": {}} if cfg.get("frame_hash") == "bytes" else None)
        self._hash_every = int(cfg.get("hash_interval") or 30)

    # -- cells --------------------------------------------------------------------------------------------------
    def _json(self, value: Any, inline: bool = False) -> str:
        if value is _MISSING:
            return ""
        text = json_cell(value)
        if len(text) > self._limit and not inline:
            key = hashlib.sha256(text.encode("utf-8")).hexdigest()
            self.blobs[key] = text
            return schema.BLOB_PREFIX + key
        return quote(text)

    def _agents_of(self, maps: list[Mapping[str, Any]]) -> tuple[str, ...]:
        """The row agents of a record: the declared ones, then any other key in sorted order.

        Normalises (in place in ``maps``) a mapping whose keys are not all agent-id strings.
        """
        extra: set[str] | None = None
        known = self._agent_set
        for i, m in enumerate(maps):
            if type(m) is not dict or not known.issuperset(m):
                m = maps[i] = _mapping(m)
                more = [k for k in m if k not in known]
                if more:
                    extra = (extra or set()).union(more)
        if extra:
            extras = tuple(sorted(extra))
            for k in extras:
                self._qagent.setdefault(k, quote(k))
            return self.agents + extras
        return self.agents

    # -- rows ---------------------------------------------------------------------------------------------------
    def frame_lines(self, rec: Any, confirmed: bool = True) -> str:
        """The CSV lines of one record (frames.csv layout, or the tail's layout when not ``confirmed``)."""
        maps = [rec.actions, rec.observations, rec.rewards, rec.terminated, rec.truncated, rec.infos]
        agents = self._agents_of(maps)
        acts, obs, rews, terms, truncs, infos = maps
        inputs, away = rec.inputs, rec.away
        if confirmed:
            head = f"{self._qsession},{rec.episode},{rec.frame},{rec.global_frame},"
            end = f",{_b(rec.episode_over)},%s,%s,{rec.state_hash or ''}\n"
        else:
            head = f"{self._qsession},false,{rec.episode},{rec.frame},{rec.global_frame},"
            end = f",{_b(rec.episode_over)},%s,%s\n"
        seat_of, qagent, cell = self._seat_of, self._qagent, scalar_cell
        # Tail rows inline every value: blobs.csv is canonical and must hold only what confirmed rows use.
        jcell = self._json if confirmed else partial(self._json, inline=True)
        lines = []
        for agent in agents:
            seat = seat_of.get(agent)
            if seat is None or seat >= len(inputs):
                who = ",,,"
            else:
                who = f"{seat},{inputs[seat]},{'true' if away[seat] else 'false'},"
            a, r = acts.get(agent, _MISSING), rews.get(agent, _MISSING)
            te, tr = terms.get(agent, _MISSING), truncs.get(agent, _MISSING)
            lines.append(
                f"{head}{qagent[agent]},{who}{'' if a is _MISSING else cell(a)},{'' if r is _MISSING else cell(r)},"
                f"{'' if te is _MISSING else cell(te)},{'' if tr is _MISSING else cell(tr)}"
                + end % (jcell(obs.get(agent, _MISSING)), jcell(infos.get(agent, _MISSING)))
            )
        return "".join(lines)

    def reset_lines(self, start: Any) -> str:
        maps = [start.observations, start.infos]
        agents = self._agents_of(maps)
        obs, infos = maps
        head = f"{self._qsession},{start.episode},{start.seed},{start.start_frame},"
        return "".join(
            head + self._qagent[agent] + "," + self._json(obs.get(agent, _MISSING)) + ","
            + self._json(infos.get(agent, _MISSING)) + "\n"
            for agent in agents
        )

    # -- incremental update -------------------------------------------------------------------------------------
    def update(self, log: Any, through: int | None = None) -> tuple[str, str]:
        """Encode the records and episode starts confirmed since the last call (only those before global frame
        ``through`` when given); returns the new text."""
        starts = log.episode_starts[self.starts_done:]
        records = confirmed_since(log, self.frames_done)
        if through is not None:
            records = records[:max(0, through - self.frames_done)]
            starts = [s for s in starts if s.start_frame < through]
        new_resets = "".join(self.reset_lines(s) for s in starts)
        for s in starts:
            self.episodes[s.episode] = [s.seed, s.start_frame, 0, False, False, False]
            if self.layouts is not None:
                self._note_layouts(self.layouts["resets"], s.episode, s.observations)
        chunk = []
        episodes = self.episodes
        layouts = self.layouts
        for rec in records:
            chunk.append(self.frame_lines(rec))
            if layouts is not None and is_hash_point(rec.global_frame, rec.episode_over, self._hash_every):
                self._note_layouts(layouts["frames"], rec.global_frame, rec.observations)
            tally = episodes.get(rec.episode)
            if tally is None:  # a record without a confirmed start: cannot happen with FrameLog, kept honest
                tally = episodes[rec.episode] = [None, rec.global_frame - rec.frame, 0, False, False, False]
            tally[2] += 1
            if rec.episode_over:
                tally[3] = True
                tally[4] = any(bool(v) for v in _mapping(rec.terminated).values())
                tally[5] = any(bool(v) for v in _mapping(rec.truncated).values())
        new_frames = "".join(chunk)
        if records:
            self.last_hash = records[-1].state_hash
        if new_resets:
            self.resets.append(self.starts_done, new_resets)
        if new_frames:
            self.frames.append(self.frames_done, new_frames)
        if records:
            self.diag.append(self.frames_done, diag_frame_text(records, self.frames_done + len(records), {}))
            self.away.feed(records)
        self.starts_done += len(starts)
        self.frames_done += len(records)
        return new_frames, new_resets

    @staticmethod
    def _note_layouts(layouts: dict[str, list[list[Any]]], at: int, observations: Any) -> None:
        if observations is None:
            return
        for agent, obs in _mapping(observations).items():
            shape = layout(obs)
            runs = layouts.get(agent)
            if runs is None:
                if shape is not None:
                    layouts[agent] = [[at, shape]]
            elif runs[-1][1] != shape:
                runs.append([at, shape])

    def frames_since(self, frames: int) -> str:
        """Encoded frame rows from confirmed frame ``frames`` on (a point where an update started)."""
        return self.frames.since(frames)

    def resets_since(self, starts: int) -> str:
        return self.resets.since(starts)

    def diag_since(self, frames: int, log: Any = None, rendered: Mapping[int, Any] | None = None) -> str:
        """diagnostics/frames.csv rows of the encoded records from frame ``frames`` on (a point where an update
        started), with the ``desynced`` flags ``log`` set since they were encoded and the ``rendered`` values."""
        late = {g for g in getattr(log, "desynced_records", ()) if frames <= g < self.frames_done}
        shown = {g: v for g, v in (rendered or {}).items() if frames <= g < self.frames_done}
        if not late and not shown:
            return self.diag.since(frames)
        touched = sorted(late.union(shown))
        out = []
        for start, text in self.diag.chunks():
            if start < frames:
                continue
            lines = text.splitlines(keepends=True)
            hits = [g for g in touched if start <= g < start + len(lines)]
            for g in hits:
                lines[g - start] = _patch_diag_line(lines[g - start], g in late, shown.get(g, _MISSING))
            out.append("".join(lines) if hits else text)
        return "".join(out)

    def set_chunks(self, frames: list[tuple[int, str]], resets: list[tuple[int, str]]) -> None:
        """Install already encoded chunks as ``(mark, text)`` pairs (checkpoint recovery)."""
        self.frames, self.resets = TextStore(), TextStore()
        for mark, text in frames:
            self.frames.append(mark, text)
        for mark, text in resets:
            self.resets.append(mark, text)

    def episodes_text(self) -> str:
        q = self._qsession
        lines = [schema.EPISODES.header + "\n"]
        for ep in sorted(self.episodes):
            seed, start, frames, ended, term, trunc = self.episodes[ep]
            lines.append(f"{q},{ep},{_i(seed)},{start},{frames},{_b(ended)},{_b(term)},{_b(trunc)}\n")
        return "".join(lines)

    def blobs_text(self) -> str:
        return schema.BLOBS.header + "\n" + "".join(f"{k},{quote(self.blobs[k])}\n" for k in sorted(self.blobs))

    def episode_list(self) -> list[dict[str, Any]]:
        names = ("seed", "start_frame", "frames", "ended", "terminated", "truncated")
        return [{"episode": ep, **dict(zip(names, self.episodes[ep]))} for ep in sorted(self.episodes)]


# -- metadata -------------------------------------------------------------------------------------------------
def canonical_metadata(ctx: ExportContext, enc: TableEncoder, confirmed_frames: int,
                       interim: bool = False) -> dict[str, Any]:
    """The part of metadata.json that is a pure function of the canonical data and the shared setup.

    ``interim``: an export taken at a confirmed episode end while the session goes on (status ``interim``)."""
    cfg = ctx.config
    episodes = enc.episode_list()
    ended = sum(1 for e in episodes if e["ended"])
    wanted = cfg.get("episodes")
    complete = wanted is not None and ended >= wanted
    if interim and not complete:
        status, reason = "interim", f"{ended} of {wanted} episodes confirmed; interim export, the session went on"
    else:
        status = "complete" if complete else "partial"
        reason = f"all {wanted} episodes confirmed" if complete else f"{ended} of {wanted} episodes confirmed"
    return {
        "format": schema.FORMAT,
        "format_version": schema.FORMAT_VERSION,
        "study": ctx.study,
        "session": ctx.session,
        "package": {"name": "pyodide-runtime", "version": ctx.package_version, "wheel_sha256": ctx.wheel_sha256},
        # Every package the page loaded (name, version, sha256): part of the canonical provenance, so two peers
        # that ran different package builds do not compare identical. Absent outside the page.
        **({"packages": [dict(p) for p in ctx.packages]} if getattr(ctx, "packages", None) is not None else {}),
        "runtime": {"pyodide": ctx.pyodide_version, "python": ctx.python_version},
        # The ONNX policies that played hosted seats: each model by its sha256, and the page that ran it.
        **({"policies": [dict(p) for p in ctx.policies]} if getattr(ctx, "policies", None) else {}),
        "env": ctx.env,
        "agents": list(ctx.agents),
        "seats": list(ctx.seats),
        "config": cfg,
        "config_digest": digest(cfg),
        "fps": cfg.get("fps"),
        "input_delay": cfg.get("input_delay"),
        "prediction_window": cfg.get("max_prediction"),
        "seeds": {"session": cfg.get("seed"), "episodes": [e["seed"] for e in episodes]},
        "episodes": episodes,
        "confirmed_frames": confirmed_frames,
        "final_state_hash": enc.last_hash,
        "status": status,
        "status_reason": reason,
        "inline_limit": ctx.inline_limit,
        # frame_hash "bytes": the dtype and shape of the arrays hashed by their bytes, so validators rebuild them
        **({"observation_layouts": enc.layouts} if enc.layouts is not None else {}),
    }


def _local_metadata(ctx: ExportContext, diag: Diagnostics, tail_frames: int) -> dict[str, Any]:
    return {
        "participant": ctx.participant,
        "seat": ctx.seat,
        "user_agent": diag.user_agent,
        "started_at": diag.started_at,
        "ended_at": diag.ended_at,
        "session_outcome": diag.outcome,
        "end_reason": diag.end_reason,
        "tick_intervals": diag.tick_summary(),
        "unconfirmed_tail_frames": tail_frames,
        "stats": dict(diag.stats),
        "extra": dict(diag.extra),
    }


# -- diagnostics tables ---------------------------------------------------------------------------------------
def _table(spec: schema.FileSpec, rows: Iterable[list[str]]) -> str:
    return spec.header + "\n" + "".join(row(r) for r in rows)


def diag_frame_text(records: Iterable[Any], confirmed: int, rendered: Mapping[int, Any]) -> str:
    """Rows (no header) of diagnostics/frames.csv for ``records``."""
    lines = []
    for rec in records:
        g = rec.global_frame
        shown = rendered.get(g, _MISSING) if rendered else _MISSING
        lines.append(
            f"{g},{rec.episode},{rec.frame},{_b(g < confirmed)},{_b(rec.speculative)},{rec.resimulated},"
            f"{_f(rec.first_ms)},{_f(rec.confirmed_ms)},{_b(rec.desynced)},"
            f"{'' if shown is _MISSING else quote(json_cell(shown))}\n"
        )
    return "".join(lines)


def _patch_diag_line(line: str, desynced: bool, shown: Any) -> str:
    # Fields before ``desynced`` are numbers and booleans (no commas); ``rendered`` is last and may hold commas.
    parts = line.split(",", 9)
    if desynced:
        parts[8] = "true"
    if shown is not _MISSING:
        parts[9] = quote(json_cell(shown)) + "\n"
    return ",".join(parts)


class AwayTracker:
    """Away spans (per seat, ``[start_frame, end_frame)``) over records fed in frame order."""

    def __init__(self, seats: int) -> None:
        self.seats = seats
        self.closed: list[dict[str, Any]] = []
        self.open: dict[int, dict[str, Any]] = {}

    def feed(self, records: Iterable[Any]) -> None:
        seats, opened, closed = range(self.seats), self.open, self.closed
        for rec in records:
            flags = rec.away
            for seat in seats:
                away = seat < len(flags) and bool(flags[seat])
                span = opened.get(seat)
                if away and span is None:
                    opened[seat] = {"seat": seat, "start_frame": rec.global_frame, "end_frame": None}
                elif not away and span is not None:
                    span["end_frame"] = rec.global_frame
                    closed.append(opened.pop(seat))

    def spans(self, more: Iterable[Any] = ()) -> list[dict[str, Any]]:
        """The spans so far, continued over ``more`` (without feeding them), ordered by start frame and seat."""
        probe = AwayTracker(self.seats)
        probe.closed = [dict(s) for s in self.closed]
        probe.open = {seat: dict(s) for seat, s in self.open.items()}
        probe.feed(more)
        spans = probe.closed + list(probe.open.values())
        spans.sort(key=lambda s: (s["start_frame"], s["seat"]))
        return spans


def away_spans(records: Sequence[Any], seats: int) -> list[dict[str, Any]]:
    tracker = AwayTracker(seats)
    tracker.feed(records)
    return tracker.spans()


def _items(items: Sequence[Any], names: Sequence[str]) -> list[dict[str, Any]]:
    return [_as_dict(x, names) for x in items]


def build_files(
    log: Any, ctx: ExportContext, diagnostics: Diagnostics | None = None, encoder: TableEncoder | None = None,
) -> dict[str, bytes]:
    """Every file of the bundle except the manifest, as ``{path: bytes}`` in bundle order."""
    diag = diagnostics or Diagnostics()
    enc = encoder or TableEncoder(ctx)
    enc.update(log)
    tail = log.unconfirmed_tail()
    confirmed = enc.frames_done
    return assemble_files(
        ctx, enc, diag,
        confirmed=confirmed,
        tail_text="".join(enc.frame_lines(r, confirmed=False) for r in tail),
        tail_frames=len(tail),
        diag_frames=enc.diag_since(0, log, diag.rendered) + diag_frame_text(tail, confirmed, diag.rendered),
        away=enc.away.spans(tail),
    )


def assemble_files(
    ctx: ExportContext, enc: TableEncoder, diag: Diagnostics, *, confirmed: int, tail_text: str, tail_frames: int,
    diag_frames: str, away: list[dict[str, Any]], local_extra: Mapping[str, Any] | None = None,
    interim: bool = False,
) -> dict[str, bytes]:
    """The bundle's files from already encoded parts (shared by the writer and checkpoint recovery)."""
    from pyodide_runtime.export.codebook import codebook_json, codebook_markdown

    canon = canonical_metadata(ctx, enc, confirmed, interim)
    files: dict[str, bytes] = {
        schema.FRAMES.path: enc.frames.to_bytes(schema.FRAMES.header + "\n"),
        schema.RESETS.path: enc.resets.to_bytes(schema.RESETS.header + "\n"),
        schema.EPISODES.path: enc.episodes_text().encode("utf-8"),
        schema.BLOBS.path: enc.blobs_text().encode("utf-8"),
    }
    local = _local_metadata(ctx, diag, tail_frames)
    local.update(local_extra or {})
    files[schema.METADATA.path] = json_file({"canonical": canon, "participant_local": local})
    if canon["status"] == "partial":
        files[schema.TAIL.path] = (schema.TAIL.header + "\n" + tail_text).encode("utf-8")
    files[schema.DIAG_FRAMES.path] = (schema.DIAG_FRAMES.header + "\n" + diag_frames).encode("utf-8")
    files[schema.DIAG_ROLLBACKS.path] = _table(schema.DIAG_ROLLBACKS, (
        [_i(r["frame"]), _i(r["depth"]), json_cell(list(r["seats"] or [])), _f(r["at_ms"])]
        for r in _items(diag.rollbacks, Diagnostics.ROLLBACK_FIELDS))).encode("utf-8")
    spans = _items(diag.away, Diagnostics.AWAY_FIELDS) if diag.away else away
    files[schema.DIAG_AWAY.path] = _table(schema.DIAG_AWAY, (
        [_i(a.get("seat")), _i(a.get("start_frame")), _i(a.get("end_frame")), _f(a.get("start_ms")),
         _f(a.get("end_ms")), str(a.get("mode") or "")] for a in spans)).encode("utf-8")
    files[schema.DIAG_FAST_FORWARDS.path] = _table(schema.DIAG_FAST_FORWARDS, (
        [_i(f["start_frame"]), _i(f["end_frame"]), _f(f["at_ms"])]
        for f in _items(diag.fast_forwards, Diagnostics.FAST_FORWARD_FIELDS))).encode("utf-8")
    files[schema.DIAG_DESYNCS.path] = _table(schema.DIAG_DESYNCS, (
        [_i(d["frame"]), _i(d["seat"]), str(d["local_hash"] or ""), str(d["remote_hash"] or "")]
        for d in _items(diag.desyncs, Diagnostics.DESYNC_FIELDS))).encode("utf-8")
    network = {"network": dict(diag.network), "stats": dict(diag.stats)}
    if diag.rejoins:
        network["rejoins"] = _items(diag.rejoins, Diagnostics.REJOIN_FIELDS)
    files[schema.DIAG_NETWORK.path] = json_file(network)
    files[schema.CODEBOOK_MD.path] = codebook_markdown().encode("utf-8")
    files[schema.CODEBOOK_JSON.path] = json_file(codebook_json())
    return files
