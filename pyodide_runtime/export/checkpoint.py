"""Incremental checkpoints of an export, and recovery of a bundle from them.

A checkpoint is one line of JSON holding the canonical rows confirmed since the previous checkpoint (already
encoded, so nothing is encoded twice), the current unconfirmed tail and diagnostics, and the provenance. The
page appends each checkpoint's bytes to storage (IndexedDB) at every episode end and whenever it is hidden. After
a crash or reload, :func:`recover` turns the stored bytes back into a valid bundle, flagged as recovered; frames
confirmed after the last checkpoint are lost, and the bundle says ``partial`` unless every episode was confirmed.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from pyodide_runtime.canonical import to_canonical
from pyodide_runtime.export import schema
from pyodide_runtime.export.bundle import pack
from pyodide_runtime.export.context import Diagnostics, ExportContext
from pyodide_runtime.export.writer import TableEncoder, assemble_files, confirmed_since, diag_frame_text

__all__ = ["Checkpoint", "CheckpointError", "recover", "resume_point", "KIND", "VERSION"]

KIND = "pyodide_runtime.checkpoint"
VERSION = 1


class CheckpointError(ValueError):
    """Stored checkpoint bytes that hold no usable checkpoint."""


@dataclass
class Checkpoint:
    """Rows confirmed in ``[frame_start, frame_end)`` (and episode starts ``[starts_start, starts_end)``)."""

    context: dict[str, Any]
    frame_start: int
    frame_end: int
    starts_start: int
    starts_end: int
    frames_csv: str
    resets_csv: str
    diag_csv: str
    blobs: dict[str, str]
    blob_end: int
    episodes: list[dict[str, Any]]
    last_hash: str | None
    tail_csv: str = ""
    tail_frames: int = 0
    tail_diag_csv: str = ""
    away: list[dict[str, Any]] = field(default_factory=list)
    diagnostics: dict[str, Any] | None = None
    #: The encoder's observation layouts so far (``frame_hash = "bytes"`` only).
    layouts: dict[str, dict[str, list[list[Any]]]] | None = None

    @classmethod
    def from_log(
        cls, log: Any, context: ExportContext, *, since: Checkpoint | None = None,
        diagnostics: Diagnostics | None = None, encoder: TableEncoder | None = None,
    ) -> Checkpoint:
        """What ``log`` confirmed after ``since`` (everything when ``None``), plus its current tail.

        Pass the same ``encoder`` every time (as :class:`~pyodide_runtime.export.exporter.Exporter` does) to
        encode each record once; without one, ``since`` tells where to start.
        """
        enc = encoder
        blob_start = since.blob_end if since is not None else 0
        if enc is None:
            enc = TableEncoder(context)
            blob_start = 0
            if since is not None:
                enc.frames_done, enc.starts_done = since.frame_end, since.starts_end
                enc.episodes = {e["episode"]: [e["seed"], e["start_frame"], e["frames"], e["ended"],
                                               e["terminated"], e["truncated"]] for e in since.episodes}
                enc.last_hash = since.last_hash
                if enc.layouts is not None and since.layouts:
                    enc.layouts = _copy_layouts(since.layouts)
                enc.away.feed(confirmed_since(log, 0)[:since.frame_end])
        frame_start = since.frame_end if since is not None else 0
        starts_start = since.starts_end if since is not None else 0
        if enc.frames_done < frame_start:
            raise ValueError(f"checkpoint since frame {frame_start}, but the encoder is at {enc.frames_done}")
        enc.update(log)
        tail = log.unconfirmed_tail()
        tail_csv = "".join(enc.frame_lines(r, confirmed=False) for r in tail)
        rendered = diagnostics.rendered if diagnostics is not None else {}
        confirmed = enc.frames_done
        return cls(
            context=context.to_dict(),
            frame_start=frame_start, frame_end=enc.frames_done,
            starts_start=starts_start, starts_end=enc.starts_done,
            frames_csv=enc.frames_since(frame_start), resets_csv=enc.resets_since(starts_start),
            diag_csv=enc.diag_since(frame_start, log, rendered),
            blobs=dict(list(enc.blobs.items())[blob_start:]), blob_end=len(enc.blobs),
            episodes=enc.episode_list(), last_hash=enc.last_hash,
            tail_csv=tail_csv, tail_frames=len(tail),
            tail_diag_csv=diag_frame_text(tail, confirmed, rendered),
            away=enc.away.spans(tail),
            diagnostics=_compact(diagnostics) if diagnostics is not None else None,
            layouts=_copy_layouts(enc.layouts),
        )

    def to_bytes(self) -> bytes:
        """One JSON line (ending in ``\\n``); concatenate successive checkpoints freely."""
        data = {"kind": KIND, "version": VERSION, **self.__dict__}
        text = json.dumps(data, ensure_ascii=False, separators=(",", ":"), default=to_canonical)
        return (text + "\n").encode("utf-8")

    @classmethod
    def parse(cls, data: bytes | str | Sequence[bytes]) -> list[Checkpoint]:
        """Every checkpoint in stored bytes (a line cut short by a crash at the very end is skipped)."""
        if isinstance(data, (bytes, bytearray, str)):
            chunks = [data]
        else:
            chunks = list(data)
        text = "".join(c.decode("utf-8", "replace") if isinstance(c, (bytes, bytearray)) else c for c in chunks)
        lines = [line for line in text.split("\n") if line.strip()]
        out = []
        for i, line in enumerate(lines):
            try:
                obj = json.loads(line)
            except ValueError:
                if i == len(lines) - 1:
                    break  # the last write was interrupted
                raise CheckpointError(f"checkpoint line {i + 1} is not JSON") from None
            if not isinstance(obj, dict) or obj.get("kind") != KIND:
                raise CheckpointError(f"line {i + 1} is not a {KIND}")
            if obj.get("version") != VERSION:
                raise CheckpointError(f"checkpoint version {obj.get('version')} is not supported")
            obj.pop("kind")
            obj.pop("version")
            out.append(cls(**obj))
        return out


def _copy_layouts(layouts: Any) -> Any:
    # the encoder keeps extending its own lists: a checkpoint holds a copy
    if layouts is None:
        return None
    return {part: {agent: [list(run) for run in runs] for agent, runs in by_agent.items()}
            for part, by_agent in layouts.items()}


def _compact(diagnostics: Diagnostics) -> dict[str, Any]:
    # Keep each checkpoint small: rendered frames already travel in diag_csv, tick intervals as their summary.
    data = diagnostics.to_dict()
    data["tick_stats"] = diagnostics.tick_summary()
    data["tick_intervals_ms"] = []
    data["rendered"] = {}
    return data


def recover(data: bytes | str | Sequence[bytes]) -> bytes:
    """A bundle from stored checkpoints: the contiguous confirmed rows they hold, the latest tail and
    diagnostics. ``participant_local.recovered_from_checkpoint`` is true in its metadata."""
    used = _contiguous(data)
    frames, starts = used[-1].frame_end, used[-1].starts_end
    last = used[-1]
    ctx = ExportContext.from_dict(last.context)
    enc = TableEncoder(ctx)
    enc.set_chunks([(cp.frame_start, cp.frames_csv) for cp in used if cp.frames_csv],
                   [(cp.starts_start, cp.resets_csv) for cp in used if cp.resets_csv])
    for cp in used:
        enc.blobs.update(cp.blobs)
    enc.episodes = {e["episode"]: [e["seed"], e["start_frame"], e["frames"], e["ended"], e["terminated"],
                                   e["truncated"]] for e in last.episodes}
    enc.last_hash = last.last_hash
    if enc.layouts is not None and last.layouts:
        enc.layouts = _copy_layouts(last.layouts)
    enc.frames_done, enc.starts_done = frames, starts
    diag_data = next((cp.diagnostics for cp in reversed(used) if cp.diagnostics is not None), None)
    diag = Diagnostics.from_dict(diag_data) if diag_data is not None else Diagnostics()
    if diag.end_reason is None:
        diag.end_reason = "recovered from a checkpoint (the page closed or crashed before its export)"
    files = assemble_files(
        ctx, enc, diag, confirmed=frames, tail_text=last.tail_csv, tail_frames=last.tail_frames,
        diag_frames="".join(cp.diag_csv for cp in used) + last.tail_diag_csv, away=last.away,
        local_extra={"recovered_from_checkpoint": True, "checkpoints_used": len(used)},
    )
    return pack(files)


def _contiguous(data: bytes | str | Sequence[bytes]) -> list[Checkpoint]:
    """The stored checkpoints that follow each other from frame 0 on (raises :class:`CheckpointError` if none)."""
    checkpoints = Checkpoint.parse(data)
    if not checkpoints:
        raise CheckpointError("no checkpoint found")
    used: list[Checkpoint] = []
    frames, starts = 0, 0
    for cp in checkpoints:
        if cp.frame_end <= frames and cp.starts_end <= starts:
            continue  # stored twice
        if cp.frame_start == 0 and cp.starts_start == 0 and used:
            used, frames, starts = [], 0, 0  # a resumed page checkpoints from frame 0 again: its chain replaces
        if cp.frame_start != frames or cp.starts_start != starts:
            break  # a gap: what follows cannot be placed
        used.append(cp)
        frames, starts = cp.frame_end, cp.starts_end
    if not used:
        raise CheckpointError("the first stored checkpoint does not start at frame 0")
    return used


def resume_point(data: bytes | str | Sequence[bytes]) -> Any:
    """What a reloaded page resumes its session from (a :class:`~pyodide_runtime.session.resume.ResumePoint`):
    the confirmed frames of the stored checkpoints (the same input :func:`recover` takes), with every seat's
    recorded input and away flag, the chained state hashes and the episode starts, read back from their rows."""
    from pyodide_runtime.protocol.messages import AWAY_BIT
    from pyodide_runtime.session.resume import ResumePoint

    used = _contiguous(data)
    last = used[-1]
    ctx = last.context
    seats = list(ctx.get("seats") or [])
    confirmed = last.frame_end
    frames_text = "".join(cp.frames_csv for cp in used)
    resets_text = "".join(cp.resets_csv for cp in used)
    names = schema.FRAMES.names
    col = {n: i for i, n in enumerate(names)}
    g_at, seat_at, input_at, away_at, hash_at = (col["global_frame"], col["seat"], col["input"], col["away"],
                                                 col["state_hash"])
    inputs: list[list[int]] = [[-1] * len(seats) for _ in range(confirmed)]
    hashes: list[str] = [""] * confirmed
    try:
        for row in csv.reader(io.StringIO(frames_text, newline="")):
            if len(row) != len(names):
                raise CheckpointError(f"a checkpoint row has {len(row)} cells, not {len(names)}")
            g = int(row[g_at])
            hashes[g] = row[hash_at]
            if row[seat_at] != "":
                inputs[g][int(row[seat_at])] = int(row[input_at]) | (AWAY_BIT if row[away_at] == "true" else 0)
        starts = sorted({(int(r[1]), int(r[2]), int(r[3])) for r in csv.reader(io.StringIO(resets_text, newline=""))})
    except (ValueError, IndexError) as exc:
        raise CheckpointError(f"the checkpoint's rows cannot be read: {exc}") from None
    if any(-1 in v for v in inputs) or any(not h for h in hashes):
        raise CheckpointError("the checkpoint's rows do not cover every seat of every confirmed frame")
    return ResumePoint(
        confirmed=confirmed, inputs=[tuple(v) for v in inputs], hashes=hashes, starts=starts,
        config=dict(ctx.get("config") or {}), seat=int(ctx.get("seat", -1)), env=dict(ctx.get("env") or {}),
        context=dict(ctx), frames_text=frames_text, resets_text=resets_text,
    )
