"""Small envs built to break rollback in one specific way each, plus a correct one to compare against.

All are two-player PettingZoo-style parallel envs on a line: each player moves left/stays/right (Discrete(3));
the env draws a "gust" from its RNG every frame that pushes a random player.
"""

from __future__ import annotations

import random
import time
from typing import Any

import numpy as np
from gymnasium import spaces

AGENTS = ["a", "b"]


class LineEnv:
    """The correct version: every bit of state is in get_state()."""

    metadata = {"name": "line", "version": "1"}

    def __init__(self, config: dict | None = None) -> None:
        self.possible_agents = list(AGENTS)
        self.agents: list[str] = []
        self.size = 21
        self.max_steps = (config or {}).get("max_steps", 60)
        self.np_random = np.random.Generator(np.random.PCG64(0))
        self.pos = [0, 0]
        self.t = 0

    def action_space(self, agent: str) -> spaces.Discrete:
        return spaces.Discrete(3)

    def reset(self, seed: int | None = None, options: dict | None = None) -> tuple[dict, dict]:
        if seed is not None:
            self.np_random = np.random.Generator(np.random.PCG64(seed))
        self.pos = [5, 15]
        self.t = 0
        self.agents = list(AGENTS)
        return self._obs(), {a: {} for a in AGENTS}

    def _gust(self) -> tuple[int, int]:
        return int(self.np_random.integers(2)), int(self.np_random.integers(-1, 2))

    def _move(self, actions: dict[str, int]) -> None:
        who, push = self._gust()
        for i, agent in enumerate(AGENTS):
            step = actions.get(agent, 1) - 1 + (push if i == who else 0)
            self.pos[i] = min(self.size - 1, max(0, self.pos[i] + step))

    def _obs(self) -> dict[str, Any]:
        return {a: {"pos": list(self.pos), "t": self.t} for a in AGENTS}

    def _reward(self, i: int) -> float:
        return -abs(self.pos[i] - self.size // 2) / self.size

    def step(self, actions: dict[str, int]) -> tuple[dict, dict, dict, dict, dict]:
        self._move(actions)
        self.t += 1
        truncated = self.t >= self.max_steps
        if truncated:
            self.agents = []
        return (
            self._obs(),
            {a: self._reward(i) for i, a in enumerate(AGENTS)},
            dict.fromkeys(AGENTS, False),
            dict.fromkeys(AGENTS, truncated),
            {a: {"gap": abs(self.pos[0] - self.pos[1])} for a in AGENTS},
        )

    def get_state(self) -> tuple:
        return (tuple(self.pos), self.t, self.np_random.bit_generator.state)

    def set_state(self, state: tuple) -> None:
        pos, self.t, rng_state = state
        self.pos = list(pos)
        self.np_random.bit_generator.state = rng_state
        self.agents = [] if self.t >= self.max_steps else list(AGENTS)


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

    def _gust(self) -> tuple[int, int]:
        return self.gusts.randrange(2), self.gusts.randrange(-1, 2)


class HiddenStateEnv(LineEnv):
    """Tracks how far player ``a`` walked (fatigue lowers its reward) but leaves that out of get_state()."""

    def reset(self, seed: int | None = None, options: dict | None = None) -> tuple[dict, dict]:
        self.walked = 0
        return super().reset(seed, options)

    def step(self, actions: dict[str, int]) -> tuple[dict, dict, dict, dict, dict]:
        self.walked += actions.get("a", 1) != 1
        return super().step(actions)

    def _reward(self, i: int) -> float:
        return super()._reward(i) - (0.01 * self.walked if i == 0 else 0.0)


class AliasingEnv(LineEnv):
    """get_state() returns the live position list, so later steps rewrite old snapshots."""

    def get_state(self) -> tuple:
        return (self.pos, self.t, self.np_random.bit_generator.state)


class GlobalRandomEnv(LineEnv):
    """Draws its gusts from the global ``random`` module and has no explicit state protocol."""

    get_state = None  # type: ignore[assignment]
    set_state = None  # type: ignore[assignment]

    def _gust(self) -> tuple[int, int]:
        return random.randrange(2), random.randrange(-1, 2)


class UnpicklableEnv(LineEnv):
    """No state protocol and a lambda attribute, so neither pickle nor get_state can snapshot it."""

    get_state = None  # type: ignore[assignment]
    set_state = None  # type: ignore[assignment]

    def __init__(self, config: dict | None = None) -> None:
        super().__init__(config)
        self.scorer = lambda x: x  # noqa: E731


def make_line(config: dict | None = None) -> LineEnv:
    return LineEnv(config)


def make_clock(config: dict | None = None) -> LineEnv:
    return ClockEnv(config)


def make_unsnapshotted_rng(config: dict | None = None) -> LineEnv:
    return UnsnapshottedRngEnv(config)


def make_hidden_state(config: dict | None = None) -> LineEnv:
    return HiddenStateEnv(config)


not_callable = 42


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


class GlobalNumpyEnv(LineEnv):
    """Draws its gusts from the global ``numpy.random`` and snapshots by pickling."""

    get_state = None  # type: ignore[assignment]
    set_state = None  # type: ignore[assignment]

    def _gust(self) -> tuple[int, int]:
        return int(np.random.randint(2)), int(np.random.randint(-1, 2))
