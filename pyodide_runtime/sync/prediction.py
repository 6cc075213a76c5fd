"""Prediction of inputs that have not arrived yet.

A predictor is a callable ``(seat, frame, last_known) -> input`` where ``last_known`` is the seat's latest known
input (``None`` before any). Predictions only ever choose what to simulate speculatively; they never reach
confirmed data, so peers may even use different predictors.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

__all__ = ["Predictor", "make_predictor"]

Predictor = Callable[[int, int, "int | None"], int]


def make_predictor(policy: str | Predictor, defaults: Sequence[int]) -> Predictor:
    """Build the predictor for ``policy``: ``"repeat"`` (last known input), ``"default"`` or a custom callable."""
    if callable(policy):
        return policy
    defaults = tuple(defaults)
    if policy == "repeat":
        def repeat(seat: int, frame: int, last: int | None) -> int:
            return defaults[seat] if last is None else last
        return repeat
    if policy == "default":
        def default(seat: int, frame: int, last: int | None) -> int:
            return defaults[seat]
        return default
    raise ValueError(f"unknown prediction policy {policy!r}")
