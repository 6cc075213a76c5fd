"""Adapter for a gymnasium ``Env`` whose action space is a ``Dict`` or ``Tuple`` of per-player ``Discrete``.

Agents are the ``Dict`` keys, or ``player_0``, ``player_1``, ... for a ``Tuple``. The env may return per-agent
dicts (RLlib-style multi-agent returns, with an optional ``"__all__"`` key in ``terminated``/``truncated``), or
shared values that apply to every agent: one observation, one reward (or a sequence, one per player), one flag,
one info dict. A dict whose keys are all agent ids is per-agent, even when some agents are missing from it
(RLlib-style envs return observations only for the agents that act next); a bot whose agent got no observation
sends action 0. The episode is over when ``"__all__"`` says so, otherwise when every agent is terminated or
truncated.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pyodide_runtime.envs.adapter import EnvGame
from pyodide_runtime.envs.base import StepResult
from pyodide_runtime.envs.spaces import discrete_size, per_agent_discrete

__all__ = ["MultiDiscreteGymGame", "looks_multi_gym"]

ALL = "__all__"


def looks_multi_gym(env: Any) -> bool:
    """Whether ``env`` has a gymnasium-style ``action_space`` that is a Dict/Tuple of ``Discrete``."""
    return per_agent_discrete(getattr(env, "action_space", None)) is not None and hasattr(env, "step")


class MultiDiscreteGymGame(EnvGame):
    """A :class:`~pyodide_runtime.envs.base.Game` over a gymnasium env with one ``Discrete`` action per player."""

    kind = "gymnasium_multi"

    def __init__(self, env: Any, **options: Any) -> None:
        items = per_agent_discrete(env.action_space)
        if items is None:
            raise TypeError(f"action space {env.action_space!r} is not a Dict or Tuple of Discrete spaces")
        self._tuple = not isinstance(items[0][0], str)
        keys = [f"player_{k}" if self._tuple else k for k, _ in items]
        sizes = [discrete_size(space, f"player {k!r}") for k, space in items]
        self._starts = [start for _, start in sizes]
        super().__init__(env, env_agent_ids=keys, action_counts=[n for n, _ in sizes], **options)
        self._keys = keys
        self._agent_set = frozenset(keys)

    def _env_reset(self, seed: int) -> tuple[Mapping[str, Any], Mapping[str, Any]]:
        observation, info = self.env.reset(seed=seed)
        return self._per_agent(observation), self._per_agent_info(info)

    def _env_step(self, actions: dict[str, int]) -> StepResult:
        if len(actions) < len(self._keys):  # a bot without an observation waits: it sends action 0
            for key in self._keys:
                actions.setdefault(key, 0)
        values = [actions[k] + start for k, start in zip(self._keys, self._starts)]
        env_action: Any = tuple(values) if self._tuple else dict(zip(self._keys, values))
        observation, reward, terminated, truncated, info = self.env.step(env_action)
        term, term_all = self._flags(terminated)
        trunc, trunc_all = self._flags(truncated)
        if term_all is not None or trunc_all is not None:
            over = bool(term_all) or bool(trunc_all)
        else:
            over = all(term[k] or trunc[k] for k in self._keys)
        return StepResult(
            actions, self._per_agent(observation), self._rewards(reward), term, trunc, self._per_agent_info(info), over
        )

    def _is_per_agent(self, value: Any) -> bool:
        return isinstance(value, Mapping) and bool(value) and set(value) - {ALL} <= self._agent_set

    def _per_agent(self, value: Any) -> Mapping[str, Any]:
        if self._is_per_agent(value):
            # RLlib-style envs may return observations only for the agents that act next
            return value if len(value) == len(self._keys) else {k: v for k, v in value.items() if k != ALL}
        if self._tuple and isinstance(value, (tuple, list)) and len(value) == len(self._keys):
            return dict(zip(self._keys, value))
        return dict.fromkeys(self._keys, value)

    def _per_agent_info(self, info: Any) -> Mapping[str, Any]:
        if self._is_per_agent(info):
            return {k: info.get(k, {}) for k in self._keys}
        return dict.fromkeys(self._keys, info)

    def _rewards(self, reward: Any) -> dict[str, float]:
        if isinstance(reward, Mapping):
            return {k: float(reward.get(k, 0.0)) for k in self._keys}
        if hasattr(reward, "__len__"):
            return {k: float(r) for k, r in zip(self._keys, reward)}
        return dict.fromkeys(self._keys, float(reward))

    def _flags(self, flags: Any) -> tuple[dict[str, bool], bool | None]:
        if isinstance(flags, Mapping):
            every = flags.get(ALL)
            out = {k: bool(flags.get(k, every if every is not None else False)) for k in self._keys}
            return out, None if every is None else bool(every)
        if hasattr(flags, "__len__"):
            return {k: bool(f) for k, f in zip(self._keys, flags)}, None
        return dict.fromkeys(self._keys, bool(flags)), None
