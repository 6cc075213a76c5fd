"""Adapter for PettingZoo-style parallel envs: ``possible_agents``, ``action_space(agent)``, dict returns.

PettingZoo itself is not required; any object with that API works (the bundled Coin Chase env is one). Agent ids
may be strings or ints: the game names agents ``str(id)`` while the env keeps receiving its own ids. Agents that
leave mid-episode (missing from ``env.agents``) get no action; the episode is over when every agent returned in
the last step is terminated or truncated, or ``env.agents`` is empty.

``env.agents`` is the only PettingZoo API attribute read while stepping (``possible_agents`` and the action
spaces are read once, at construction), so every game snapshot saves it beside the env's own state and a restore
puts it back: envs whose ``get_state``/``set_state`` cover only the simulation empty ``agents`` at an episode end
and would otherwise stay empty after a rollback to a frame before that end.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pyodide_runtime.envs.adapter import EnvGame
from pyodide_runtime.envs.base import StepResult
from pyodide_runtime.envs.spaces import discrete_size

__all__ = ["ParallelEnvGame", "looks_parallel"]

_MAX_WRAPPERS = 64


def looks_parallel(env: Any) -> bool:
    """Whether ``env`` has the PettingZoo parallel API."""
    return hasattr(env, "possible_agents") and callable(getattr(env, "action_space", None)) and hasattr(env, "step")


class ParallelEnvGame(EnvGame):
    """A :class:`~pyodide_runtime.envs.base.Game` over a PettingZoo-style parallel env."""

    kind = "pettingzoo_parallel"

    def __init__(self, env: Any, **options: Any) -> None:
        ids = list(env.possible_agents)
        sizes = [discrete_size(env.action_space(a), f"agent {a!r}") for a in ids]
        self._starts = {str(a): start for a, (_, start) in zip(ids, sizes)}
        self._offset = any(self._starts.values())
        super().__init__(env, env_agent_ids=ids, action_counts=[n for n, _ in sizes], **options)

    def _api_state(self) -> tuple[Any, ...] | None:
        live = getattr(self.env, "agents", None)
        return None if live is None else tuple(live)

    def _restore_api_state(self, state: tuple[Any, ...]) -> None:
        env = self.env
        live = getattr(env, "agents", None)
        if live is not None and len(live) == len(state) and tuple(live) == state:
            return  # the env's own snapshot restored it (always so for pickle, deepcopy and attributes)
        holder = _agents_holder(env)
        try:
            holder.agents = tuple(state) if isinstance(live, tuple) else list(state)
        except AttributeError:
            pass  # a read-only property computed from the env's state: that state decides it

    def _names(self, data: Mapping[Any, Any]) -> Mapping[str, Any]:
        if self._identity_ids:
            return data
        name_of = self._name_of
        return {name_of.get(k, str(k)): v for k, v in data.items()}

    def _env_reset(self, seed: int) -> tuple[Mapping[str, Any], Mapping[str, Any]]:
        out = self.env.reset(seed=seed)
        if isinstance(out, tuple) and len(out) == 2:
            observations, infos = out
        else:  # PettingZoo before 1.24 returned observations only
            observations, infos = out, {}
        return self._names(observations), self._names(infos)

    def _env_step(self, actions: dict[str, int]) -> StepResult:
        live = getattr(self.env, "agents", None)
        if self._identity_ids and not self._offset and (live is None or len(live) == len(self.agents)):
            executed = env_actions = actions  # the common case: nothing to translate or filter
        else:
            executed, env_actions = {}, {}
            for name, action in actions.items():
                env_id = self._env_id_of[name]
                if live is None or env_id in live:
                    executed[name] = action
                    env_actions[env_id] = action + self._starts[name]
        observations, rewards, terminated, truncated, infos = self.env.step(env_actions)
        if self._identity_ids:
            rewards = {k: float(v) for k, v in rewards.items()}
            terminated = {k: bool(v) for k, v in terminated.items()}
            truncated = {k: bool(v) for k, v in truncated.items()}
        else:
            name_of = self._name_of
            rewards = {name_of.get(k, str(k)): float(v) for k, v in rewards.items()}
            terminated = {name_of.get(k, str(k)): bool(v) for k, v in terminated.items()}
            truncated = {name_of.get(k, str(k)): bool(v) for k, v in truncated.items()}
            observations = self._names(observations)
            infos = self._names(infos)
        live = getattr(self.env, "agents", None)
        over = live is not None and len(live) == 0
        if not over:
            over = True
            for agent, done in terminated.items():
                if not done and not truncated.get(agent, False):
                    over = False
                    break
        return StepResult(executed, observations, rewards, terminated, truncated, infos, over)


def _agents_holder(env: Any) -> Any:
    """The object in a wrapper chain that holds ``agents``: wrappers that forward attribute reads to the env inside
    would otherwise get a copy of their own that hides the inner env's later changes."""
    obj = env
    for _ in range(_MAX_WRAPPERS):
        if "agents" in getattr(obj, "__dict__", ()) or isinstance(getattr(type(obj), "agents", None), property):
            return obj
        inner = getattr(obj, "__dict__", {}).get("env")
        if inner is None or inner is obj:
            break
        obj = inner
    return env
