"""The frame log: speculative records, their one-time promotion to the confirmed buffer, and the hash chain.

Every simulated step produces a :class:`FrameRecord` that enters the *speculative* buffer. A rollback discards
the speculative records at and after its frame. When every input up to a frame is known and no rollback at or
before it is pending, the engine promotes it: the record moves to :attr:`FrameLog.confirmed` exactly once and
extends the hash chain ``hash_f = sha256(hash_{f-1} || payload_f)``. Episode starts (reset observations) are
chained too, just before the first frame of their episode.

Every frame's payload starts with a small key: its global frame, episode, frame, episode flag, and each seat's
input and away flag, packed big-endian with ``struct``. What follows depends on the hash mode:

- ``"full"``: the canonical encoding of every record (the strongest check, at the cost of one canonical JSON
  encoding per frame during play);
- ``"sampled"`` (default): the canonical record of every ``sample_every``-th frame and of every episode's last
  frame. Any input divergence changes every later hash and a diverging game shows up in the next sampled
  record, while play pays for one canonical encoding per ``sample_every`` frames. Exports are compared in full
  afterwards.
- ``"bytes"``: like ``"sampled"`` (the same hash points), but at a hash point the payload is the canonical
  encoding of the record without its observations, followed by the observations in the byte framing of
  :mod:`pyodide_runtime.arrayhash`: numeric numpy arrays contribute a dtype/shape header and their raw
  little-endian C-order bytes instead of a JSON list of every element. Meant for large numeric observations
  (images, grids), where encoding them as JSON dominates the cost; ``hash_interval = 1`` hashes every frame.
  Episode starts hash their reset observations in the same framing.

The game's own snapshot is not hashed: ``get_state`` results need not be canonically encodable. The state is
covered through the observations, rewards and flags the records hold.

Canonical fields are a pure function of (config, seeds, confirmed inputs). The diagnostics (``speculative``,
``resimulated``, ``first_ms``, ``confirmed_ms``, ``desynced``, ``state_hash``) are per-peer facts or derived
checks and never enter the payloads. When a session ends partial, the speculative records left over become
:meth:`FrameLog.unconfirmed_tail`.

A long session need not keep every confirmed record: once an exporter has encoded them,
:meth:`FrameLog.release` drops confirmed records before a frame (the page does this every tick, so its memory stays
flat). :attr:`FrameLog.confirmed` then holds the records from :attr:`FrameLog.confirmed_base` on, while
:attr:`FrameLog.confirmed_count`, :meth:`FrameLog.hash_at` (at hash points, the frames peers exchange hashes of)
and :attr:`FrameLog.desynced_frames` still cover the whole session. Tools that want every record (tests,
``simulate``, ``replay``) never call it.
"""

from __future__ import annotations

import hashlib
import struct
from collections import deque
from collections.abc import Mapping
from typing import Any

from pyodide_runtime.arrayhash import feed
from pyodide_runtime.canonical import canonical_bytes

__all__ = ["FrameRecord", "EpisodeStart", "FrameLog", "is_hash_point", "CANONICAL_FIELDS", "DIAGNOSTIC_FIELDS", "HASH_MODES"]

HASH_MODES = ("sampled", "full", "bytes")
# Per-frame chain key: global frame, episode, frame, episode_over, then each seat's input and away flag.
_KEY_STRUCTS: dict[int, struct.Struct] = {}


def _key_struct(seats: int) -> struct.Struct:
    packer = _KEY_STRUCTS.get(seats)
    if packer is None:
        packer = _KEY_STRUCTS[seats] = struct.Struct(f"!IIIB{seats}H{seats}B")
    return packer



CANONICAL_FIELDS = (
    "global_frame", "episode", "frame", "inputs", "away", "actions", "observations", "rewards",
    "terminated", "truncated", "infos", "episode_over",
)
_NOT_OBSERVATIONS = tuple(name for name in CANONICAL_FIELDS if name != "observations")
DIAGNOSTIC_FIELDS = ("speculative", "resimulated", "first_ms", "confirmed_ms", "desynced", "state_hash")


def is_hash_point(global_frame: int, episode_over: bool, every: int) -> bool:
    """Whether a frame is a hash point: every ``every``-th frame and every episode's last frame."""
    return episode_over or (global_frame + 1) % every == 0


class FrameRecord:
    """One simulated step. ``inputs``/``away`` are per seat; the other per-agent mappings come from the game."""

    __slots__ = CANONICAL_FIELDS + DIAGNOSTIC_FIELDS

    def __init__(
        self,
        global_frame: int,
        episode: int,
        frame: int,
        inputs: tuple[int, ...],
        away: tuple[bool, ...],
        actions: Mapping[str, Any],
        observations: Mapping[str, Any],
        rewards: Mapping[str, float],
        terminated: Mapping[str, bool],
        truncated: Mapping[str, bool],
        infos: Mapping[str, Any],
        episode_over: bool,
        speculative: bool,
        first_ms: float,
    ) -> None:
        self.global_frame = global_frame
        self.episode = episode
        self.frame = frame
        self.inputs = inputs
        self.away = away
        self.actions = actions
        self.observations = observations
        self.rewards = rewards
        self.terminated = terminated
        self.truncated = truncated
        self.infos = infos
        self.episode_over = episode_over
        self.speculative = speculative
        self.resimulated = 0
        self.first_ms = first_ms
        self.confirmed_ms: float | None = None
        self.desynced = False
        self.state_hash: str | None = None

    @property
    def confirmed(self) -> bool:
        """Whether this record was promoted (``False`` for records of the unconfirmed tail)."""
        return self.confirmed_ms is not None

    def canonical(self) -> dict[str, Any]:
        """The canonical fields as a dict (what exports and the hash chain use)."""
        return {name: getattr(self, name) for name in CANONICAL_FIELDS}

    def diagnostics(self) -> dict[str, Any]:
        """The per-peer, non-canonical fields."""
        return {name: getattr(self, name) for name in DIAGNOSTIC_FIELDS}

    def __repr__(self) -> str:
        return f"FrameRecord(episode={self.episode}, frame={self.frame}, global_frame={self.global_frame})"


class EpisodeStart:
    """The reset of an episode: its seed, the global frame of its first step, and the reset output."""

    __slots__ = ("episode", "seed", "start_frame", "observations", "infos", "confirmed_ms")

    def __init__(self, episode: int, seed: int, start_frame: int, observations: Any, infos: Any) -> None:
        self.episode = episode
        self.seed = seed
        self.start_frame = start_frame
        self.observations = observations
        self.infos = infos
        self.confirmed_ms: float | None = None

    def canonical(self) -> dict[str, Any]:
        return {
            "episode": self.episode, "seed": self.seed, "start_frame": self.start_frame,
            "observations": self.observations, "infos": self.infos,
        }


class FrameLog:
    """Speculative and confirmed frame records of one peer."""

    def __init__(self, hash_mode: str = "sampled", sample_every: int = 30) -> None:
        if hash_mode not in HASH_MODES:
            raise ValueError(f"hash_mode must be one of {HASH_MODES}")
        self.hash_mode = hash_mode
        self.sample_every = sample_every
        #: Confirmed records from global frame :attr:`confirmed_base` on (all of them unless :meth:`release` ran).
        self.confirmed: list[FrameRecord] = []
        self.confirmed_base = 0
        #: Chain hashes of released records at hash points (every ``sample_every``-th frame and episode ends).
        self._released_hashes: dict[int, str] = {}
        self.episode_starts: list[EpisodeStart] = []
        self._speculative: deque[FrameRecord] = deque()
        self._pending_starts: list[EpisodeStart] = []
        self._carry: dict[int, tuple[float, int, bool]] = {}
        self._chain = b"\0" * 32
        self._packer: tuple[struct.Struct | None, int] = (None, -1)
        self._tail: list[FrameRecord] | None = None
        self.desynced_frames: list[int] = []
        #: Confirmed frames whose record is flagged ``desynced`` (kept after the record is released).
        self.desynced_records: set[int] = set()

    # -- speculative side -------------------------------------------------------------------------------------
    def add(self, record: FrameRecord) -> None:
        """Append a newly simulated record; diagnostics of a record it replaces after a rollback carry over."""
        if self._carry:
            carried = self._carry.pop(record.global_frame, None)
            if carried is not None:
                record.first_ms, record.resimulated, was_speculative = carried
                record.resimulated += 1
                record.speculative = True if was_speculative else record.speculative
        self._speculative.append(record)

    def add_episode_start(self, start: EpisodeStart) -> None:
        self._pending_starts.append(start)

    def discard_from(self, frame: int) -> int:
        """Drop speculative records at and after ``frame`` (and episode starts after it); returns how many."""
        spec = self._speculative
        dropped = 0
        while spec and spec[-1].global_frame >= frame:
            rec = spec.pop()
            self._carry[rec.global_frame] = (rec.first_ms, rec.resimulated, rec.speculative)
            dropped += 1
        self._pending_starts = [s for s in self._pending_starts if s.start_frame <= frame]
        return dropped

    # -- promotion --------------------------------------------------------------------------------------------
    def promote(self, count: int, now_ms: float) -> list[FrameRecord]:
        """Promote every speculative record with ``global_frame < count``; returns them in order.

        The caller guarantees that all inputs of those frames are known and that no rollback is pending.
        """
        spec = self._speculative
        confirmed = self.confirmed
        first = len(confirmed)
        base = self.confirmed_base
        starts = self._pending_starts
        if starts:
            self._promote_starts(count, now_ms)
        if not spec or spec[0].global_frame >= count:
            return []
        full = self.hash_mode == "full"
        raw = self.hash_mode == "bytes"
        every = self.sample_every
        sha256 = hashlib.sha256
        packer, width = self._packer
        chain = self._chain
        while spec and spec[0].global_frame < count:
            rec = spec.popleft()
            g = rec.global_frame
            if g != base + len(confirmed) or rec.confirmed_ms is not None:
                raise RuntimeError(f"frame {g} promoted out of order or twice")
            rec.confirmed_ms = now_ms
            inputs = rec.inputs
            if len(inputs) != width:
                width = len(inputs)
                packer = _key_struct(width)
                self._packer = (packer, width)
            key = packer.pack(g, rec.episode, rec.frame, rec.episode_over, *inputs, *rec.away)
            if raw and (rec.episode_over or (g + 1) % every == 0):
                h = sha256(chain + key)
                h.update(canonical_bytes({name: getattr(rec, name) for name in _NOT_OBSERVATIONS}))
                feed(h, rec.observations)
                self._chain = chain = h.digest()
            else:
                if full or (not raw and (rec.episode_over or (g + 1) % every == 0)):
                    key += canonical_bytes(rec.canonical())
                self._chain = chain = sha256(chain + key).digest()
            rec.state_hash = chain.hex()
            confirmed.append(rec)
            if starts:
                self._promote_starts(count, now_ms)
                chain = self._chain
        return confirmed[first:]

    def _promote_starts(self, count: int, now_ms: float) -> None:
        # An episode start is chained right after the last frame of the previous episode.
        starts = self._pending_starts
        while starts and starts[0].start_frame == self.confirmed_count and starts[0].start_frame <= count:
            start = starts.pop(0)
            start.confirmed_ms = now_ms
            if self.hash_mode == "bytes":
                # the reset's observations in the byte framing too, after the rest of the start
                rest = start.canonical()
                observations = rest.pop("observations")
                h = hashlib.sha256(self._chain + canonical_bytes({"episode_start": rest}))
                feed(h, observations)
                self._chain = h.digest()
            else:
                payload = {"episode_start": start.canonical()}
                self._chain = hashlib.sha256(self._chain + canonical_bytes(payload)).digest()
            self.episode_starts.append(start)

    # -- queries ----------------------------------------------------------------------------------------------
    @property
    def confirmed_count(self) -> int:
        """Frames confirmed in the whole session (released ones included)."""
        return self.confirmed_base + len(self.confirmed)

    def confirmed_since(self, global_frame: int) -> list[FrameRecord]:
        """The confirmed records from ``global_frame`` on; raises if some of them were released."""
        if global_frame < self.confirmed_base:
            raise ValueError(f"confirmed records before frame {self.confirmed_base} were released; "
                             f"frame {global_frame} on is no longer available")
        return self.confirmed[global_frame - self.confirmed_base:]

    def release(self, before: int) -> int:
        """Drop the confirmed records before global frame ``before`` (encode them first); returns how many.

        Hash points (every ``sample_every``-th frame and episode ends) keep their chain hash for :meth:`hash_at`.
        """
        drop = min(before, self.confirmed_count) - self.confirmed_base
        if drop <= 0:
            return 0
        every, kept = self.sample_every, self._released_hashes
        for rec in self.confirmed[:drop]:
            if rec.episode_over or (rec.global_frame + 1) % every == 0:
                kept[rec.global_frame] = rec.state_hash  # type: ignore[assignment]
        del self.confirmed[:drop]
        self.confirmed_base += drop
        return drop

    @property
    def speculative_count(self) -> int:
        return len(self._speculative)

    def speculative(self) -> list[FrameRecord]:
        """The current speculative records (not yet confirmed), oldest first."""
        return list(self._speculative)

    def hash_at(self, global_frame: int) -> str | None:
        """The chained hash after confirmed frame ``global_frame``, or ``None`` if it is not confirmed (or was
        released and is not a hash point)."""
        i = global_frame - self.confirmed_base
        if 0 <= i < len(self.confirmed):
            return self.confirmed[i].state_hash
        return self._released_hashes.get(global_frame)

    def mark_desync(self, global_frame: int) -> None:
        """Record that a peer's hash for this confirmed frame differed from ours."""
        i = global_frame - self.confirmed_base
        if 0 <= i < len(self.confirmed):
            self.confirmed[i].desynced = True
        if 0 <= global_frame < self.confirmed_count:
            self.desynced_records.add(global_frame)
        if global_frame not in self.desynced_frames:
            self.desynced_frames.append(global_frame)

    def close(self) -> None:
        """Freeze the log at session end; leftover speculative records become the unconfirmed tail."""
        if self._tail is None:
            self._tail = list(self._speculative)
            self._speculative.clear()
            self._pending_starts.clear()

    def unconfirmed_tail(self) -> list[FrameRecord]:
        """Records simulated but never confirmed (only non-empty for a session that ended partial)."""
        return list(self._tail if self._tail is not None else self._speculative)

    def canonical_rows(self) -> list[dict[str, Any]]:
        """Canonical dicts of the confirmed records still held (all unless released), in frame order."""
        return [rec.canonical() for rec in self.confirmed]
