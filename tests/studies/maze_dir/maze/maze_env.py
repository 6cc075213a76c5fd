"""Two players race to the door between two rooms. The layout comes from ``maze_layout`` and its data file."""

from __future__ import annotations

from typing import Any

import numpy as np
from gymnasium import spaces

from maze_layout import load_layout

MOVES = ((0, 0), (0, -1), (0, 1), (-1, 0), (1, 0))  # noop, up, down, left, right
CELL = 40


class MazeEnv:
    metadata = {"name": "maze", "version": "1"}

    def __init__(self, layout: str = "two_rooms", max_steps: int = 300) -> None:
        self.layout = load_layout(layout)
        self.width, self.height = self.layout["size"]
        self.walls = {tuple(w) for w in self.layout["walls"]}
        self.max_steps = max_steps
        self.possible_agents = ["runner_0", "runner_1"]
        self.agents = list(self.possible_agents)
        self.action_spaces = {a: spaces.Discrete(5) for a in self.possible_agents}
        self.observation_spaces = {a: spaces.Box(0, 10, (5,), np.int64) for a in self.possible_agents}
        self.pos = [list(s) for s in self.layout["starts"]]
        self.t, self.scores = 0, [0, 0]

    def action_space(self, agent: str) -> spaces.Space:
        return self.action_spaces[agent]

    def observation_space(self, agent: str) -> spaces.Space:
        return self.observation_spaces[agent]

    def _obs(self) -> dict[str, np.ndarray]:
        return {a: np.array([*self.pos[i], *self.pos[1 - i], self.t % 10], dtype=np.int64)
                for i, a in enumerate(self.possible_agents)}

    def reset(self, seed: int | None = None, options: dict | None = None):
        self.pos = [list(s) for s in self.layout["starts"]]
        self.t = 0
        self.agents = list(self.possible_agents)
        return self._obs(), {a: {} for a in self.possible_agents}

    def step(self, actions: dict[str, int]):
        rewards = {a: 0.0 for a in self.possible_agents}
        for i, agent in enumerate(self.possible_agents):
            dx, dy = MOVES[int(actions[agent])]
            x, y = self.pos[i][0] + dx, self.pos[i][1] + dy
            if 0 <= x < self.width and 0 <= y < self.height and (x, y) not in self.walls:
                self.pos[i] = [x, y]
            if self.pos[i] == list(self.layout["goal"]):
                rewards[agent] = 1.0
                self.scores[i] += 1
                self.pos[i] = list(self.layout["starts"][i])
        self.t += 1
        over = self.t >= self.max_steps
        if over:
            self.agents = []
        return (self._obs(), rewards, {a: False for a in self.possible_agents},
                {a: over for a in self.possible_agents}, {a: {} for a in self.possible_agents})

    def get_state(self) -> dict[str, Any]:
        return {"pos": [list(p) for p in self.pos], "t": self.t, "scores": list(self.scores),
                "agents": list(self.agents)}

    def set_state(self, state: dict[str, Any]) -> None:
        self.pos = [list(p) for p in state["pos"]]
        self.t, self.scores, self.agents = state["t"], list(state["scores"]), list(state["agents"])

    def render(self) -> list[dict[str, Any]]:
        shapes: list[dict[str, Any]] = [{"type": "canvas", "w": self.width * CELL, "h": self.height * CELL,
                                         "fill": "#f4f4f4"}]
        for x, y in sorted(self.walls):
            shapes.append({"type": "rect", "x": x * CELL, "y": y * CELL, "w": CELL, "h": CELL, "fill": "#444"})
        gx, gy = self.layout["goal"]
        shapes.append({"type": "rect", "x": gx * CELL, "y": gy * CELL, "w": CELL, "h": CELL, "fill": "#fc3"})
        for (x, y), colour in zip(self.pos, ("#d33", "#33d")):
            shapes.append({"type": "circle", "x": x * CELL + CELL / 2, "y": y * CELL + CELL / 2, "r": CELL / 3,
                           "fill": colour})
        return shapes


def make_env(config: dict[str, Any] | None = None) -> MazeEnv:
    config = dict(config or {})
    return MazeEnv(str(config.get("layout", "two_rooms")), int(config.get("max_steps", 300)))
