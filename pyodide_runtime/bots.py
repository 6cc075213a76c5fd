"""Bot policies: Python players that act inside ``Game.step``, identically on every peer and under rollback.

A policy is any object with ``act(observation, rng) -> action``, or a plain function ``f(observation, rng)``.
``observation`` is the bot's agent's observation from the previous frame (the reset observation on the first
frame); ``action`` is an index into its discrete action space. ``rng`` is a ``numpy.random.Generator`` that the
game owns: it is reseeded from the episode seed on every reset and saved in every snapshot, so a policy must
draw randomness only from it. A policy that keeps its own state may add ``get_state()`` / ``set_state(state)``
(saved in snapshots too) and ``reset()`` (called at every episode start).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol, runtime_checkable

import numpy as np

from pyodide_runtime.specs import load_factory

__all__ = [
    "Policy",
    "FunctionPolicy",
    "RandomPolicy",
    "ConstantPolicy",
    "CoinChasePolicy",
    "as_policy",
    "resolve_bot",
    "bot_rng",
]


@runtime_checkable
class Policy(Protocol):
    """Chooses an action from an observation, drawing randomness only from ``rng``."""

    def act(self, observation: Any, rng: np.random.Generator) -> int: ...


class FunctionPolicy:
    """Adapts a function ``f(observation, rng) -> action`` to the :class:`Policy` protocol."""

    def __init__(self, function: Callable[[Any, np.random.Generator], int]) -> None:
        self.function = function
        self.name = getattr(function, "__qualname__", type(function).__name__)

    def act(self, observation: Any, rng: np.random.Generator) -> int:
        return self.function(observation, rng)


class RandomPolicy:
    """Uniformly random actions in ``[0, n)``; ``hold`` repeats each choice for that many frames, like a person."""

    def __init__(self, n: int, hold: int = 1) -> None:
        if n < 1 or hold < 1:
            raise ValueError("RandomPolicy needs n >= 1 and hold >= 1")
        self.n = n
        self.hold = hold
        self._action = 0
        self._left = 0

    def act(self, observation: Any, rng: np.random.Generator) -> int:
        if self._left == 0:
            self._action = int(rng.integers(self.n))
            self._left = self.hold
        self._left -= 1
        return self._action

    def reset(self) -> None:
        self._left = 0

    def get_state(self) -> tuple[int, int]:
        return (self._action, self._left)

    def set_state(self, state: tuple[int, int]) -> None:
        self._action, self._left = state


class ConstantPolicy:
    """Always the same action (an idle player)."""

    def __init__(self, action: int = 0) -> None:
        self.action = action

    def act(self, observation: Any, rng: np.random.Generator) -> int:
        return self.action


_STEPS = ((1, 0, -1), (2, 1, 0), (3, 0, 1), (4, -1, 0))  # (action, dx, dy) for up, right, down, left


class CoinChasePolicy:
    """A Coin Chase heuristic: walk towards the nearest coin, stepping around hazards and other players.

    With probability ``epsilon`` it makes a random move instead, so two such bots do not mirror each other.
    """

    def __init__(self, epsilon: float = 0.1) -> None:
        self.epsilon = epsilon

    def act(self, observation: dict[str, Any], rng: np.random.Generator) -> int:
        if observation.get("stunned"):
            return 0
        if self.epsilon > 0 and rng.random() < self.epsilon:
            return int(rng.integers(5))
        x, y = observation["position"]
        coins = observation["coins"]
        tx, ty = min(coins, key=lambda c: (abs(c[0] - x) + abs(c[1] - y), c[0], c[1]))
        blocked = {tuple(c) for c in observation["hazards"]}
        blocked.update(tuple(c) for c in observation["others"])
        best, best_distance = 0, abs(tx - x) + abs(ty - y)
        for action, dx, dy in _STEPS:
            cell = (x + dx, y + dy)
            distance = abs(tx - cell[0]) + abs(ty - cell[1])
            if cell not in blocked and distance < best_distance:
                best, best_distance = action, distance
        return best


def as_policy(bot: Any) -> Any:
    """Return ``bot`` if it has ``act``, wrap it if it is a function, refuse it otherwise."""
    if callable(getattr(bot, "act", None)):
        return bot
    if callable(bot):
        return FunctionPolicy(bot)
    raise TypeError(f"a bot must have act(observation, rng) or be a function (observation, rng) -> action; got {bot!r}")


def bot_rng(seed: int, index: int) -> np.random.Generator:
    """The generator for the bot playing agent number ``index`` in an episode started from ``seed``."""
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence(seed, spawn_key=(0xB07, index))))


def resolve_bot(bot: Any, action_count: int) -> Any:
    """Turn a bot given by name into a policy: ``"random"``, ``"idle"`` (always action 0), or
    ``"module:attr"`` / ``"path/file.py:attr"`` (a class is instantiated without arguments). Anything else goes
    through :func:`as_policy`."""
    if isinstance(bot, str):
        if bot == "random":
            return RandomPolicy(action_count)
        if bot == "idle":
            return ConstantPolicy(0)
        if ":" not in bot:
            raise ValueError(f"unknown bot {bot!r}; use 'random', 'idle' or 'module:attr'")
        target = load_factory(bot)
        bot = target() if isinstance(target, type) else target
    return as_policy(bot)
