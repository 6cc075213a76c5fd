"""Per-seat input queues.

Each seat's inputs are kept as a contiguous run indexed by global frame: :meth:`InputQueues.count` is the number
of frames whose input is known. Inputs are never dropped (they are a few bytes per frame and the frame log keeps
them anyway), which makes retention trivially safe. Frames ``0 .. input_delay - 1`` hold every seat's default
input, known to all peers without any message. Known inputs are final: nothing rewrites them.
"""

from __future__ import annotations

from collections.abc import Sequence

from pyodide_runtime.protocol.messages import AWAY_BIT

__all__ = ["InputQueues"]

_ACTION_MASK = AWAY_BIT - 1


class InputQueues:
    """Known inputs per seat; values carry :data:`~pyodide_runtime.protocol.messages.AWAY_BIT` when away.

    ``counts`` (the number of actions of each seat) lets :meth:`accept` reject inputs a seat cannot play; without
    it any action below ``AWAY_BIT`` is valid.
    """

    __slots__ = ("_queues", "defaults", "_counts")

    def __init__(self, defaults: Sequence[int], input_delay: int, counts: Sequence[int] | None = None) -> None:
        self.defaults = tuple(defaults)
        self._counts = tuple(counts) if counts is not None else (_ACTION_MASK,) * len(self.defaults)
        self._queues: list[list[int]] = [[d] * input_delay for d in self.defaults]

    @property
    def seats(self) -> int:
        return len(self._queues)

    def count(self, seat: int) -> int:
        """Number of contiguous frames (from 0) whose input for ``seat`` is known."""
        return len(self._queues[seat])

    def confirmed_count(self) -> int:
        """Number of frames (from 0) whose inputs are known for every seat."""
        return min(map(len, self._queues))

    def get(self, seat: int, frame: int) -> int | None:
        """The known input, or ``None``."""
        q = self._queues[seat]
        return q[frame] if 0 <= frame < len(q) else None

    def last(self, seat: int) -> int | None:
        """``seat``'s latest known input, or ``None`` before any."""
        q = self._queues[seat]
        return q[-1] if q else None

    def values(self, seat: int, start: int, end: int) -> list[int]:
        """``seat``'s known inputs for frames ``start .. end-1`` (fewer if not all are known)."""
        return self._queues[seat][start:end]

    def at(self, frame: int) -> list[int]:
        """Every seat's input for ``frame``, ``-1`` where it is not known."""
        return [q[frame] if frame < len(q) else -1 for q in self._queues]

    # -- adding inputs ----------------------------------------------------------------------------------------
    def append(self, seat: int, value: int) -> None:
        """Add ``seat``'s input for the next frame."""
        self._queues[seat].append(value)

    def fill(self, seat: int, through: int, value: int) -> None:
        """Commit ``value`` for ``seat`` for every frame not yet known up to and including ``through``."""
        q = self._queues[seat]
        while len(q) <= through:
            q.append(value)

    def accept(self, seat: int, start: int, values: Sequence[int], limit: int) -> tuple[int, int] | str:
        """Take a peer's run of inputs for frames ``start ..``, which may repeat frames already known.

        Returns the range ``(first, end)`` of frames that became known (empty when the run held nothing new), or
        the reject kind, changing nothing: ``"out_of_window"`` (the run leaves a gap or ends past frame ``limit``),
        ``"invalid_input"`` (an action the seat does not have, or flagged away with another than its default)
        or ``"conflict"`` (it contradicts a known input).
        """
        q = self._queues[seat]
        known = len(q)
        end = start + len(values)
        if start > known or end > limit:
            return "out_of_window"
        count = self._counts[seat]
        if values and max(values) >= count:  # below count every value is a valid action, not flagged away
            default = self.defaults[seat]
            for v in set(values):
                action = v & _ACTION_MASK
                if action >= count or (v & AWAY_BIT and action != default):
                    return "invalid_input"
        overlap = (known if known < end else end) - start
        if overlap > 0 and tuple(q[start:start + overlap]) != tuple(values[:overlap]):
            return "conflict"
        if end > known:
            q.extend(values[known - start:])
            return known, end
        return known, known
