"""PettingZoo-style parallel envs that do not subclass ``pettingzoo.ParallelEnv``.

``DuckLineEnv`` is the line env without ``unwrapped`` and ``observation_space``: PettingZoo's ``parallel_api_test``
reads both, the runtime neither. The others add one defect each: a real API violation, a bug in ``step()`` that
shows as an ``AttributeError``, and a ``ParallelEnv`` subclass missing what PettingZoo's base class reads.
"""

from __future__ import annotations

from typing import Any

from pettingzoo import ParallelEnv

from env_fixtures.line import LineEnv

_UNUSED_BY_THE_RUNTIME = ("unwrapped", "observation_space")

#: Everything of LineEnv except the attributes only PettingZoo's checker reads.
DuckLineEnv = type(
    "DuckLineEnv",
    (),
    {k: v for k, v in vars(LineEnv).items() if k not in (*_UNUSED_BY_THE_RUNTIME, "__dict__", "__weakref__")},
)


class ObservationsForOneAgentEnv(DuckLineEnv):  # type: ignore[misc, valid-type]
    """reset() returns an observation for agent ``a`` only: a PettingZoo API violation."""

    def reset(self, seed: int | None = None, options: dict | None = None) -> tuple[dict, dict]:
        observations, infos = super().reset(seed, options)
        return {"a": observations["a"]}, infos


class TypoInStepEnv(DuckLineEnv):  # type: ignore[misc, valid-type]
    """step() reads an attribute that does not exist: a bug, whatever the checker."""

    def step(self, actions: dict[str, int]) -> tuple[dict, dict, dict, dict, dict]:
        return super().step({a: v + self.speed for a, v in actions.items()})  # type: ignore[attr-defined]


class NoSpacesParallelEnv(ParallelEnv):
    """Subclasses ParallelEnv but defines neither observation_space() nor observation_spaces."""

    metadata = LineEnv.metadata
    __init__ = LineEnv.__init__
    action_space = LineEnv.action_space
    seed_generator = LineEnv.seed_generator
    reset = LineEnv.reset
    push = LineEnv.push
    step = LineEnv.step
    _obs = LineEnv._obs
    get_state = LineEnv.get_state
    set_state = LineEnv.set_state


def make_env(config: dict[str, Any] | None = None) -> Any:
    return DuckLineEnv(config)


def make_violating(config: dict[str, Any] | None = None) -> Any:
    return ObservationsForOneAgentEnv(config)


def make_typo(config: dict[str, Any] | None = None) -> Any:
    return TypoInStepEnv(config)


def make_subclass(config: dict[str, Any] | None = None) -> Any:
    return NoSpacesParallelEnv(config)
