"""Frame-advantage time sync (GGPO style).

Each input message carries the sender's current frame and its measured advantage over the receiver. A peer's
measured advantage is ``my_frame - their_reported_frame``, which both sides inflate by the same one-way latency,
so half the difference of the two measurements is how far this peer leads. The peer that leads waits (skips
frames) so that neither keeps running far ahead of the other.
"""

from __future__ import annotations

from collections import deque

__all__ = ["TimeSync"]


class TimeSync:
    """Tracks advantages towards one remote seat."""

    __slots__ = ("_local", "_remote", "window", "advantage")

    def __init__(self, window: int = 16) -> None:
        self.window = window
        self._local: deque[int] = deque(maxlen=window)
        self._remote: deque[int] = deque(maxlen=window)
        #: The latest measured local advantage (0 before any message and after :meth:`reset`).
        self.advantage = 0

    def observe(self, local_frame: int, remote_frame: int, remote_advantage: int) -> int:
        """Record one received message; returns this peer's measured advantage (to send back)."""
        adv = max(-128, min(127, local_frame - remote_frame))
        self._local.append(adv)
        self._remote.append(remote_advantage)
        self.advantage = adv
        return adv

    def lead(self) -> float:
        """Estimated frames this peer runs ahead of the remote (negative: behind)."""
        if len(self._local) < 4:
            return 0.0
        local = sum(self._local) / len(self._local)
        remote = sum(self._remote) / len(self._remote)
        return (local - remote) / 2.0

    def reset(self) -> None:
        """Forget the measurements (after acting on them, so a wait is not counted twice)."""
        self._local.clear()
        self._remote.clear()
        self.advantage = 0
