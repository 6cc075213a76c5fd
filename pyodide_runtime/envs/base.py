"""The contract between the rollback core and a game.

A *game* is the researcher's environment wrapped by an adapter, together with any Python bot policies that
play some of its agents. The rollback core only ever talks to a :class:`Game`; it never sees gymnasium,
PettingZoo or bots directly.

Seats and agents
    ``agents`` lists every agent id in canonical order (strings). ``seats`` lists the agents that humans play,
    seat ``i`` playing ``seats[i]``; the remaining agents are played by bots inside :meth:`Game.step`.

Inputs
    A human input is a small non-negative integer (``0 <= input < input_count(seat)``), the index of a discrete
    action. That is what travels on the wire, is predicted, and is confirmed.

Determinism
    ``reset`` and ``step`` must be pure functions of (the state restored by ``set_state``, the arguments).
    ``get_state`` captures everything ``step`` depends on, every RNG included (the env's ``np_random``, bot
    policies' RNGs, and global ``random``/``numpy.random`` state if the env uses them).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from typing import Any


class _Result:
    """Equality, hashing and repr over the fields, as a dataclass would give them.

    The results are plain ``__slots__`` classes rather than frozen dataclasses because one is built on every
    step, and a frozen dataclass's ``__init__`` pays for an ``object.__setattr__`` call per field. Treat them as
    read-only all the same: the engine keeps the mappings they hold in its frame records.
    """

    __slots__ = ()

    def _fields(self) -> tuple[Any, ...]:
        return tuple(getattr(self, name) for name in self.__slots__)

    def __eq__(self, other: object) -> bool:
        if other.__class__ is not self.__class__:
            return NotImplemented
        return self._fields() == other._fields()  # type: ignore[attr-defined]

    def __hash__(self) -> int:
        return hash(self._fields())

    def __repr__(self) -> str:
        inner = ", ".join(f"{name}={getattr(self, name)!r}" for name in self.__slots__)
        return f"{type(self).__qualname__}({inner})"


class StepResult(_Result):
    """What one step produced, per agent id. ``actions`` holds every agent's executed action, bots included."""

    __slots__ = ("actions", "observations", "rewards", "terminated", "truncated", "infos", "episode_over")
    __match_args__ = __slots__

    def __init__(
        self,
        actions: Mapping[str, Any],
        observations: Mapping[str, Any],
        rewards: Mapping[str, float],
        terminated: Mapping[str, bool],
        truncated: Mapping[str, bool],
        infos: Mapping[str, Any],
        episode_over: bool,
    ) -> None:
        self.actions = actions
        self.observations = observations
        self.rewards = rewards
        self.terminated = terminated
        self.truncated = truncated
        self.infos = infos
        self.episode_over = episode_over


class ResetResult(_Result):
    """What a reset produced, per agent id."""

    __slots__ = ("observations", "infos")
    __match_args__ = __slots__

    def __init__(self, observations: Mapping[str, Any], infos: Mapping[str, Any]) -> None:
        self.observations = observations
        self.infos = infos


class Game(ABC):
    """A multi-agent game the rollback core can step, snapshot and restore."""

    #: Stable identifier and version of the environment, checked in the peers' handshake and exported.
    env_id: str = "unknown"
    env_version: str = "0"
    #: Every agent id, canonical order.
    agents: tuple[str, ...] = ()
    #: The agents humans play; seat i plays seats[i].
    seats: tuple[str, ...] = ()

    @abstractmethod
    def input_count(self, seat: int) -> int:
        """Number of distinct inputs seat ``seat`` can send (the size of its discrete action space)."""

    def default_input(self, seat: int) -> int:
        """The input used when a seat is away, and by no-op prediction. Override when 0 is not a no-op."""
        return 0

    @abstractmethod
    def reset(self, seed: int) -> ResetResult:
        """Start an episode from ``seed``; also reseeds bots so episodes are independent."""

    @abstractmethod
    def step(self, inputs: Sequence[int]) -> StepResult:
        """Advance one frame with one input per seat (bots choose their own actions inside)."""

    @abstractmethod
    def get_state(self) -> Any:
        """A snapshot of everything ``step`` depends on. Must not alias live mutable state."""

    @abstractmethod
    def set_state(self, state: Any) -> None:
        """Restore a snapshot made by :meth:`get_state`. The same snapshot may be restored many times."""

    def render(self) -> Any:
        """A frame for the participant's screen: a draw list (JSON-able, format in :mod:`pyodide_runtime.envs.draw`)
        or an ``rgb_array``; ``None`` when there is nothing to draw. Optional."""
        return None

    def describe(self) -> Mapping[str, Any]:
        """Provenance for the export's metadata (env id, version, source hash, snapshot method, ...)."""
        return {"env_id": self.env_id, "env_version": self.env_version}
