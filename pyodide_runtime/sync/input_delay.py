"""Adaptive input delay: each peer chooses its own delay from the round trips it measures and the frame cost.

The delay is how many frames after sampling a local input that input is executed. A longer delay lets the
partners receive it before they simulate its frame (no prediction, no rollback); a shorter one feels more direct.
:class:`DelayController` measures, from the peers' acks, how long our inputs take to reach them and come back
(the time a frame's input was first sent to the time an ack covering it arrived), and chooses

* ``need(rtt) = ceil((rtt / 2 + frame_ms) / frame_ms)`` frames for a high percentile of the recent round trips:
  half a round trip to reach the partner, one frame for the partner's tick to read it; then
* at least ``need(tail rtt) - depth`` frames (the tail: the 97th percentile of the recent round trips), where ``depth`` is the deepest rollback whose
  resimulation still fits in one frame with the frame itself (``depth * cost + cost <= frame_ms``, ``cost`` the
  frame cost the page reports): a heavy env covers more of the jitter tail, since its rollbacks cost more;
* clamped to ``[min_input_delay, max_input_delay]``, raised by one frame as soon as the choice is higher, lowered
  by one frame only after it has stayed lower for ``lower_after`` frames.

Acks of the inputs of the first ``warmup`` frames are not measured: they time the partner's start (its first
ticks, its page settling), not the network.

Exactness does not depend on any of this: inputs are committed per frame and final. Raising the delay commits
the current input for the frame it skips as well; lowering it drops the input sampled for a frame that is
already committed. Every peer may run its own delay.
"""

from __future__ import annotations

import math
from collections import deque

__all__ = ["DelayController", "frames_needed"]

#: Acks needed before the first change.
MIN_SAMPLES = 8
#: Percentile of the recent round trips that the frame cost weighs (the tail a heavy env must absorb).
TAIL = 0.97
#: Send times kept (frames): an ack of an older frame measures nothing useful (bounded memory in long sessions).
SENT_KEPT = 4096


def frames_needed(rtt_ms: float, frame_ms: float) -> int:
    """Frames of delay that let an input sent now reach a partner ``rtt_ms / 2`` away, read by its next tick."""
    return math.ceil((rtt_ms / 2.0 + frame_ms) / frame_ms - 1e-9)


class DelayController:
    """Measures round trips from acks and chooses this peer's input delay (see the module docstring)."""

    __slots__ = ("delay", "low", "high", "frame_ms", "percentile", "lower_after", "frame_cost_ms", "_samples",
                 "_sent_at", "_sent_base", "_acked", "_since", "_target", "_dirty", "_below", "rtt_ms", "warmup")

    def __init__(
        self, start: int, low: int, high: int, frame_ms: float, *, window: int = 60, percentile: float = 0.9,
        lower_after: int = 60, warmup: int = 0,
    ) -> None:
        if not low <= start <= high:
            raise ValueError(f"start delay {start} outside [{low}, {high}]")
        self.delay = start
        self.low, self.high = low, high
        self.frame_ms = frame_ms
        self.percentile = percentile
        self.lower_after = lower_after
        #: Inputs of frames before this are not measured (the session's start).
        self.warmup = warmup
        #: The median wall time of one simulated frame, as the page reports it (0 until it does).
        self.frame_cost_ms = 0.0
        #: The smoothed round trip (the percentile of the window) behind the current choice, or ``None``.
        self.rtt_ms: float | None = None
        self._samples: deque[float] = deque(maxlen=window)
        self._sent_at: deque[float] = deque()  # wall time our input for frame _sent_base + i was first sent
        self._sent_base = 0
        self._acked: dict[int, int] = {}  # per seat: the highest ack sampled
        self._since = -math.inf  # inputs first sent before this are not measured (a pause came between)
        self._target = start
        self._dirty = False
        self._below = 0  # consecutive updates with the target below the delay

    # -- measuring --------------------------------------------------------------------------------------------
    def sent(self, count: int, now_ms: float) -> None:
        """Our inputs for frames ``0 .. count-1`` have been sent by ``now_ms`` (the new ones first now)."""
        sent_at = self._sent_at
        end = self._sent_base + len(sent_at)
        if count > end:
            sent_at.extend([now_ms] * (count - end))
            while len(sent_at) > SENT_KEPT:
                sent_at.popleft()
                self._sent_base += 1

    def acked(self, seat: int, ack: int, now_ms: float) -> None:
        """``seat`` acknowledged our inputs for frames ``0 .. ack-1`` in a packet that arrived by ``now_ms``."""
        index = ack - 1 - self._sent_base
        if ack <= self._acked.get(seat, 0) or not 0 <= index < len(self._sent_at):
            return
        self._acked[seat] = ack
        sent = self._sent_at[index]
        if sent >= self._since and ack > self.warmup:
            self._samples.append(now_ms - sent)
            self._dirty = True

    def interrupt(self, now_ms: float) -> None:
        """A pause (this page away or frozen, a partner away or rejoining): acks of inputs sent before now measure
        the pause, not the network, and are not sampled."""
        self._since = now_ms

    def note_frame_cost(self, ms: float) -> None:
        """The median wall time of one simulated frame (ms), as the page measured it."""
        if self.frame_cost_ms != ms:
            self.frame_cost_ms = ms
            self._dirty = True

    # -- choosing ---------------------------------------------------------------------------------------------
    def target(self) -> int:
        """The delay the measurements ask for (clamped), or the current delay before enough samples."""
        if self._dirty:
            self._dirty = False
            samples = self._samples
            if len(samples) >= MIN_SAMPLES:
                ordered = sorted(samples)
                rtt = ordered[min(len(ordered) - 1, int(self.percentile * len(ordered)))]
                self.rtt_ms = rtt
                want = frames_needed(rtt, self.frame_ms)
                cost = self.frame_cost_ms
                if cost > 0:
                    fits = max(0, math.floor(self.frame_ms / cost + 1e-9) - 1)  # rollback depth that fits a frame
                    tail = ordered[min(len(ordered) - 1, int(TAIL * len(ordered)))]
                    want = max(want, frames_needed(tail, self.frame_ms) - fits)
                self._target = min(self.high, max(self.low, want))
        return self._target

    def update(self) -> int | None:
        """Called once per tick that simulates: the new delay when it changes (by one frame), else ``None``."""
        target = self.target()
        if target > self.delay:
            self._below = 0
            self.delay += 1
            return self.delay
        if target < self.delay:
            self._below += 1
            if self._below >= self.lower_after:
                self._below = 0
                self.delay -= 1
                return self.delay
            return None
        self._below = 0
        return None
