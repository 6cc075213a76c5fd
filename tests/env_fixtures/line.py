"""A correct two-player parallel env on a line, with hooks the broken variants override.

Each player moves left/stays/right (``Discrete(3)``); every frame the env pushes a random player one cell, drawn
from its own generator. Everything ``step`` reads is in ``get_state()``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from gymnasium import spaces

AGENTS = ("a", "b")


class LineEnv:
    metadata = {"name": "line", "version": "1"}

    def __init__(self, config: dict[str, Any] | None = None) -> None:
        self.possible_agents = list(AGENTS)
        self.agents: list[str] = []
        self.size = 21
        self.max_steps = int((config or {}).get("max_steps", 50))
        self.np_random = np.random.Generator(np.random.PCG64(0))
        self.pos = [5, 15]
        self.t = 0
        high = max(self.size, self.max_steps)
        self._spaces = {a: (spaces.Discrete(3), spaces.Box(0, high, shape=(3,), dtype=np.int64)) for a in AGENTS}

    @property
    def unwrapped(self) -> LineEnv:
        return self

    def action_space(self, agent: str) -> spaces.Discrete:
        return self._spaces[agent][0]

    def observation_space(self, agent: str) -> spaces.Box:
        return self._spaces[agent][1]

    def seed_generator(self, seed: int | None) -> None:
        if seed is not None:
            self.np_random = np.random.Generator(np.random.PCG64(seed))

    def reset(self, seed: int | None = None, options: dict | None = None) -> tuple[dict, dict]:
        self.seed_generator(seed)
        self.pos = [5, 15]
        self.t = 0
        self.agents = list(AGENTS)
        return self._obs(), {a: {} for a in AGENTS}

    def push(self) -> tuple[int, int]:
        """(which player, how far) the env pushes this frame."""
        return int(self.np_random.integers(2)), int(self.np_random.integers(-1, 2))

    def step(self, actions: dict[str, int]) -> tuple[dict, dict, dict, dict, dict]:
        who, push = self.push()
        for i, agent in enumerate(AGENTS):
            move = int(actions.get(agent, 1)) - 1 + (push if i == who else 0)
            self.pos[i] = min(self.size - 1, max(0, self.pos[i] + move))
        self.t += 1
        over = self.t >= self.max_steps
        if over:
            self.agents = []
        return (
            self._obs(),
            {a: -abs(self.pos[i] - self.size // 2) / self.size for i, a in enumerate(AGENTS)},
            dict.fromkeys(AGENTS, False),
            dict.fromkeys(AGENTS, over),
            {a: {} for a in AGENTS},
        )

    def _obs(self) -> dict[str, Any]:
        return {a: np.array([self.pos[0], self.pos[1], self.t], dtype=np.int64) for a in AGENTS}

    def get_state(self) -> tuple:
        return (tuple(self.pos), self.t, self.np_random.bit_generator.state)

    def set_state(self, state: tuple) -> None:
        pos, self.t, rng_state = state
        self.pos = list(pos)
        self.np_random.bit_generator.state = rng_state
        self.agents = [] if self.t >= self.max_steps else list(AGENTS)


def make_env(config: dict[str, Any] | None = None) -> LineEnv:
    return LineEnv(config)
