"""Per-seat input queues.

Each seat's inputs are kept as a contiguous list indexed by global frame: ``len(queue)`` is the number of frames
whose input is known. Inputs are never dropped (they are a few bytes per frame and the frame log keeps them
anyway), which makes retention trivially safe. Frames ``0 .. input_delay - 1`` hold every seat's default input,
known to all peers without any message.
"""

from __future__ import annotations

from collections.abc import Sequence

__all__ = ["InputQueues"]


class InputQueues:
    """Known inputs per seat; values carry :data:`~pyodide_runtime.protocol.messages.AWAY_BIT` when away."""

    __slots__ = ("queues", "defaults")

    def __init__(self, defaults: Sequence[int], input_delay: int) -> None:
        self.defaults = tuple(defaults)
        self.queues: list[list[int]] = [[d] * input_delay for d in self.defaults]

    def count(self, seat: int) -> int:
        """Number of contiguous frames (from 0) whose input for ``seat`` is known."""
        return len(self.queues[seat])

    def confirmed_count(self) -> int:
        """Number of frames (from 0) whose inputs are known for every seat."""
        return min(map(len, self.queues))

    def append(self, seat: int, value: int) -> None:
        """Add ``seat``'s input for the next frame."""
        self.queues[seat].append(value)

    def get(self, seat: int, frame: int) -> int | None:
        """The known input, or ``None``."""
        q = self.queues[seat]
        return q[frame] if 0 <= frame < len(q) else None

    def conflicts(self, seat: int, start: int, values: Sequence[int]) -> bool:
        """Whether ``values`` (for frames ``start ..``) contradict inputs already known."""
        q = self.queues[seat]
        end = min(len(q), start + len(values))
        return start < end and q[start:end] != list(values[: end - start])

    def extend(self, seat: int, start: int, values: Sequence[int]) -> tuple[int, int]:
        """Add the unknown part of a run starting at ``start`` (must not leave a gap); returns the new frame range."""
        q = self.queues[seat]
        first = len(q)
        if start > first:
            raise ValueError("input run leaves a gap")
        q.extend(values[first - start :])
        return first, len(q)
