"""Wall-time pacing: how many frames are due at a given time, and the frames time sync asks a leading peer to skip."""

from __future__ import annotations

from collections.abc import Collection
from typing import TYPE_CHECKING, Any

from pyodide_runtime.config import SessionConfig

if TYPE_CHECKING:
    from pyodide_runtime.session.peer import PeerLink

__all__ = ["Pacer"]


class Pacer:
    """Frame ``n`` is due ``n * frame_ms`` after the epoch (frame 0's time); waits and skips move the epoch."""

    __slots__ = ("epoch", "frame_ms", "_stats", "_wait_frames", "_skip_next", "_next_sync_frame", "_fps",
                 "_threshold", "catch_up_to")

    def __init__(self, config: SessionConfig, stats: dict[str, Any]) -> None:
        self.epoch = 0.0
        self.frame_ms = config.frame_ms
        self._stats = stats  # counts the skipped frames in "time_sync_skips"
        self._wait_frames = 0
        self._skip_next = False
        self._next_sync_frame = config.fps
        self._fps = config.fps
        self._threshold = config.time_sync_threshold
        #: A resumed session keeps its debt below this frame (the partner's): a stall while catching up waits
        #: for the partner's inputs instead of giving up the catch-up.
        self.catch_up_to = 0

    def target(self, now_ms: float) -> int:
        """Frames that should have been simulated by ``now_ms``."""
        return int((now_ms - self.epoch) / self.frame_ms) + 1

    def due(self, now_ms: float, frame: int) -> int:
        """Frames to simulate now, from ``frame`` on; one fewer on every other call while time sync asks to wait."""
        due = self.target(now_ms) - frame
        if due > 0 and self._wait_frames > 0:
            # Skip every other frame: a slowdown rather than a visible pause.
            self._skip_next = not self._skip_next
            if self._skip_next:
                self._wait_frames -= 1
                self.epoch += self.frame_ms
                self._stats["time_sync_skips"] += 1
                due -= 1
        return due

    def waited(self, now_ms: float, frame: int) -> None:
        """The simulation could not go on (stall or end of the timeline): waiting accrues no debt (except while a
        resumed session catches up to its partner's frame, :attr:`catch_up_to`)."""
        if frame < self.catch_up_to:
            return
        self.epoch = now_ms - (frame - 1) * self.frame_ms

    def sync(self, frame: int, peers: Collection[PeerLink], locally_away: bool) -> None:
        """Once a second of frames: wait a few frames if we run ahead of a present peer (neither gone nor away)."""
        if frame < self._next_sync_frame:
            return
        self._next_sync_frame = frame + self._fps
        if locally_away:
            return
        lead = max((p.sync.lead() for p in peers if not (p.gone or p.away)), default=0.0)
        if lead >= self._threshold:
            # At most a few frames per second: a peer that is behind because it is catching up after a
            # freeze closes the gap itself within a second, and must not drag this one down meanwhile.
            self._wait_frames += min(int(lead), max(1, self._fps // 6))
            for p in peers:
                p.sync.reset()
