"""Draws the push from the global ``random`` generator (``make_env``) or the global ``numpy.random`` one
(``make_numpy_env``) instead of its own."""

from __future__ import annotations

import random

import numpy as np

from env_fixtures.line import LineEnv


class GlobalRandomEnv(LineEnv):
    def push(self) -> tuple[int, int]:
        return random.randrange(2), random.choice((-1, 0, 1))


class GlobalNumpyEnv(LineEnv):
    def push(self) -> tuple[int, int]:
        return int(np.random.randint(2)), int(np.random.randint(-1, 2))


def make_env(config: dict | None = None) -> GlobalRandomEnv:
    return GlobalRandomEnv(config)


def make_numpy_env(config: dict | None = None) -> GlobalNumpyEnv:
    return GlobalNumpyEnv(config)
