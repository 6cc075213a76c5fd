"""Seeds its generator from os.urandom, ignoring the seed: every process (and every peer) plays a different game."""

from __future__ import annotations

import os

import numpy as np

from env_fixtures.line import LineEnv


class UrandomSeededEnv(LineEnv):
    def seed_generator(self, seed: int | None) -> None:
        self.np_random = np.random.Generator(np.random.PCG64(int.from_bytes(os.urandom(8), "little")))


def make_env(config: dict | None = None) -> UrandomSeededEnv:
    return UrandomSeededEnv(config)
