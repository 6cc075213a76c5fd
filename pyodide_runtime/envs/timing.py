"""Opt-in timing of a game's ``step`` and snapshots, for the page's tick-cost split.

:func:`instrument` wraps one game *instance*'s ``step``, ``get_state`` and ``set_state`` (instance attributes that
shadow the class's methods), so that the session and timeline, which call them through the game, are timed without
knowing it. A game that is never instrumented runs exactly as before: timing costs nothing when it is off.

The timer only accumulates wall time (``time.perf_counter``) and call counts; the caller reads the totals before
and after a tick to get that tick's share. Timing is diagnostics only: it never reaches canonical data.
"""

from __future__ import annotations

import time
from typing import Any

__all__ = ["GameTimer", "instrument"]


class GameTimer:
    """Cumulative wall time (ms) spent in a game's ``step`` and in its snapshots (``get_state``/``set_state``)."""

    __slots__ = ("step_ms", "steps", "snapshot_ms", "snapshots")

    def __init__(self) -> None:
        self.step_ms = 0.0
        self.steps = 0
        self.snapshot_ms = 0.0
        self.snapshots = 0

    def totals(self) -> tuple[float, float]:
        """``(step_ms, snapshot_ms)`` so far."""
        return self.step_ms, self.snapshot_ms


def instrument(game: Any, timer: GameTimer | None = None) -> GameTimer:
    """Time ``game``'s ``step``, ``get_state`` and ``set_state`` into ``timer`` (a new one if not given).

    Instrumenting the same game twice is refused (its calls would be counted twice)."""
    if getattr(game, "_pyodide_runtime_timer", None) is not None:
        raise ValueError("this game is already instrumented")
    timer = timer if timer is not None else GameTimer()
    clock = time.perf_counter
    step, get_state, set_state = game.step, game.get_state, game.set_state

    def timed_step(inputs: Any) -> Any:
        t = clock()
        try:
            return step(inputs)
        finally:
            timer.step_ms += (clock() - t) * 1000.0
            timer.steps += 1

    def timed_get_state() -> Any:
        t = clock()
        try:
            return get_state()
        finally:
            timer.snapshot_ms += (clock() - t) * 1000.0
            timer.snapshots += 1

    def timed_set_state(state: Any) -> None:
        t = clock()
        try:
            set_state(state)
        finally:
            timer.snapshot_ms += (clock() - t) * 1000.0
            timer.snapshots += 1

    game.step, game.get_state, game.set_state = timed_step, timed_get_state, timed_set_state
    game._pyodide_runtime_timer = timer
    return timer
