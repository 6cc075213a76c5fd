"""Reads the clock in step to flag slow frames: the flag differs between peers and between resimulations."""

from __future__ import annotations

import time

from env_fixtures.line import LineEnv


class ClockEnv(LineEnv):
    last = 0.0

    def step(self, actions: dict[str, int]) -> tuple[dict, dict, dict, dict, dict]:
        now = time.monotonic()
        slow = self.last and now - self.last > 60.0  # practically never true, so results rarely show it
        self.last = now
        obs, rewards, terminated, truncated, infos = super().step(actions)
        return obs, rewards, terminated, truncated, {a: {"slow": bool(slow)} for a in infos}


def make_env(config: dict | None = None) -> ClockEnv:
    return ClockEnv(config)
