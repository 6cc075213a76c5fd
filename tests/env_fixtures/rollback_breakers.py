"""Variants of :class:`~env_fixtures.line.LineEnv` that break rollback in one specific way each, for the snapshot
verification and sync-test tests (the check-env ones are the modules beside this one).

The base is the correct env every fixture here shares: two players on a line, each moving left/stays/right
(``Discrete(3)``), pushed by a "gust" the env draws from its own generator every frame (:meth:`LineEnv.push`).
"""

from __future__ import annotations

import random
import time

from env_fixtures.global_random import GlobalNumpyEnv as _GlobalNumpyEnv
from env_fixtures.global_random import GlobalRandomEnv as _GlobalRandomEnv
from env_fixtures.line import AGENTS, LineEnv

__all__ = [
    "LineEnv", "ClockEnv", "UnsnapshottedRngEnv", "HiddenStateEnv", "AliasingEnv", "GlobalRandomEnv",
    "GlobalNumpyEnv", "UnpicklableEnv", "ForgetfulEnv", "ClockResetEnv",
]


class ClockEnv(LineEnv):
    """Reads the clock in step(): infos carry a timestamp, as a logging env might."""

    def step(self, actions: dict[str, int]) -> tuple[dict, dict, dict, dict, dict]:
        out = super().step(actions)
        for info in out[4].values():
            info["stamp"] = time.perf_counter()
        return out


class UnsnapshottedRngEnv(LineEnv):
    """Draws its gusts from a private ``random.Random`` that get_state() does not include."""

    def __init__(self, config: dict | None = None) -> None:
        super().__init__(config)
        self.gusts = random.Random(1234)

    def push(self) -> tuple[int, int]:
        return self.gusts.randrange(2), self.gusts.randrange(-1, 2)


class HiddenStateEnv(LineEnv):
    """Tracks how far player ``a`` walked (fatigue lowers its reward) but leaves that out of get_state()."""

    def reset(self, seed: int | None = None, options: dict | None = None) -> tuple[dict, dict]:
        self.walked = 0
        return super().reset(seed, options)

    def step(self, actions: dict[str, int]) -> tuple[dict, dict, dict, dict, dict]:
        self.walked += actions.get("a", 1) != 1
        obs, rewards, terminated, truncated, infos = super().step(actions)
        rewards["a"] -= 0.01 * self.walked
        return obs, rewards, terminated, truncated, infos


class AliasingEnv(LineEnv):
    """get_state() returns the live position list, so later steps rewrite old snapshots."""

    def get_state(self) -> tuple:
        return (self.pos, self.t, self.np_random.bit_generator.state)


class GlobalRandomEnv(_GlobalRandomEnv):
    """Draws its gusts from the global ``random`` module and has no explicit state protocol."""

    get_state = None  # type: ignore[assignment]
    set_state = None  # type: ignore[assignment]


class GlobalNumpyEnv(_GlobalNumpyEnv):
    """Draws its gusts from the global ``numpy.random`` and has no explicit state protocol (so it is pickled)."""

    get_state = None  # type: ignore[assignment]
    set_state = None  # type: ignore[assignment]


class UnpicklableEnv(LineEnv):
    """No state protocol and a lambda attribute, so neither pickle nor get_state can snapshot it."""

    get_state = None  # type: ignore[assignment]
    set_state = None  # type: ignore[assignment]

    def __init__(self, config: dict | None = None) -> None:
        super().__init__(config)
        self.scorer = lambda x: x  # noqa: E731


class ForgetfulEnv(LineEnv):
    """set_state() forgets to restore the frame counter."""

    def set_state(self, state: tuple) -> None:
        pos, _, rng_state = state
        self.pos = list(pos)
        self.np_random.bit_generator.state = rng_state


class ClockResetEnv(LineEnv):
    """reset() stamps the episode start with the clock, so two peers start differently."""

    def reset(self, seed: int | None = None, options: dict | None = None) -> tuple[dict, dict]:
        observations, infos = super().reset(seed, options)
        return observations, {a: {"started_at": time.perf_counter_ns()} for a in AGENTS}


def make_hidden_state(config: dict | None = None) -> LineEnv:
    return HiddenStateEnv(config)
