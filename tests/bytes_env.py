"""A two-player env with large, awkward numpy observations (for the ``"bytes"`` hash mode tests).

Each agent sees a dict: ``image`` (``uint8``, 8x8x3, built in Fortran order), ``heat`` (big-endian ``float32``
with a ``-0.0`` and, every seventh step, a NaN), ``pos`` (plain list) and ``tag`` (a string).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from gymnasium import spaces


class BytesEnv:
    metadata = {"name": "bytes-env", "version": "1"}

    def __init__(self, max_steps: int = 40) -> None:
        self.possible_agents = ["p0", "p1"]
        self.agents = list(self.possible_agents)
        self.max_steps = max_steps
        self.np_random = np.random.default_rng(0)
        self._t = 0
        self._pos = [0, 0]

    def action_space(self, agent: str) -> Any:
        return spaces.Discrete(3)

    def _obs(self) -> dict[str, Any]:
        out = {}
        for i, agent in enumerate(self.possible_agents):
            image = np.asfortranarray(self.np_random.integers(0, 256, size=(8, 8, 3), dtype=np.uint8))
            heat = self.np_random.standard_normal(6).astype(">f4")
            heat[0] = -0.0
            if self._t % 7 == 3:
                heat[1] = np.nan
            out[agent] = {"image": image, "heat": heat, "pos": [self._pos[i], self._t], "tag": f"t{self._t}"}
        return out

    def reset(self, seed: int | None = None, options: Any = None) -> tuple[dict, dict]:
        self.np_random = np.random.default_rng(seed)
        self._t = 0
        self._pos = [0, 0]
        self.agents = list(self.possible_agents)
        return self._obs(), {a: {} for a in self.possible_agents}

    def step(self, actions: dict[str, int]) -> tuple[dict, dict, dict, dict, dict]:
        for i, agent in enumerate(self.possible_agents):
            self._pos[i] += int(actions.get(agent, 0)) - 1
        self._t += 1
        done = self._t >= self.max_steps
        agents = self.possible_agents
        return (self._obs(), {a: float(self._pos[i]) for i, a in enumerate(agents)}, dict.fromkeys(agents, False),
                dict.fromkeys(agents, done), {a: {"t": self._t} for a in agents})

    def get_state(self) -> tuple:
        return self._t, tuple(self._pos), self.np_random.bit_generator.state

    def set_state(self, state: tuple) -> None:
        self._t, pos, rng = state
        self._pos = list(pos)
        self.np_random.bit_generator.state = rng


def make_env(config: dict[str, Any] | None = None) -> BytesEnv:
    return BytesEnv(**(config or {}))
