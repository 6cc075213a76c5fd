"""Empties ``agents`` when an episode ends, as PettingZoo envs do, but its get_state()/set_state() cover only the
simulation: restoring a snapshot taken before the end leaves ``agents`` empty. Like many real envs, step() needs an
action for every agent, so an empty action dict raises ``KeyError``."""

from __future__ import annotations

from typing import Any

from env_fixtures.line import AGENTS, LineEnv


class ForgetsAgentsEnv(LineEnv):
    def step(self, actions: dict[str, int]) -> tuple[dict, dict, dict, dict, dict]:
        for agent in AGENTS:
            actions[agent]  # noqa: B018 - a missing action is a KeyError, as in envs that index the dict
        return super().step(actions)

    def set_state(self, state: tuple) -> None:
        pos, self.t, rng_state = state
        self.pos = list(pos)
        self.np_random.bit_generator.state = rng_state


def make_env(config: dict[str, Any] | None = None) -> ForgetsAgentsEnv:
    return ForgetsAgentsEnv(config)
