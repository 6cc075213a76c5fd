"""Drive one policy seat: when to decide, the feeds to run, and the action from each result (sans-IO, numpy only).

The caller runs the model however it likes (onnxruntime-web in the page, onnxruntime in CPython) and hands the
outputs back with :meth:`PolicyRunner.deliver`. One request is in flight at a time; a decision point that comes
while one is in flight is skipped.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from pyodide_runtime.policies.choice import argmax_action, sample_action
from pyodide_runtime.policies.observation import map_observation
from pyodide_runtime.policies.resolved import ResolvedPolicy
from pyodide_runtime.policies.spec import PolicyError
from pyodide_runtime.policies.tensors import Tensor, by_name, from_tensor, to_tensor

__all__ = ["PolicyRunner", "policy_rng"]


def policy_rng(seed: int, episode: int, seat: int) -> np.random.Generator:
    """The sampling generator of ``seat`` in ``episode``: PCG64 from ``SeedSequence([seed, episode, seat])``."""
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence([int(seed), int(episode), int(seat)])))


class PolicyRunner:
    """One policy seat's decisions.

    ``reset(episode)`` at every episode start; at each frame, when ``due(frame_in_episode)``, ``request(...)``
    returns the feeds to run (or ``None`` while a request is in flight), and ``deliver(outputs)`` chooses the
    action. :attr:`action` is the action to play now: ``default_action`` until the episode's first result.
    """

    def __init__(self, resolved: ResolvedPolicy, seed: int) -> None:
        self.resolved = resolved
        self.seed = int(seed)
        #: Every delivered decision: ``{"episode", "frame", "frame_in_episode", "action", "inference_ms"}``.
        self.decisions: list[dict[str, Any]] = []
        #: Counters: ``requests``, ``delivered``, ``skipped`` (decision points while in flight), ``dropped``
        #: (results that came after a reset).
        self.stats: dict[str, int] = {"requests": 0, "delivered": 0, "skipped": 0, "dropped": 0}
        self._state: dict[str, np.ndarray] = {}
        self._pending: tuple[int, int, int] | None = None
        self._action = resolved.default_action
        self.episode = 0
        self.reset(0)

    # -- state ------------------------------------------------------------------------------------------------------

    @property
    def action(self) -> int:
        """The action the seat plays now (held between decisions)."""
        return self._action

    @property
    def in_flight(self) -> bool:
        """Whether a request awaits its result."""
        return self._pending is not None

    @property
    def state(self) -> dict[str, np.ndarray]:
        """The recurrent state fed with the next request, by state input name (copies)."""
        return {k: v.copy() for k, v in self._state.items()}

    def reset(self, episode: int) -> None:
        """Start ``episode``: state to zeros, action to ``default_action``, generator reseeded, nothing in flight."""
        self.episode = int(episode)
        self._state = {r["input"]: np.zeros(tuple(r["dims"]), dtype=np.dtype(r["dtype"]))
                       for r in self.resolved.recurrent}
        self._action = self.resolved.default_action
        self._rng = policy_rng(self.seed, self.episode, self.resolved.seat)
        self._pending = None

    def cancel(self) -> None:
        """Forget the request in flight (its inference failed): the next decision point may request again, and the
        seat keeps its current action meanwhile."""
        if self._pending is not None:
            self._pending = None
            self.stats["dropped"] += 1

    def due(self, frame_in_episode: int) -> bool:
        """Whether ``frame_in_episode`` is a decision point (every ``frame_skip``-th frame, from 0)."""
        return frame_in_episode % self.resolved.frame_skip == 0

    # -- requests and results ----------------------------------------------------------------------------------------

    def request(self, episode: int, frame: int, frame_in_episode: int, observation: Any) -> list[Tensor] | None:
        """The feeds (observation and recurrent state) for a decision on ``observation``; ``None`` (counted as
        skipped) while another request is in flight. ``episode`` must be the one of the last :meth:`reset`."""
        if int(episode) != self.episode:
            raise PolicyError(f"policy for {self.resolved.agent!r}: request for episode {episode} but the runner is "
                              f"in episode {self.episode}; call reset({episode}) at the episode start")
        if self._pending is not None:
            self.stats["skipped"] += 1
            return None
        feeds = map_observation(self.resolved, observation)
        feeds.extend(to_tensor(name, value, str(value.dtype) if value.dtype != np.bool_ else "bool")
                     for name, value in self._state.items())
        self._pending = (int(episode), int(frame), int(frame_in_episode))
        self.stats["requests"] += 1
        return feeds

    def scores(self, outputs: Sequence[Mapping[str, Any]]) -> np.ndarray:
        """The action scores in ``outputs`` (float64, one per action); :class:`PolicyError` when absent."""
        named = by_name(outputs)
        resolved = self.resolved
        if resolved.output_name not in named:
            raise PolicyError(f"policy for {resolved.agent!r}: the model returned {sorted(named)}, not "
                              f"{resolved.output_name!r}")
        scores = from_tensor(named[resolved.output_name]).ravel()
        if scores.size != resolved.action_count:
            raise PolicyError(f"policy for {resolved.agent!r}: output {resolved.output_name!r} has {scores.size} "
                              f"scores, expected {resolved.action_count} (one per action)")
        return scores.astype(np.float64)

    def preview(self, outputs: Sequence[Mapping[str, Any]]) -> int:
        """The action :meth:`deliver` would choose for ``outputs`` now, changing nothing (a sample draws from a
        copy of the generator)."""
        scores = self.scores(outputs)
        if self.resolved.action == "sample":
            rng = np.random.Generator(np.random.PCG64())
            rng.bit_generator.state = self._rng.bit_generator.state
            return sample_action(scores, self.resolved.temperature, rng)
        return argmax_action(scores)

    def deliver(self, outputs: Sequence[Mapping[str, Any]], inference_ms: float | None = None, *,
                episode: int | None = None) -> int:
        """Choose the action from the model's ``outputs`` for the request in flight and return it.

        A result for an earlier episode (a reset came in between) is dropped and the current action returned;
        pass ``episode`` (the request's) when a result may arrive after a reset and a newer request.
        """
        pending = self._pending
        if pending is None or (episode is not None and int(episode) != pending[0]):
            self.stats["dropped"] += 1
            return self._action
        resolved = self.resolved
        scores = self.scores(outputs)
        named = by_name(outputs)
        for r in resolved.recurrent:
            if r["output"] not in named:
                raise PolicyError(f"policy for {resolved.agent!r}: the model returned no state {r['output']!r}")
            value = from_tensor(named[r["output"]])
            self._state[r["input"]] = value.astype(np.dtype(r["dtype"])).reshape(tuple(r["dims"]))
        if resolved.action == "sample":
            action = sample_action(scores, resolved.temperature, self._rng)
        else:
            action = argmax_action(scores)
        self._action = action
        self._pending = None
        self.stats["delivered"] += 1
        self.decisions.append({"episode": pending[0], "frame": pending[1], "frame_in_episode": pending[2],
                               "action": action, "inference_ms": inference_ms})
        return action
