"""Hosted seats: a policy's seat run by one participant's page, and the routing of packets between pages.

A study's ``[policies]`` give agents to ONNX models. Each such agent is a seat of the session like any other
(its actions are that seat's inputs, confirmed, hashed and exported like a person's), but no page joins for it.
The *owning page*, the lowest human seat, runs a second :class:`~pyodide_runtime.session.Session` for it in the
same worker (:class:`HostedSeat`). Its input for a frame is committed a few frames ahead (the input delay), sent
to every partner and never rolled back, so the policy need not be deterministic across machines and the export
holds exactly the actions that were executed.

The policy decides from **confirmed** observations only: at a decision point it takes the observation after the
latest confirmed frame (the reset observation at an episode's start). Every decision is therefore a function of
the canonical data, and :func:`expected_inputs` rebuilds the seat's inputs from the decision log. Inference runs
outside Python (onnxruntime-web in the worker, onnxruntime in CPython): :meth:`HostedSeat.tick` hands out a
request, :meth:`HostedSeat.deliver` takes the result; until then the seat plays its current action.

:class:`SeatRouter` frames every packet between pages with its destination seat when a study has hosted seats,
since one page then speaks for several seats. Without hosted seats it changes nothing on the wire.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from pyodide_runtime.config import SessionConfig
from pyodide_runtime.envs.base import Game
from pyodide_runtime.session import Session

__all__ = ["SeatRouter", "HostedSeat", "policy_seats", "expected_inputs"]


def policy_seats(study: Mapping[str, Any]) -> dict[int, Mapping[str, Any]]:
    """The study description's resolved policies (``/study.json`` ``policies``), by seat."""
    return {int(p["seat"]): p for p in study.get("policies") or ()}


class SeatRouter:
    """Which page carries which seat, and the one-byte destination frame between pages.

    Hosted seats are the last ``len(hosted)`` seats; the owner is seat 0 (the lowest human seat). With no hosted
    seat every method is the identity, so studies without policies keep their wire format.
    """

    def __init__(self, players: int, hosted: Iterable[int] = ()) -> None:
        self.players = int(players)
        self.hosted = frozenset(int(s) for s in hosted)
        if any(not 0 < s < self.players for s in self.hosted):
            raise ValueError(f"hosted seats {sorted(self.hosted)} must be seats 1..{self.players - 1}")
        self.active = bool(self.hosted)
        self.owner = 0
        self.pages = self.players - len(self.hosted)

    def host_of(self, seat: int) -> int:
        """The page seat whose page runs ``seat``."""
        return self.owner if seat in self.hosted else seat

    def seats_of(self, page_seat: int) -> frozenset[int]:
        """The seats a page speaks for."""
        return frozenset({page_seat} | self.hosted) if page_seat == self.owner else frozenset({page_seat})

    def frame(self, seat: int, data: bytes) -> tuple[int, bytes]:
        """``(page seat, bytes to send)`` for a packet to ``seat``."""
        if not self.active:
            return seat, data
        return self.host_of(seat), bytes((seat,)) + data

    def unframe(self, from_page: int, data: bytes) -> tuple[int, int, bytes] | None:
        """``(destination seat, sender seat, packet)`` of bytes from page ``from_page``, or ``None`` when the frame
        is malformed or the sender is not a seat that page speaks for (the session then never sees it)."""
        if not self.active:
            return -1, from_page, data
        if len(data) < 5:
            return None
        dest, packet = data[0], data[1:]
        sender = packet[3]  # every packet's header carries its sender seat at byte 3
        if dest >= self.players or sender not in self.seats_of(from_page):
            return None
        return dest, sender, packet


class HostedSeat:
    """A policy's seat on its owning page: a session of its own whose local input is the policy's action.

    ``runner`` is a :class:`pyodide_runtime.policies.PolicyRunner`. Drive it like the page drives its own seat:
    :meth:`tick` with the time and the packets for this seat; it returns the packets to send and at most one
    inference request; pass the model's outputs to :meth:`deliver`.
    """

    def __init__(self, game: Game, config: SessionConfig, seat: int, agent: str, runner: Any,
                 policy: Mapping[str, Any] | None = None) -> None:
        """``policy``: the resolved policy's description (from ``/study.json``), kept for the report."""
        self.session = Session(game, config, seat)
        self.policy = dict(policy or {})
        self.seat = seat
        self.agent = agent
        self.runner = runner
        self.frame_skip = max(1, int(getattr(runner, "frame_skip", 1)))
        #: ``[global frame, action]`` each time the committed action changed: the seat's inputs from that frame on.
        self.applied: list[list[int]] = []
        self.requests = 0
        #: What went wrong running the model on the page (inference raised, or its outputs were unusable).
        self.failures: list[str] = []
        self._episode = -1
        self._last_t = -1
        self._next_id = 0
        self._pending: dict[str, Any] | None = None
        self._committed: int | None = None

    @property
    def ended(self) -> bool:
        return self.session.ended

    def tick(self, now_ms: float, incoming: Sequence[tuple[int, bytes]]) -> tuple[list[tuple[int, bytes]],
                                                                                  dict[str, Any] | None]:
        """Advance to ``now_ms``: returns the packets to send and an inference request (``{"seat", "id",
        "feeds"}``) when the policy is due to decide, else ``None``."""
        session = self.session
        if session.ended:
            return session.tick(now_ms, session.defaults[self.seat]).messages, None
        queues = session.queues
        before = queues.count(self.seat)
        action = int(self.runner.action)
        result = session.tick(now_ms, action, list(incoming))
        if queues.count(self.seat) > before and action != self._committed:
            self.applied.append([before, action])
            self._committed = action
        request = self._decide()
        # Nothing reads this session's records: drop them as they are confirmed (keep the latest for decisions).
        log = session.log
        if log.confirmed_count > 1:
            log.release(log.confirmed_count - 1)
        return result.messages, request

    def _decide(self) -> dict[str, Any] | None:
        """A request for the latest confirmed observation when it reaches a decision point."""
        log = self.session.log
        count = log.confirmed_count
        starts = log.episode_starts
        if starts and starts[-1].start_frame == count and starts[-1].confirmed_ms is not None:
            start = starts[-1]
            episode, t, observations = start.episode, 0, start.observations
        elif log.confirmed:
            record = log.confirmed[-1]
            if record.episode_over:
                return None  # the next episode's reset is not confirmed yet
            episode, t, observations = record.episode, record.frame + 1, record.observations
        else:
            return None
        if episode != self._episode:
            self.runner.reset(episode)
            self._episode, self._last_t = episode, -1
            self._pending = None
        k = self.frame_skip
        if t == self._last_t or (self._last_t >= 0 and t // k == self._last_t // k):
            return None
        feeds = self.runner.request(episode, count, t, observations[self.agent])
        if feeds is None:
            return None  # one inference at a time: this decision point is skipped
        self._last_t = t
        self._next_id += 1
        self.requests += 1
        self._pending = {"id": self._next_id, "episode": episode}
        return {"seat": self.seat, "id": self._next_id, "feeds": feeds}

    def deliver(self, request_id: int, outputs: Any, inference_ms: float | None = None) -> int | None:
        """The model's outputs for request ``request_id``: the policy's new action (``None`` for a stale id)."""
        pending = self._pending
        if pending is None or pending["id"] != int(request_id):
            return None
        self._pending = None
        try:
            return int(self.runner.deliver(outputs, inference_ms))
        except Exception as exc:  # noqa: BLE001 - outputs the policy cannot use: note it, keep playing
            self.fail(f"request {request_id}: {type(exc).__name__}: {exc}")
            return None

    def fail(self, message: str) -> None:
        """The request in flight failed (inference raised, or its outputs were unusable): the seat keeps its current
        action, the next decision point asks again, and the failure goes into the report."""
        self.failures.append(str(message)[:500])
        self._pending = None
        self.runner.cancel()

    def close(self, now_ms: float, reason: str) -> list[tuple[int, bytes]]:
        return self.session.close(now_ms, reason)

    def report(self) -> dict[str, Any]:
        """The seat's decision log for the owning page's diagnostics."""
        return {"agent": self.agent, "seat": self.seat, "policy": self.policy,
                "decisions": list(self.runner.decisions),
                "applied": [list(a) for a in self.applied], "requests": self.requests,
                "failures": list(self.failures),
                "runner": dict(getattr(self.runner, "stats", {}) or {}),
                "outcome": self.session.outcome.value if self.session.outcome is not None else None,
                "session": self.session.diagnostics()}


def expected_inputs(applied: Sequence[Sequence[int]], frames: int, default: int) -> list[int]:
    """The hosted seat's input at each global frame ``0..frames-1`` that its ``applied`` log implies."""
    out, action, i = [], default, 0
    for g in range(frames):
        while i < len(applied) and applied[i][0] <= g:
            action = int(applied[i][1])
            i += 1
        out.append(action)
    return out
