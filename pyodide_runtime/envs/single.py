"""Adapter for a single-agent gymnasium env with a ``Discrete`` action space (CartPole, FrozenLake, ...).

Its one agent, ``player_0``, is played by one human seat, or by a bot (then the game has no seats, which is how
tests and demos run it unattended).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pyodide_runtime.envs.adapter import EnvGame
from pyodide_runtime.envs.base import StepResult
from pyodide_runtime.envs.spaces import discrete_size, is_discrete

__all__ = ["SingleAgentGame", "looks_single_gym", "AGENT"]

AGENT = "player_0"


def looks_single_gym(env: Any) -> bool:
    """Whether ``env`` is a gymnasium-style env with a ``Discrete`` action space."""
    return is_discrete(getattr(env, "action_space", None)) and hasattr(env, "step")


class SingleAgentGame(EnvGame):
    """A :class:`~pyodide_runtime.envs.base.Game` over a single-agent gymnasium env."""

    kind = "gymnasium_single"

    def __init__(self, env: Any, **options: Any) -> None:
        n, self._start = discrete_size(env.action_space, type(env).__name__)
        super().__init__(env, env_agent_ids=[AGENT], action_counts=[n], **options)

    def _env_reset(self, seed: int) -> tuple[Mapping[str, Any], Mapping[str, Any]]:
        observation, info = self.env.reset(seed=seed)
        return {AGENT: observation}, {AGENT: info}

    def _env_step(self, actions: dict[str, int]) -> StepResult:
        action = actions[AGENT]
        observation, reward, terminated, truncated, info = self.env.step(action + self._start)
        terminated, truncated = bool(terminated), bool(truncated)
        return StepResult(
            actions,
            {AGENT: observation},
            {AGENT: float(reward)},
            {AGENT: terminated},
            {AGENT: truncated},
            {AGENT: info},
            terminated or truncated,
        )
