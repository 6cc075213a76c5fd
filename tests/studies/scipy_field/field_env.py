"""Two foragers on a grid whose food field is smoothed with ``scipy.ndimage`` (a compiled package Pyodide ships).

A PettingZoo-style parallel env (duck-typed) with explicit ``get_state``/``set_state`` and a draw-list renderer.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from gymnasium import spaces
from scipy import ndimage

MOVES = ((0, 0), (0, -1), (0, 1), (-1, 0), (1, 0))  # noop, up, down, left, right
CELL = 32


class FieldEnv:
    metadata = {"name": "scipy_field", "version": "1"}

    def __init__(self, size: int = 8, max_steps: int = 300) -> None:
        self.size, self.max_steps = size, max_steps
        self.possible_agents = ["forager_0", "forager_1"]
        self.agents = list(self.possible_agents)
        self.action_spaces = {a: spaces.Discrete(5) for a in self.possible_agents}
        self.observation_spaces = {a: spaces.Box(0.0, 10.0, (size * size + 4,), np.float64) for a in self.possible_agents}
        self.np_random = np.random.default_rng(0)
        self.food = np.zeros((size, size))
        self.pos = np.zeros((2, 2), dtype=np.int64)
        self.t = 0

    def action_space(self, agent: str) -> spaces.Space:
        return self.action_spaces[agent]

    def observation_space(self, agent: str) -> spaces.Space:
        return self.observation_spaces[agent]

    def _smooth(self, raw: np.ndarray) -> np.ndarray:
        return np.round(ndimage.gaussian_filter(raw, sigma=1.0, mode="wrap") * 10.0, 6)

    def _obs(self) -> dict[str, np.ndarray]:
        flat = np.concatenate([self.food.ravel(), self.pos.ravel().astype(np.float64)])
        return {a: flat.copy() for a in self.possible_agents}

    def reset(self, seed: int | None = None, options: dict | None = None):
        if seed is not None:
            self.np_random = np.random.default_rng(seed)
        self.food = self._smooth(self.np_random.random((self.size, self.size)))
        self.pos = np.array([[0, 0], [self.size - 1, self.size - 1]], dtype=np.int64)
        self.t = 0
        self.agents = list(self.possible_agents)
        return self._obs(), {a: {} for a in self.possible_agents}

    def step(self, actions: dict[str, int]):
        rewards = {}
        for i, agent in enumerate(self.possible_agents):
            dx, dy = MOVES[int(actions[agent])]
            self.pos[i] = np.clip(self.pos[i] + (dx, dy), 0, self.size - 1)
            x, y = self.pos[i]
            rewards[agent] = float(self.food[y, x])
            self.food[y, x] = 0.0
        self.t += 1
        if self.t % 10 == 0:  # the field regrows, smoothed again
            self.food = self._smooth(self.food / 10.0 + 0.05 * self.np_random.random(self.food.shape))
        over = self.t >= self.max_steps
        terminations = {a: False for a in self.possible_agents}
        truncations = {a: over for a in self.possible_agents}
        if over:
            self.agents = []
        return self._obs(), rewards, terminations, truncations, {a: {} for a in self.possible_agents}

    def get_state(self) -> dict[str, Any]:
        return {"food": self.food.copy(), "pos": self.pos.copy(), "t": self.t,
                "rng": self.np_random.bit_generator.state, "agents": list(self.agents)}

    def set_state(self, state: dict[str, Any]) -> None:
        self.food, self.pos, self.t = state["food"].copy(), state["pos"].copy(), state["t"]
        self.np_random.bit_generator.state = state["rng"]
        self.agents = list(state["agents"])

    def render(self) -> list[dict[str, Any]]:
        shapes: list[dict[str, Any]] = [{"type": "canvas", "w": self.size * CELL, "h": self.size * CELL,
                                         "fill": "#ffffff"}]
        top = float(self.food.max()) or 1.0
        for y in range(self.size):
            for x in range(self.size):
                level = int(255 - 200 * float(self.food[y, x]) / top)
                shapes.append({"type": "rect", "x": x * CELL, "y": y * CELL, "w": CELL, "h": CELL,
                               "fill": f"rgb({level},255,{level})"})
        for (x, y), colour in zip(self.pos.tolist(), ("#d33", "#33d")):
            shapes.append({"type": "circle", "x": x * CELL + CELL / 2, "y": y * CELL + CELL / 2, "r": CELL / 3,
                           "fill": colour})
        return shapes


def make_env(config: dict[str, Any] | None = None) -> FieldEnv:
    config = dict(config or {})
    return FieldEnv(int(config.get("size", 8)), int(config.get("max_steps", 300)))
