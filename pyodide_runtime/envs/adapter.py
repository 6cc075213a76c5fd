"""The machinery every env adapter shares: seats and bots, input checks, snapshots, provenance.

A concrete adapter only says how to reset and step its env shape (:meth:`EnvGame._env_reset`,
:meth:`EnvGame._env_step`); this base class turns seat inputs and bot choices into per-agent action indices,
keeps the previous observations bots act on, and builds snapshots of env + bots + counters.
"""

from __future__ import annotations

import operator
from collections.abc import Mapping, Sequence
from typing import Any

from pyodide_runtime.bots import bot_rng, resolve_bot
from pyodide_runtime.envs.base import Game, ResetResult, StepResult
from pyodide_runtime.snapshot import GlobalRngState, choose_snapshotter

__all__ = ["EnvGame"]


class EnvGame(Game):
    """Base for adapters. Agents are named by ``str(env_agent_id)``; actions are indices into ``Discrete`` spaces."""

    kind = "env"

    def __init__(
        self,
        env: Any,
        *,
        env_agent_ids: Sequence[Any],
        action_counts: Sequence[int],
        seats: Sequence[Any] | None = None,
        bots: Mapping[Any, Any] | None = None,
        env_id: str = "unknown",
        env_version: str = "0",
        source_hash: str | None = None,
        snapshot: str = "auto",
        global_rng: tuple[bool, bool] | None = None,
        default_inputs: Sequence[int] | None = None,
    ) -> None:
        self.env = env
        self.env_id = env_id
        self.env_version = env_version
        self.source_hash = source_hash
        self._env_ids = list(env_agent_ids)
        names = tuple(str(a) for a in self._env_ids)
        if len(set(names)) != len(names):
            raise ValueError(f"agent ids are not unique as strings: {names}")
        self.agents = names
        self._env_id_of = dict(zip(names, self._env_ids))
        self._name_of = dict(zip(self._env_ids, names))
        self._identity_ids = all(type(a) is str for a in self._env_ids)
        self._counts = dict(zip(names, (int(c) for c in action_counts)))
        self._bots = {}
        for key, bot in (bots or {}).items():
            agent = self._agent_name(key)
            self._bots[agent] = resolve_bot(bot, self._counts[agent])
        if seats is None:
            seats = [a for a in names if a not in self._bots]
        self.seats = tuple(self._agent_name(s) for s in seats)
        if len(set(self.seats)) != len(self.seats):
            raise ValueError(f"an agent has two seats: {self.seats}")
        both = set(self.seats) & set(self._bots)
        if both:
            raise ValueError(f"agents {sorted(both)} have both a seat and a bot")
        missing = [a for a in names if a not in self._bots and a not in self.seats]
        if missing:
            raise ValueError(f"agents {missing} have neither a seat nor a bot")
        self._seat_counts = [self._counts[a] for a in self.seats]
        self._seat_table = tuple(zip(range(len(self.seats)), self.seats, self._seat_counts))
        self._defaults = list(default_inputs) if default_inputs is not None else [0] * len(self.seats)
        if len(self._defaults) != len(self.seats):
            raise ValueError("default_inputs needs one input per seat")
        for seat, value in enumerate(self._defaults):
            self._check_input(seat, value)
        self._bot_order = [a for a in names if a in self._bots]
        self._bot_rngs = {a: bot_rng(0, names.index(a)) for a in self._bot_order}
        self._snapshotter = choose_snapshotter(env, snapshot)
        self.global_rng = GlobalRngState(*(global_rng or (False, False)))
        self._own_globals = self.global_rng.capture()
        self._last_obs: Mapping[str, Any] = {}
        self._frame = 0
        self._over = True
        #: Extra provenance merged into describe() (the loader records the factory spec and config here).
        self.provenance: dict[str, Any] = {}

    # -- Game contract ----------------------------------------------------------------------------------------------

    def input_count(self, seat: int) -> int:
        return self._seat_counts[seat]

    def default_input(self, seat: int) -> int:
        return self._defaults[seat]

    def reset(self, seed: int) -> ResetResult:
        seed = operator.index(seed)
        if self.global_rng:
            outside = self.global_rng.capture()
            self.global_rng.seed(seed)
            try:
                observations, infos = self._env_reset(seed)
            finally:
                self._own_globals = self.global_rng.capture()
                self.global_rng.restore(outside)
        else:
            observations, infos = self._env_reset(seed)
        for index, agent in enumerate(self.agents):
            if agent in self._bots:
                self._bot_rngs[agent] = bot_rng(seed, index)
                reset = getattr(self._bots[agent], "reset", None)
                if callable(reset):
                    reset()
        self._last_obs = observations
        self._frame = 0
        self._over = False
        return ResetResult(observations, infos)

    def step(self, inputs: Sequence[int]) -> StepResult:
        rng = self.global_rng
        if not (rng.python or rng.numpy):
            return self._advance(inputs)
        # The game keeps its own copy of the global generators, swapped in only while it steps, so several games
        # in one process (simulated peers) do not draw from each other's sequences.
        outside = self.global_rng.capture()
        self.global_rng.restore(self._own_globals)
        try:
            return self._advance(inputs)
        finally:
            self._own_globals = self.global_rng.capture()
            self.global_rng.restore(outside)

    def _advance(self, inputs: Sequence[int]) -> StepResult:
        if self._over:
            raise RuntimeError("the episode is over; call reset(seed) first")
        if len(inputs) != len(self.seats):
            raise ValueError(f"expected {len(self.seats)} inputs (one per seat), got {len(inputs)}")
        actions: dict[str, int] = {}
        for seat, agent, count in self._seat_table:
            value = inputs[seat]
            if type(value) is not int or not 0 <= value < count:
                value = self._check_input(seat, value)
            actions[agent] = value
        if self._bot_order:
            last_obs = self._last_obs
            for agent in self._bot_order:
                observation = last_obs.get(agent)
                if observation is None and agent not in last_obs:
                    continue  # the agent is gone (PettingZoo agents can leave mid-episode)
                actions[agent] = self._bot_action(agent, observation)
        result = self._env_step(actions)
        self._last_obs = result.observations
        self._over = result.episode_over
        self._frame += 1
        return result

    def get_state(self) -> tuple:
        bots = tuple(
            (
                self._bot_rngs[a].bit_generator.state,
                self._bots[a].get_state() if hasattr(self._bots[a], "get_state") else None,
                (self._last_obs[a],) if a in self._last_obs else (),
            )
            for a in self._bot_order
        )
        return (
            self._snapshotter.capture(self.env),
            self._api_state(),
            self._frame,
            self._over,
            bots,
            self._own_globals if self.global_rng else None,
        )

    def set_state(self, state: tuple) -> None:
        env_state, api_state, frame, over, bots, global_state = state
        self.env = self._snapshotter.restore(self.env, env_state)
        if api_state is not None:
            self._restore_api_state(api_state)
        self._frame = frame
        self._over = over
        last_obs = dict(self._last_obs)
        for agent, (rng_state, policy_state, observation) in zip(self._bot_order, bots):
            self._bot_rngs[agent].bit_generator.state = rng_state
            if policy_state is not None:
                self._bots[agent].set_state(policy_state)
            if observation:
                last_obs[agent] = observation[0]
            else:
                last_obs.pop(agent, None)
        self._last_obs = last_obs
        if global_state is not None:
            self._own_globals = global_state

    def render(self) -> Any:
        if getattr(self.env, "render_mode", "") is None:
            return None  # gymnasium envs made without a render mode only warn, on every call
        render = getattr(self.env, "render", None)
        return render() if callable(render) else None

    def describe(self) -> dict[str, Any]:
        return {
            "env_id": self.env_id,
            "env_version": self.env_version,
            "source_hash": self.source_hash,
            "adapter": self.kind,
            "snapshot_method": self._snapshotter.method,
            "agents": list(self.agents),
            "seats": list(self.seats),
            "action_counts": [self._counts[a] for a in self.agents],
            "default_inputs": list(self._defaults),
            "action_names": _action_names(self.env),
            "bots": {a: _policy_name(p) for a, p in self._bots.items()},
            "global_rng": {"random": self.global_rng.python, "numpy": self.global_rng.numpy},
            **self.provenance,
        }

    # -- for verification --------------------------------------------------------------------------------------------

    def capture_global_rng(self, python: bool = False, numpy: bool = False) -> None:
        """Also save (and reseed on reset) the global ``random`` / ``numpy.random`` generators."""
        self.global_rng.python = self.global_rng.python or python
        self.global_rng.numpy = self.global_rng.numpy or numpy
        self._own_globals = self.global_rng.capture()

    @property
    def snapshot_method(self) -> str:
        return self._snapshotter.method

    def use_snapshot_method(self, method: str) -> None:
        """Switch how the env is snapshotted (see :func:`pyodide_runtime.snapshot.choose_snapshotter`)."""
        self._snapshotter = choose_snapshotter(self.env, method)

    @property
    def bots(self) -> Mapping[str, Any]:
        return dict(self._bots)

    # -- for subclasses ----------------------------------------------------------------------------------------------

    def _env_reset(self, seed: int) -> tuple[Mapping[str, Any], Mapping[str, Any]]:
        """Reset the env; return per-agent observations and infos keyed by agent name."""
        raise NotImplementedError

    def _env_step(self, actions: dict[str, int]) -> StepResult:
        """Step the env with per-agent action indices keyed by agent name."""
        raise NotImplementedError

    def _api_state(self) -> Any:
        """The env API state this adapter reads while stepping, beyond what the env's own snapshot covers.

        Saved beside the env's state by every snapshot method, because an env's ``get_state``/``set_state`` often
        cover the simulation only. Must be canonically encodable and must not alias live state.
        """
        return None

    def _restore_api_state(self, state: Any) -> None:
        """Restore what :meth:`_api_state` saved (called after the env's own state is restored)."""

    def _agent_name(self, key: Any) -> str:
        if key in self._name_of:
            return self._name_of[key]
        if isinstance(key, str) and key in self._env_id_of:
            return key
        raise ValueError(f"unknown agent {key!r}; agents are {list(self.agents)}")

    def _check_input(self, seat: int, value: Any) -> int:
        if isinstance(value, bool) or not hasattr(value, "__index__"):
            raise ValueError(f"seat {seat} input must be an int, got {value!r}")
        value = operator.index(value)
        if not 0 <= value < self._seat_counts[seat]:
            raise ValueError(f"seat {seat} input {value} out of range [0, {self._seat_counts[seat]})")
        return value

    def _bot_action(self, agent: str, observation: Any) -> int:
        action = self._bots[agent].act(observation, self._bot_rngs[agent])
        try:
            action = operator.index(action)
        except TypeError:
            raise ValueError(f"bot for {agent} returned {action!r}, not an action index") from None
        if not 0 <= action < self._counts[agent]:
            raise ValueError(f"bot for {agent} returned action {action}, out of range [0, {self._counts[agent]})")
        return action


def _action_names(env: Any) -> list[str] | None:
    """Labels for the discrete actions, when the env offers them (``action_names`` or ``get_action_meanings()``)."""
    names = getattr(env, "action_names", None)
    meanings = getattr(getattr(env, "unwrapped", env), "get_action_meanings", None)
    if names is None and callable(meanings):
        names = meanings()
    return [str(n) for n in names] if isinstance(names, (list, tuple)) else None


def _policy_name(policy: Any) -> str:
    name = getattr(policy, "name", None)
    return name if isinstance(name, str) else type(policy).__qualname__
