"""Keeps a running score that its observations show, but get_state()/set_state() leave it out: the env has the
state methods, they just miss one attribute."""

from __future__ import annotations

from typing import Any

import numpy as np

from env_fixtures.line import AGENTS, LineEnv


class ForgetsScoreEnv(LineEnv):
    score = 0

    def reset(self, seed: int | None = None, options: dict | None = None) -> tuple[dict, dict]:
        self.score = 0
        return super().reset(seed, options)

    def step(self, actions: dict[str, int]) -> tuple[dict, dict, dict, dict, dict]:
        self.score += int(actions.get("a", 1) == 2)
        return super().step(actions)

    def _obs(self) -> dict[str, Any]:
        return {a: np.array([self.pos[0], self.pos[1], self.score], dtype=np.int64) for a in AGENTS}


def make_env(config: dict[str, Any] | None = None) -> ForgetsScoreEnv:
    return ForgetsScoreEnv(config)
