"""Coin Chase with an injected fault: it raises on one participant's side at a chosen frame.

Config keys, besides Coin Chase's own:

- ``fault_at``: the global frame from which the fault fires (no fault when absent);
- ``fault_in``: ``step`` (ZeroDivisionError), ``reset`` (RuntimeError), ``render`` (ValueError) or ``bot``
  (IndexError, raised by :class:`FaultyBot`, which plays ``player_2`` when ``players`` is 3);
- ``fault_seat``: the participant whose env raises (every participant when absent);
- ``fault_when``: ``always`` (default), or ``resimulating``: only while a rollback resimulates frames.

Both participants load this file with the same config. The fault finds the session running it on the call
stack, so it fires only inside a live session (never in a start-up check or a replay) and only on the chosen
seat. Load it as ``tests/env_fixtures/raises_mid_session.py:make_env``.
"""

from __future__ import annotations

import sys
from typing import Any

from pyodide_runtime.bots import CoinChasePolicy
from pyodide_runtime.examples.coin_chase import CoinChaseEnv

__all__ = ["FaultyCoinChase", "FaultyBot", "make_env"]

_FAULT_KEYS = ("fault_at", "fault_in", "fault_seat", "fault_when")
_ERRORS: dict[str, tuple[type[Exception], str]] = {
    "step": (ZeroDivisionError, "division by zero"),
    "reset": (RuntimeError, "the level file is missing"),
    "render": (ValueError, "sprite index out of range"),
    "bot": (IndexError, "list index out of range"),
}


def _live_session() -> tuple[Any, bool] | None:
    """The session on the call stack, and whether it is resimulating after a rollback; ``None`` outside one."""
    frame = sys._getframe(1)
    resimulating = False
    while frame is not None:
        resimulating = resimulating or frame.f_code.co_name == "apply_rollback"
        owner = frame.f_locals.get("self")
        if type(owner).__name__ == "Session" and hasattr(owner, "timeline"):
            return owner, resimulating
        frame = frame.f_back
    return None


def check_fault(fault: dict[str, Any], where: str) -> None:
    """Raise the injected error when ``fault`` says so for ``where`` on this side at this frame."""
    if fault.get("fault_at") is None or fault.get("fault_in", "step") != where:
        return
    found = _live_session()
    if found is None:
        return
    session, resimulating = found
    seat = fault.get("fault_seat")
    if seat is not None and session.seat != seat:
        return
    if fault.get("fault_when", "always") == "resimulating" and not resimulating:
        return
    if session.timeline.frame >= fault["fault_at"]:
        error, message = _ERRORS[where]
        raise error(message)


class FaultyCoinChase(CoinChaseEnv):
    """Coin Chase whose ``reset``, ``step`` or ``render`` raises as its fault config says."""

    metadata = {**CoinChaseEnv.metadata, "name": "faulty_coin_chase"}

    def __init__(self, config: dict[str, Any] | None = None) -> None:
        config = dict(config or {})
        self.fault = {key: config.pop(key) for key in _FAULT_KEYS if key in config}
        super().__init__(config)

    def reset(self, seed: int | None = None, options: dict | None = None) -> tuple[dict, dict]:
        check_fault(self.fault, "reset")
        return super().reset(seed, options)

    def step(self, actions: dict[str, int]) -> tuple[dict, dict, dict, dict, dict]:
        check_fault(self.fault, "step")
        return super().step(actions)

    def render(self) -> list[dict[str, Any]] | None:
        check_fault(self.fault, "render")
        return super().render()


class FaultyBot(CoinChasePolicy):
    """The Coin Chase heuristic, raising when its env's fault config says ``fault_in = "bot"``."""

    def act(self, observation: dict[str, Any], rng: Any) -> int:
        found = _live_session()
        if found is not None:
            check_fault(getattr(found[0].game, "env", None).fault, "bot")
        return super().act(observation, rng)


def make_env(config: dict[str, Any] | None = None) -> FaultyCoinChase:
    return FaultyCoinChase(config)
