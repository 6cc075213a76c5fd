"""Chooses a wind at reset that pushes every step, but leaves it out of get_state(): a snapshot restored into
another env instance plays on with that instance's wind."""

from __future__ import annotations

from env_fixtures.line import LineEnv


class WindyEnv(LineEnv):
    wind = 0

    def reset(self, seed: int | None = None, options: dict | None = None) -> tuple[dict, dict]:
        out = super().reset(seed, options)
        self.wind = int(self.np_random.integers(-3, 4))
        return out

    def push(self) -> tuple[int, int]:
        who, push = super().push()
        return who, push + self.wind


def make_env(config: dict | None = None) -> WindyEnv:
    return WindyEnv(config)
