"""A self-contained env file, loaded by path the way a researcher's own file would be."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
from gymnasium import spaces


class GuessEnv(gym.Env):
    """Guess a hidden digit; the digit is redrawn from the env's RNG after every guess."""

    metadata = {"name": "guess", "version": "2"}

    def __init__(self, digits: int = 10) -> None:
        self.action_space = spaces.Discrete(digits)
        self.observation_space = spaces.Box(0, 1, (2,), np.int64)
        self.digits = digits
        self.secret = 0
        self.turn = 0

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.secret = int(self.np_random.integers(self.digits))
        self.turn = 0
        return np.array([0, 0]), {}

    def step(self, action):
        hit = int(action) == self.secret
        higher = int(action) < self.secret
        self.secret = int(self.np_random.integers(self.digits))
        self.turn += 1
        return np.array([int(hit), int(higher)]), float(hit), False, self.turn >= 30, {"turn": self.turn}


def make_env(config=None):
    return GuessEnv(**(config or {}))
