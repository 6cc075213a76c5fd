"""Imports ``fastline``, a distribution that ships a compiled extension (``config["site"]`` is where it is
installed). Self-contained, so it can be checked as a file spec."""

from __future__ import annotations

import sys
from typing import Any

import numpy as np
from gymnasium import spaces


class FastLineEnv:
    metadata = {"name": "fastline", "version": "1"}

    def __init__(self) -> None:
        import fastline

        self.speed = fastline.SPEED
        self.possible_agents = ["a", "b"]
        self.agents: list[str] = []
        self.np_random = np.random.Generator(np.random.PCG64(0))
        self.pos = [0, 0]
        self.t = 0
        self._actions = {a: spaces.Discrete(2) for a in self.possible_agents}
        self._observations = {a: spaces.Box(0, 1000, shape=(3,), dtype=np.int64) for a in self.possible_agents}

    @property
    def unwrapped(self) -> FastLineEnv:
        return self

    def action_space(self, agent: str) -> spaces.Discrete:
        return self._actions[agent]

    def observation_space(self, agent: str) -> spaces.Box:
        return self._observations[agent]

    def reset(self, seed: int | None = None, options: dict | None = None) -> tuple[dict, dict]:
        if seed is not None:
            self.np_random = np.random.Generator(np.random.PCG64(seed))
        self.pos, self.t, self.agents = [0, 0], 0, ["a", "b"]
        return self._obs(), {"a": {}, "b": {}}

    def step(self, actions: dict[str, int]) -> tuple[dict, dict, dict, dict, dict]:
        for i, agent in enumerate(("a", "b")):
            self.pos[i] += self.speed * int(actions.get(agent, 0)) + int(self.np_random.integers(2))
        self.t += 1
        over = self.t >= 30
        if over:
            self.agents = []
        none = {"a": False, "b": False}
        return self._obs(), {"a": 0.0, "b": 0.0}, none, {"a": over, "b": over}, {"a": {}, "b": {}}

    def _obs(self) -> dict[str, Any]:
        return {a: np.array([self.pos[0], self.pos[1], self.t], dtype=np.int64) for a in ("a", "b")}

    def get_state(self) -> tuple:
        return (tuple(self.pos), self.t, self.np_random.bit_generator.state)

    def set_state(self, state: tuple) -> None:
        pos, self.t, rng_state = state
        self.pos = list(pos)
        self.np_random.bit_generator.state = rng_state
        self.agents = [] if self.t >= 30 else ["a", "b"]


def make_env(config: dict[str, Any]) -> FastLineEnv:
    if config["site"] not in sys.path:
        sys.path.insert(0, config["site"])
    return FastLineEnv()
