"""The Python side of the browser bridge: one object per participant page, one call per tick.

The page's worker builds a :class:`Bridge` from the study description (the server's ``/study.json``) and the seat
the server assigned, then calls :meth:`Bridge.tick` on every tick with the time, the participant's input, the
peer packets received since the previous tick and whether the page is hidden. The answer is a plain dict the
JavaScript side can use without further calls into Python::

    bridge = Bridge(study, seat=0, room="...", participant="P1", page={"user_agent": "..."})
    out = bridge.tick(now_ms, local_input, [(1, packet_bytes)], away=False)
    out["messages"]      # [(seat, bytes, reliable), ...] to send; ``reliable`` marks handshake/goodbye packets
    out["render"]        # draw-list JSON (str), RGBA bytes (with render_w/render_h), or None when unchanged
    out["hud"]           # {"phase", "episode", "episodes", "score", "waiting", "partner_away", "interrupted", ...}
    out["checkpoint"]    # bytes to append to local storage (episode end, page hidden, every 2 s with rejoin on),
                         # or None
    out["bundle"]        # the export's bytes once the session ended (with "filename" and "sha256"), or None
    out["interim"]       # at a confirmed episode end that more episodes follow: a bundle of every confirmed episode
                         # so far (status "interim"), with "interim_label" ("episode<N>") and "interim_sha256"; else None
    out["error"]         # what the env raised (with its traceback, for the console), on the tick it did; else None
    bridge.peer_left(1, "left")   # the study server's notice that seat 1 left its room (applied on the next tick)

No exception escapes :meth:`Bridge.tick`. When the env raises (in ``reset``, ``step``, a bot policy or
``render``), the session ends with outcome ``error`` on that tick and hands over its bundle of every confirmed
frame; the partner's session ends ``partial``. ``hud()["stopped"]`` then says ``"error"`` (our env) or
``"partner_error"`` (the partner's), for the page's plain message.

Like the session it wraps, the bridge is sans-IO: no sockets, timers or DOM. All netcode decisions stay in
:class:`~pyodide_runtime.session.Session`; the bridge builds the game, session and exporter, turns the session's
events into what a page shows, and produces checkpoints and the final bundle.
"""

from __future__ import annotations

import hashlib
import json
import math
import statistics
import time
from array import array
from collections import deque
from collections.abc import Iterable, Mapping
from datetime import datetime, timezone
from typing import Any

from pyodide_runtime.config import SessionConfig
from pyodide_runtime.envs.base import Game
from pyodide_runtime.envs.loading import load_game
from pyodide_runtime.envs.timing import GameTimer, instrument
from pyodide_runtime.export import Diagnostics, ExportContext, Exporter, bundle_name
from pyodide_runtime.export.checkpoint import Checkpoint, recover, resume_point
from pyodide_runtime.hosted import HostedSeat, SeatRouter, policy_seats
from pyodide_runtime.protocol.codec import T_INPUTS, DecodeError, peek_header
from pyodide_runtime.session import (
    EndCause, EpisodeEnded, Event, FastForward, Outcome, PeerAway, PeerBack, RollbackEvent, Session, SessionEnded,
    SessionState, Stalled, Started,
)
from pyodide_runtime.session.resume import ResumeError
from pyodide_runtime.tick_parts import TickParts

__all__ = ["Bridge", "session_id_for_room", "recover_bundle", "study_session_config"]

#: Keep at most this many tick intervals and RTT samples for the diagnostics.
_MAX_SAMPLES = 200_000
#: Frames whose cost the adaptive input delay's median is taken over (about a second at 30 fps).
_FRAME_COST_WINDOW = 32
#: The study server's ``peer-left`` reasons that mean the seat will never come back, and how ``end_reason`` says
#: it. ``disconnected`` is not one of them: that seat may reconnect within the server's grace period.
_GONE_FOR_GOOD = {"left": "left the study page", "expired": "did not reconnect within the server's grace period"}
#: What the page's worker measures and :meth:`Bridge.status` passes through.
#: How often a page stores a checkpoint when the study allows rejoining (ms of wall time).
_REJOIN_CHECKPOINT_MS = 2000.0
#: How long a page's hosted seats may go on after its own session ended complete (ms), to send their last acks.
_HOSTED_DRAIN_MS = 5000.0
_MEASURED = ("conditioner", "tick_cost_ms", "wasm_memory_bytes")
#: The parts of a tick the bridge times (ms per tick, see :meth:`Bridge.status`'s ``tick_parts_ms``): the session's
#: own work (its tick minus the env's step and snapshots), the env's ``step``, its ``get_state``/``set_state``,
#: the hosted policy seats' ticks, the export encoding (``exporter.update``, and the bundle at the end), checkpoints
#: and interim bundles, the render payload (the env's ``render`` and its encoding), and the rest of the bridge.
TICK_PARTS = ("session", "env_step", "snapshot", "hosted", "export", "checkpoint", "render", "bridge")
#: Events that may come on every tick: they do not make the page's status urgent.
_FREQUENT_EVENTS = ("rollback", "fast_forward", "stalled")
_PHASES = {SessionState.HANDSHAKE: "waiting", SessionState.RUNNING: "running", SessionState.DRAINING: "finishing",
           SessionState.ENDED: "ended"}


def session_id_for_room(room: str) -> str:
    """The export's session id: the same for every member of a room, and not the room's join capability."""
    return hashlib.sha256(f"pyodide_runtime/session/{room}".encode()).hexdigest()[:16]


def study_session_config(study: Mapping[str, Any]) -> SessionConfig:
    """The :class:`SessionConfig` a study description asks for (``config.session``; players from ``players``)."""
    config = study.get("config") or {}
    session = dict(config.get("session") or {})
    if "players" in study:
        session.setdefault("players", int(study["players"]))
    return SessionConfig(**session)


def _utc_now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


def _value(outcome: Outcome | None) -> str | None:
    return outcome.value if outcome is not None else None


def _payload(data: Any) -> bytes:
    # Bytes-like in CPython; a JsProxy of a Uint8Array in Pyodide.
    to_bytes = getattr(data, "to_bytes", None)
    return to_bytes() if callable(to_bytes) else bytes(data)


def _reliable(data: bytes) -> bool:
    """Handshake and goodbye packets are few and matter: send them on the reliable channel."""
    try:
        return peek_header(data)[1] != T_INPUTS
    except DecodeError:
        return False


class Bridge:
    """One participant's game, session and export, driven by the page one tick at a time."""

    def __init__(
        self,
        study: Mapping[str, Any] | str,
        seat: int,
        *,
        room: str = "",
        participant: str | None = None,
        page: Mapping[str, Any] | None = None,
        resume: Any = None,
        game: Game | None = None,
    ) -> None:
        """``study`` is the ``/study.json`` content (a dict or its JSON text); ``page`` holds facts the page
        knows (``user_agent``, ``wheel_sha256``, ``pyodide_version``, ``conditioner``, ``url_params``...).

        ``resume``: the checkpoint chunks a previous page of this participant stored (what :func:`recover_bundle`
        takes) to rejoin its session after a reload; raises :class:`~pyodide_runtime.session.ResumeError` (or
        :class:`~pyodide_runtime.export.checkpoint.CheckpointError`) when it cannot, see :meth:`_resumed`.

        ``game``: a game :func:`prepare_game` built from this same study and never played, used instead of
        building one (the page builds it while it waits for its seat)."""
        if isinstance(study, str):
            study = json.loads(study)
        page = dict(page or {})
        self.page = page
        self.seat = int(seat)
        config = study.get("config") or {}
        self.config = study_session_config(study)
        away = config.get("away_action")  # the action an away seat plays (default: the env's, usually 0)
        self.game = game if game is not None else prepare_game(study)
        self._resume = resume_point(_chunks(resume)) if resume is not None else None
        self.session = (Session(self.game, self.config, self.seat) if self._resume is None
                        else Session.resume(self.game, self.config, self.seat, self._resume))
        self.agent = self.game.seats[self.seat]
        #: Wall time of the game's step and snapshots (for ``tick_parts_ms``); ``None`` if the game cannot be timed.
        self.game_timer: GameTimer | None = _timer_for(self.game)
        self.tick_parts = TickParts(TICK_PARTS)
        self._part_times: dict[str, float] = {}
        self._last_render: Any = None
        #: Recent wall times (ms) of one simulated frame (step and snapshot), for the adaptive input delay.
        self._frame_costs: deque[float] = deque(maxlen=_FRAME_COST_WINDOW)
        self._last_hud: dict[str, Any] | None = None
        policies = policy_seats(study)
        self.router = SeatRouter(self.config.players, policies)
        #: The policy seats this page runs (it is their owner), by seat; see :mod:`pyodide_runtime.hosted`.
        self.hosted: dict[int, HostedSeat] = {}
        if policies and self.seat == self.router.owner:
            if self._resume is not None:
                raise ResumeError("a page that runs a policy's seat cannot rejoin its session")
            self.hosted = {s: _hosted_seat(study, spec, self.config, away) for s, spec in policies.items()}
        self._inboxes: dict[int, list[tuple[int, bytes]]] = {s: [] for s in (self.seat, *self.hosted)}
        self._hosted_close_at: float | None = None
        self.session_id = session_id_for_room(room) if room else "local"
        self.participant = str(participant or f"seat{self.seat}")
        self.exporter = Exporter(ExportContext.from_session(
            self.session, study=str(study.get("study") or "study"), session_id=self.session_id,
            participant=self.participant, wheel_sha256=page.get("wheel_sha256"),
            pyodide_version=page.get("pyodide_version"),
            packages=_packages(page.get("packages")),
            policies=_policy_provenance(policies, self.router.owner),
        ))
        self.filename = self.exporter.filename
        # Episodes replayed from a checkpoint had their interim bundles on the page that stored it.
        self._interim_from = self.session.timeline.episode if self._resume is not None else 0
        if self._resume is not None:
            self._resumed()
            self._resume = None  # the checkpoint's rows are in the exporter now
        # With rejoin on, a checkpoint every few seconds too: a reloaded page replays up to its last one and takes
        # the rest of its own inputs back from its partners.
        self._checkpoint_every = _REJOIN_CHECKPOINT_MS if self.config.rejoin_grace_ms > 0 else None
        self._checkpoint_at: float | None = None
        self.describe = dict(self.game.describe())
        self._events: list[Any] = []
        self._ticks = array("d")  # 8 bytes a tick, not a float object
        self._last_now: float | None = None
        self._started_at: str | None = None
        self._ended_at: str | None = None
        self._away = False
        self._away_spans: list[dict[str, Any]] = []
        self._partner_away: set[int] = set()
        self._interrupted = False
        self._dirty = True
        self._scored = 0
        self._score = 0.0
        self._episode = 0
        self._episodes_done = 0
        self._fast_forwarding = False
        self._bundle: bytes | None = None
        self._bundle_sha: str | None = None
        self._bundle_sent = False
        self._error_shown = False
        self.transport: dict[str, Any] = {"kind": None, "rtt_ms": None}
        self._left: list[tuple[int, str]] = []
        self.left_notices = {"applied": 0, "ignored": 0}
        self._rtt: list[tuple[float, float]] = []
        self.download = "pending"

    def _resumed(self) -> None:
        """The replayed session's export must be the checkpoint's: same provenance, the same rows byte for byte."""
        point = self._resume
        ours = json.loads(json.dumps(self.exporter.context.to_dict(), default=str))
        theirs = json.loads(json.dumps(point.context, default=str))
        differ = sorted(k for k in set(ours) | set(theirs) if ours.get(k) != theirs.get(k))
        if differ:
            raise ResumeError(f"the checkpoint was made by another page or study ({', '.join(differ)} differ)")
        self.exporter.update(self.session.log)  # kept in the log: the first tick scores them, then releases them
        enc = self.exporter.encoder
        if enc.frames_since(0) != point.frames_text or enc.resets_since(0) != point.resets_text:
            raise ResumeError("the replayed frames do not encode as the checkpoint's rows: "
                              "the env is not deterministic")

    # -- per tick ---------------------------------------------------------------------------------------------
    def tick(
        self, now_ms: float, local_input: int, incoming: Iterable[Any] = (), away: bool = False
    ) -> dict[str, Any]:
        """Advance to ``now_ms``; ``incoming`` holds ``(from_seat, bytes)`` pairs. See the module docstring."""
        start = time.perf_counter()
        out = self._timed_tick(now_ms, local_input, incoming, away)
        self._record_parts((time.perf_counter() - start) * 1000.0)
        return out

    def _timed_tick(self, now_ms: float, local_input: int, incoming: Iterable[Any], away: bool) -> dict[str, Any]:
        self._part_times = {}
        try:
            return self._tick(float(now_ms), local_input, incoming, away)
        except Exception as exc:  # noqa: BLE001 - not the env (the session handles that): still end with the data
            return self._crash(float(now_ms), exc)

    def _record_parts(self, total_ms: float) -> None:
        """Record this tick's parts; ``bridge`` is what the timed parts leave of ``total_ms``."""
        times = self._part_times
        times["bridge"] = total_ms - sum(times.values())
        self.tick_parts.record(times)

    def tick_page(self, now_ms: float, local_input: int, incoming: Any = None, away: bool = False) -> list[Any]:
        """:meth:`tick` for the page's worker: only what changed crosses to JavaScript, in a short list::

            [python_ms, frame, messages, render, render_w, render_h, hud, extra]

        ``python_ms`` is this call's own time (the worker subtracts it from its measure of the call to get the
        conversion cost); ``messages`` is ``[(seat, bytes, reliable), ...]`` or ``None`` when there are none;
        ``render`` a draw list (JSON text) or RGBA bytes (then ``render_w``/``render_h``), or ``None`` when the
        payload did not change since the last one sent; ``hud`` the HUD as JSON text, or ``None`` when it did not
        change; ``extra`` ``None``, or a dict of what this tick had beyond that (``events`` when there were any,
        ``urgent`` when one of them is not one of the frequent kinds, ``inference``, ``checkpoint``, ``interim``
        with ``interim_label``/``interim_sha256``, ``bundle`` with ``filename``/``sha256``, ``error``, ``ended``).
        """
        start = time.perf_counter()
        out = self._timed_tick(now_ms, local_input, () if incoming is None else incoming, away)
        render = out["render"]
        if render is not None:
            if self._last_render is not None and render == self._last_render:
                render = None  # the page already shows it
            else:
                self._last_render = render
        elif away:
            self._last_render = None  # a page back from hidden gets the next payload whatever it holds
        hud = out["hud"]
        hud_json = None
        if hud != self._last_hud:
            self._last_hud = hud
            hud_json = json.dumps(hud, separators=(",", ":"))
        extra: dict[str, Any] | None = None
        events = out["events"]
        if events or out.get("inference") or out.get("checkpoint") is not None or out.get("bundle") is not None \
                or out.get("interim") is not None or out.get("error") is not None or out["ended"]:
            extra = {k: v for k, v in out.items()
                     if v is not None and v is not False and k not in ("frame", "messages", "render", "render_w",
                                                                         "render_h", "render_kind", "hud")}
            if events:
                extra["urgent"] = any(e["type"] not in _FREQUENT_EVENTS for e in events)
            else:
                extra.pop("events", None)
            if not out.get("inference"):
                extra.pop("inference", None)
        self._record_parts((time.perf_counter() - start) * 1000.0)
        python_ms = (time.perf_counter() - start) * 1000.0  # recording the parts included
        return [python_ms, out["frame"], out["messages"] or None, render,
                out.get("render_w"), out.get("render_h"), hud_json, extra]

    def _tick(self, now_ms: float, local_input: int, incoming: Iterable[Any], away: bool) -> dict[str, Any]:
        away = bool(away)
        clock = time.perf_counter
        times = self._part_times  # this tick's parts (ms), recorded by the caller
        if self._last_now is not None and len(self._ticks) < _MAX_SAMPLES:
            self._ticks.append(now_ms - self._last_now)
        self._last_now = now_ms
        packets = self._route_in([(int(seat), _payload(data)) for seat, data in incoming])
        checkpoint = None
        if away and not self._away:
            self._away_spans.append({"seat": self.seat, "start_frame": self.session.frame, "start_ms": now_ms,
                                     "mode": "hidden"})
        elif self._away and not away and self._away_spans:
            self._away_spans[-1].update(end_frame=self.session.frame, end_ms=now_ms)
        went_away = away and not self._away
        self._away = away
        before = self.session.frame
        if self.session.ended:
            result_messages: list[tuple[int, bytes]] = []
            events: list[Any] = []
        else:
            count = self.session.input_counts[self.seat]
            local_input = int(local_input) if 0 <= int(local_input) < count else self.session.defaults[self.seat]
            if self._left:
                packets = self._apply_left(now_ms, packets)
            timer = self.game_timer
            step0, snap0, steps0 = (timer.step_ms, timer.snapshot_ms, timer.steps) if timer else (0.0, 0.0, 0)
            t = clock()
            result = self.session.tick(now_ms, local_input, packets, away)
            session_ms = (clock() - t) * 1000.0
            result_messages, events = result.messages, result.events
            if timer is not None:
                env_step_ms, snapshot_ms = timer.step_ms - step0, timer.snapshot_ms - snap0
                frames = timer.steps - steps0
                if frames and self.config.adaptive_delay:
                    self._note_frame_cost((env_step_ms + snapshot_ms) / frames)
                times.update(session=session_ms - env_step_ms - snapshot_ms, env_step=env_step_ms,
                             snapshot=snapshot_ms)
            else:
                times["session"] = session_ms
        messages = self._route_out(result_messages)
        if self.hosted:
            t = clock()
            inference = self._tick_hosted(now_ms, messages)
            times["hosted"] = (clock() - t) * 1000.0
        else:
            inference = []
        summary = self._absorb(events)
        t = clock()
        interim = self._interim(events)
        t2 = clock()
        # The page keeps no per-frame records once they are encoded (the score above read them first).
        self.exporter.update(self.session.log, release=True)
        t3 = clock()
        times["checkpoint"], times["export"] = (t2 - t) * 1000.0, (t3 - t2) * 1000.0
        if self.session.frame != before:
            self._dirty = True
            self._interrupted = False
        every, due = self._checkpoint_every, False
        if every is not None and self.session.started:
            if self._checkpoint_at is None:
                self._checkpoint_at = now_ms
            due = now_ms - self._checkpoint_at >= every
        if (went_away or summary["episode_ended"] or due) and not self.session.ended:
            t = clock()
            checkpoint = self.exporter.checkpoint(self.session.log)
            times["checkpoint"] += (clock() - t) * 1000.0
            self._checkpoint_at = now_ms
        out: dict[str, Any] = {
            "frame": self.session.frame,
            "messages": messages,
            "events": summary["events"],
            "inference": inference,
            "checkpoint": checkpoint,
            "bundle": None,
            "interim": None,
            "ended": self.session.ended,
        }
        if interim is not None:
            out["interim"], out["interim_label"], out["interim_sha256"] = interim
        t = clock()
        self._render_into(out, now_ms)
        times["render"] = (clock() - t) * 1000.0
        if self.session.ended and not out["ended"]:  # the env raised while rendering: say goodbye now
            self._flush(out, now_ms)
        return self._finish(out)

    def _note_frame_cost(self, ms: float) -> None:
        """Tell the session the median cost of one simulated frame, about once a second of ticks (the adaptive
        input delay weighs it against the frame period)."""
        costs = self._frame_costs
        costs.append(ms)
        if len(costs) == _FRAME_COST_WINDOW // 4 or self.session.frame % _FRAME_COST_WINDOW == 0:
            self.session.note_frame_cost(statistics.median(costs))

    def _interim(self, events: list[Any]) -> tuple[bytes, str, str] | None:
        """The interim bundle when ``events`` confirm the end of an episode that more episodes follow: every
        confirmed frame through that episode's last, status ``interim``, labelled ``episode<N>`` (1-based)."""
        last = None
        for e in events:
            if (isinstance(e, EpisodeEnded) and e.episode >= self._interim_from
                    and e.episode + 1 < self.config.episodes):
                last = e
        if last is None:
            return None
        data = self.exporter.interim(self.session.log, last.last_frame + 1, self.diagnostics())
        return data, f"episode{last.episode + 1}", hashlib.sha256(data).hexdigest()

    def _flush(self, out: dict[str, Any], now_ms: float) -> None:
        """Add what an ended session still holds (goodbyes, its end event) to ``out``."""
        rest = self.session.tick(now_ms, self.session.defaults[self.seat])
        out["messages"] += self._route_out(rest.messages)
        out["events"] += self._absorb(rest.events)["events"]
        out["ended"] = True

    def _finish(self, out: dict[str, Any]) -> dict[str, Any]:
        out["hud"] = self.hud()
        out["error"] = None
        if self.session.error is not None and not self._error_shown:
            out["error"] = dict(self.session.error)
            self._error_shown = True
        if self.session.ended and not self._bundle_sent and all(h.ended for h in self.hosted.values()):
            t = time.perf_counter()
            out["bundle"], out["filename"], out["sha256"] = self.bundle()
            self._part_times["export"] = self._part_times.get("export", 0.0) + (time.perf_counter() - t) * 1000.0
            self._bundle_sent = True
        return out

    def _crash(self, now_ms: float, exc: Exception) -> dict[str, Any]:
        """The bridge itself raised: end the session with outcome ``error`` and hand over what is confirmed.

        Raises the original exception if even the bundle cannot be built (the page then reports it).
        """
        out: dict[str, Any] = {"frame": self.session.frame, "messages": [], "events": [], "checkpoint": None,
                               "bundle": None, "ended": self.session.ended, "render": None}
        try:
            if self.session.fail(now_ms, exc):
                self._flush(out, now_ms)
            for seat, hosted in self.hosted.items():
                if not hosted.ended:
                    out["messages"] += self._route_out(hosted.close(now_ms, "its page's session ended"), sender=seat)
            return self._finish(out)
        except Exception:  # noqa: BLE001
            raise exc from None

    # -- hosted seats and routing -----------------------------------------------------------------------------
    def _route_in(self, packets: list[tuple[int, bytes]]) -> list[tuple[int, bytes]]:
        """Our session's packets from ``packets`` (and those our hosted seats sent it); the hosted seats' go to
        their inboxes. Frames a page may not send are dropped and counted like any rejected packet."""
        own = self._inboxes[self.seat]
        router = self.router
        if not router.active:
            return packets
        for from_page, data in packets:
            routed = router.unframe(from_page, data)
            inbox = self._inboxes.get(routed[0]) if routed is not None else None
            if inbox is None:
                self.session.stats["rejected"]["wrong_seat"] += 1
                continue
            inbox.append((routed[1], routed[2]))
        out = own[:]
        own.clear()
        return out

    def _route_out(self, messages: list[tuple[int, bytes]], sender: int | None = None
                   ) -> list[tuple[int, bytes, bool]]:
        """``(page seat, bytes, reliable)`` to send for ``messages``; those for a seat on this page stay here."""
        out = []
        sender = self.seat if sender is None else sender
        for seat, data in messages:
            inbox = self._inboxes.get(seat)
            if inbox is not None:
                inbox.append((sender, data))
            else:
                page, framed = self.router.frame(seat, data)
                out.append((page, framed, _reliable(data)))
        return out

    def _tick_hosted(self, now_ms: float, messages: list[tuple[int, bytes, bool]]) -> list[dict[str, Any]]:
        """Tick every hosted seat after our own session; add their packets to ``messages``; return the inference
        requests they made."""
        requests = []
        session = self.session
        if session.ended and self._hosted_close_at is None:
            # A complete session leaves its hosted seats a moment to finish (their last acks and goodbyes); any other
            # end closes them now.
            self._hosted_close_at = now_ms + (_HOSTED_DRAIN_MS if session.outcome is Outcome.COMPLETE else 0.0)
        for seat, hosted in self.hosted.items():
            if self._hosted_close_at is not None and now_ms >= self._hosted_close_at and not hosted.ended:
                messages += self._route_out(hosted.close(now_ms, "its page's session ended"), sender=seat)
                continue
            inbox = self._inboxes[seat]
            packets = inbox[:]
            inbox.clear()
            sent, request = hosted.tick(now_ms, packets)
            messages += self._route_out(sent, sender=seat)
            if request is not None:
                requests.append(request)
        return requests

    def policy_result(self, seat: int, request_id: int, outputs: Any, inference_ms: float | None = None) -> Any:
        """The page's answer to an inference request from :meth:`tick` (``out["inference"]``): the model's outputs
        in the tensor wire format. Returns the policy's new action, or ``None`` for a stale or unknown request."""
        hosted = self.hosted.get(int(seat))
        if hosted is None:
            return None
        outputs = [_tensor(t) for t in outputs]
        return hosted.deliver(int(request_id), outputs, None if inference_ms is None else float(inference_ms))

    def policy_failed(self, seat: int, message: str) -> None:
        """The page could not run the policy of ``seat`` (inference raised): the seat keeps its current action, the
        next decision point asks again, and the failure is in the diagnostics."""
        hosted = self.hosted.get(int(seat))
        if hosted is not None:
            hosted.fail(str(message))

    def peer_left(self, seat: Any, reason: Any) -> bool:
        """The study server's ``peer-left`` notice: seat ``seat`` left the room for ``reason``.

        ``left`` (the page was closed, reloaded or navigated away) and ``expired`` (it never reconnected) end the
        session on the next tick, exactly as that seat's goodbye would (see :meth:`Session.peer_left`).
        ``disconnected`` (or ``reconnecting``): the seat may still come back; with ``rejoin_grace_ms`` > 0 its
        silence is then allowed that long for its reloaded page to rejoin (:meth:`Session.peer_reconnecting`),
        else it changes nothing. The server knows which socket left, so the notice is trusted for that seat only;
        a malformed notice, or one about a seat that is not a partner's, is ignored and counted in
        ``left_notices``. Returns whether the notice was queued.
        """
        rejoin = reason in ("disconnected", "reconnecting")
        if rejoin and self.config.rejoin_grace_ms <= 0:
            return False
        why = "" if rejoin else _GONE_FOR_GOOD.get(reason) if isinstance(reason, str) else None
        if why is None or type(seat) is not int or seat == self.seat or not 0 <= seat < self.config.players:
            self.left_notices["ignored"] += 1
            return False
        self._left.append((seat, why))
        return True

    def _apply_left(self, now_ms: float, packets: list[tuple[int, bytes]]) -> list[tuple[int, bytes]]:
        # Packets that arrived with the notice were sent before the page left: they count first.
        for seat, data in packets:
            self.session.receive(now_ms, data, seat)
        for seat, why in self._left:
            session = self.session
            applied = session.peer_left(seat, now_ms, why) if why else session.peer_reconnecting(seat, now_ms)
            self.left_notices["applied" if applied else "ignored"] += 1
            for hosted in self.hosted.values():
                if why:
                    hosted.session.peer_left(seat, now_ms, why)
                else:
                    hosted.session.peer_reconnecting(seat, now_ms)
        self._left.clear()
        return []

    def _absorb(self, events: list[Event]) -> dict[str, Any]:
        """Note what the page shows about ``events``; the page gets each event's ``to_dict()``."""
        episode_ended = False
        self._fast_forwarding = False
        for e in events:
            self._events.append(e)
            if isinstance(e, RollbackEvent):
                self._dirty = True
            elif isinstance(e, EpisodeEnded):
                episode_ended = True
                self._episodes_done += 1
            elif isinstance(e, FastForward):
                self._fast_forwarding = True
            elif isinstance(e, Stalled):
                self._interrupted = True
            elif isinstance(e, PeerAway):
                self._partner_away.add(e.seat)
            elif isinstance(e, PeerBack):
                self._partner_away.discard(e.seat)
            elif isinstance(e, Started):
                self._started_at = _utc_now()
            elif isinstance(e, SessionEnded):
                self._ended_at = _utc_now()
        self._update_score()
        return {"events": [e.to_dict() for e in events], "episode_ended": episode_ended}

    def _update_score(self) -> None:
        log = self.session.log
        agent = self.agent
        for rec in log.confirmed_since(self._scored):
            if rec.episode != self._episode:  # the HUD keeps an ended episode's score until the next one starts
                self._episode, self._score = rec.episode, 0.0
            self._score += float(rec.rewards.get(agent, 0.0) or 0.0)
        self._scored = log.confirmed_count

    def _render_into(self, out: dict[str, Any], now_ms: float) -> None:
        out["render"] = None
        if not self._dirty or not self.session.started or self._away or self.session.error is not None:
            return  # a hidden page paints nothing; the frame is rendered again once it is back
        self._dirty = False
        try:
            self._draw(out)
        except Exception as exc:  # noqa: BLE001 - output the page cannot draw: the env's render failed
            out["render"] = None
            self.session.fail(now_ms, exc, "render")

    def _draw(self, out: dict[str, Any]) -> None:
        frame = self.session.render()
        if frame is None:
            return
        if isinstance(frame, (list, tuple)):
            out["render_kind"] = "draw"
            out["render"] = json.dumps(frame, separators=(",", ":"), allow_nan=False)
            return
        import numpy as np

        rgb = np.asarray(frame)
        if rgb.ndim != 3 or rgb.shape[2] not in (3, 4):
            return
        h, w = int(rgb.shape[0]), int(rgb.shape[1])
        rgba = np.empty((h, w, 4), dtype=np.uint8)
        rgba[..., :3] = rgb[..., :3]
        rgba[..., 3] = rgb[..., 3] if rgb.shape[2] == 4 else 255
        out.update(render_kind="rgba", render=rgba.tobytes(), render_w=w, render_h=h)

    # -- what the page shows and reports ----------------------------------------------------------------------
    def phase(self) -> str:
        """What the page calls the session's state."""
        return _PHASES[self.session.state]

    def hud(self) -> dict[str, Any]:
        """What the heads-up display shows; ``between`` (next episode, 0-based, the hold's remaining ms and the
        ended episode's score) only while the session holds between episodes."""
        hud = {
            "phase": self.phase(),
            "episode": self._episode + 1,
            "episodes": self.config.episodes,
            "score": self._score,
            "waiting": not self.session.started,
            "resuming": self.session.resuming,
            "partner_away": bool(self._partner_away),
            "interrupted": self._interrupted and not self._partner_away,
            "fast_forwarding": self._fast_forwarding,
            "away": self._away,
            "outcome": _value(self.session.outcome),
            "stopped": self._stopped(),
        }
        hold = self.session.holding(self._last_now) if self._last_now is not None else None
        if hold is not None:
            hud["between"] = {"episode": hold[0], "remaining_ms": int(math.ceil(hold[1])), "scores": self._score}
        return hud

    def _stopped(self) -> str | None:
        """``"error"`` when our env raised, ``"partner_error"`` when a partner's did, else ``None``."""
        end = self.session.end
        if end is None:
            return None
        if end.cause is EndCause.ENV_ERROR:
            return "error"
        if end.cause is EndCause.PEER_ENV_ERROR:
            return "partner_error"
        return None

    def status(self, measured: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """The page's status, built here only (documented in ``docs/bridge.md``): the session's and the bridge's
        facts, plus what the worker measured (``conditioner``, ``tick_cost_ms``, ``wasm_memory_bytes``) as given.
        The page shows it as is and adds only the facts it alone holds (loading stage, downloads, errors...)."""
        s = self.session
        stats = s.stats
        return {
            "phase": self.phase(),
            "seat": self.seat,
            "agent": self.agent,
            "players": self.config.players,
            "input_count": s.input_counts[self.seat],
            "action_names": self.describe.get("action_names"),
            "session": self.session_id,
            "frame": s.frame,
            "confirmed_frames": s.confirmed_frames,
            "episode": self.hud()["episode"],
            "episodes": self.config.episodes,
            "episodes_done": self._episodes_done,
            "score": self._score,
            "rollbacks": stats["rollbacks"],
            "max_rollback_depth": stats["max_rollback_depth"],
            "resimulated_frames": stats["resimulated_frames"],
            "fast_forward_frames": stats["fast_forward_frames"],
            "stalls": stats["stalls"],
            "time_sync_skips": stats["time_sync_skips"],
            "between_episodes_ms": self.config.between_episodes_ms,
            "between_episode_holds": stats["between_episode_holds"],
            "resumed": stats.get("resumed"),
            "peer_rejoins": stats.get("peer_rejoins", 0),
            "desyncs": stats["desyncs"],
            "rejected": sum(stats["rejected"].values()),
            "packets_sent": stats["packets_sent"],
            "packets_received": stats["packets_received"],
            "away": self._away,
            "away_periods": len(self._away_spans),
            "partner_away": bool(self._partner_away),
            "interrupted": self._interrupted,
            "transport": self.transport.get("kind"),
            "rtt_ms": self.transport.get("rtt_ms"),
            "outcome": _value(s.outcome),
            "end_reason": s.end_reason,
            "end_cause": s.end.cause.value if s.end is not None else None,
            "error": {k: v for k, v in s.error.items() if k != "traceback"} if s.error is not None else None,
            "left_notices": dict(self.left_notices),
            "download": self.download,
            "filename": self.filename,
            "bundle_sha256": self._bundle_sha,
            "tick_parts_ms": self.tick_parts_ms((measured or {}).get("tick_parts_js")),
            **{k: v for k, v in (measured or {}).items() if k in _MEASURED},
        }

    def tick_parts_ms(self, measured: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """Where the ticks went (documented in ``docs/bridge.md``): ``ticks``, and per part its ``total_ms``,
        ``mean_ms`` (per tick), ``max_ms`` and per-tick ``p50``/``p95``/``p99``. The Python parts are
        :data:`TICK_PARTS`; ``measured`` adds the worker's own (``convert``, ``post``, ``status``) as it gives them,
        and its ``clock_resolution_ms``. ``env_step_per_frame_ms`` is the env's mean step time per simulated frame."""
        timer = self.game_timer
        parts: dict[str, Any] = self.tick_parts.summary()
        out: dict[str, Any] = {"ticks": self.tick_parts.ticks, "parts": parts,
                               "frames_stepped": timer.steps if timer else None,
                               "env_step_per_frame_ms": (round(timer.step_ms / timer.steps, 4)
                                                         if timer and timer.steps else None)}
        for name, value in (measured or {}).items():
            if name == "parts" and isinstance(value, Mapping):
                parts.update({str(k): v for k, v in value.items() if k not in parts})
            elif name != "parts":
                out[str(name)] = value
        return out

    def status_json(self, measured: str | None = None) -> str:
        """:meth:`status` as JSON text; ``measured`` is the worker's measurements as JSON text."""
        return json.dumps(self.status(json.loads(measured) if measured else None))

    def set_transport(self, kind: str | None, rtt_ms: float | None = None, now_ms: float | None = None) -> None:
        """Record what carries peer bytes (``p2p`` or ``relay``) and the latest RTT, for status and diagnostics."""
        self.transport["kind"] = kind
        if rtt_ms is not None:
            self.transport["rtt_ms"] = round(float(rtt_ms), 2)
            if len(self._rtt) < _MAX_SAMPLES:
                self._rtt.append((float(now_ms if now_ms is not None else self._last_now or 0.0), float(rtt_ms)))
        kinds = self.transport.setdefault("kinds", [])
        if kind and kind not in kinds:
            kinds.append(kind)

    # -- ending and export ------------------------------------------------------------------------------------
    def close(self, now_ms: float, reason: str = "participant left") -> dict[str, Any]:
        """End the session from this side: goodbye packets to send, and the bundle (partial unless complete)."""
        messages = self.session.close(float(now_ms), reason) if not self.session.ended else []
        for hosted in self.hosted.values():
            messages += hosted.close(float(now_ms), reason)
        self._absorb([])
        if self._ended_at is None:
            self._ended_at = _utc_now()
        routed = self._route_out(messages)
        out: dict[str, Any] = {"messages": [(s, d, True) for s, d, _ in routed], "bundle": None}
        if not self._bundle_sent:
            out["bundle"], out["filename"], out["sha256"] = self.bundle()
            self._bundle_sent = True
        return out

    def diagnostics(self) -> Diagnostics:
        session = self.session
        page = self.page
        return Diagnostics.from_events(
            self._events,
            user_agent=page.get("user_agent"),
            started_at=self._started_at,
            ended_at=self._ended_at,
            tick_intervals_ms=self._ticks,
            away=self._away_spans,
            network={"transport": dict(self.transport), "rtt_ms": [list(x) for x in self._rtt[-2000:]],
                     "conditioner": page.get("conditioner")},
            stats=session.diagnostics(),
            extra={"page": {k: v for k, v in page.items() if k not in ("user_agent",)},
                   "env": {"action_names": self.describe.get("action_names")},
                   "left_notices": dict(self.left_notices),
                   "policies": [hosted.report() for hosted in self.hosted.values()]},
        )

    def bundle(self) -> tuple[bytes, str, str]:
        """The export bundle (built once), its file name and sha256."""
        if self._bundle is None:
            self._bundle = self.exporter.bundle(self.session.log, self.diagnostics())
            self._bundle_sha = hashlib.sha256(self._bundle).hexdigest()
        return self._bundle, self.filename, self._bundle_sha or ""

    def checkpoint(self) -> bytes:
        """A checkpoint now (the page also gets one in :meth:`tick` at episode ends and when hidden)."""
        return self.exporter.checkpoint(self.session.log)

    def set_download(self, state: str) -> None:
        """The page reports the download's progress (``started``, ``done``, ``uploaded``...) for :meth:`status`."""
        self.download = str(state)


def _timer_for(game: Any) -> GameTimer | None:
    """A timer on ``game``'s step and snapshots, or ``None`` for a game whose methods cannot be wrapped."""
    try:
        return instrument(game)
    except (AttributeError, TypeError, ValueError):
        return None


def _hosted_seat(study: Mapping[str, Any], spec: Mapping[str, Any], config: SessionConfig, away: Any) -> HostedSeat:
    """The policy seat ``spec`` (a resolved policy from ``/study.json``) with a game of its own."""
    from pyodide_runtime.policies import PolicyRunner, ResolvedPolicy

    env = study.get("env") or {}
    cfg = study.get("config") or {}
    game = load_game(str(env["spec"]), cfg.get("env_config"), bots=cfg.get("bots"),
                     default_inputs=None if away is None else [int(away)] * config.players)
    resolved = ResolvedPolicy.from_json(dict(spec))
    return HostedSeat(game, config, int(spec["seat"]), str(spec["agent"]), PolicyRunner(resolved, seed=config.seed),
                      policy=spec)


def _policy_provenance(policies: Mapping[int, Mapping[str, Any]], owner: int) -> tuple[dict[str, Any], ...] | None:
    """What every export says about the study's policies: the model by its sha256, and which page ran it."""
    if not policies:
        return None
    keys = ("agent", "seat", "model_sha256", "model_bytes", "action", "frame_skip", "default_action")
    return tuple({**{k: p.get(k) for k in keys}, "owner_seat": owner} for _, p in sorted(policies.items()))


def _tensor(item: Any) -> dict[str, Any]:
    """A tensor dict from the page (a JS object or a dict), with its data as bytes."""
    get = item.get if hasattr(item, "get") else (lambda k, _i=item: getattr(_i, k, None))
    dims = get("dims")
    return {"name": str(get("name")), "dtype": str(get("dtype")), "dims": [int(d) for d in dims],
            "data": _payload(get("data"))}


def _packages(value: Any) -> tuple[dict[str, Any], ...] | None:
    """The page's list of loaded packages (JS objects or dicts), as plain dicts; ``None`` when it sent none."""
    if value is None:
        return None
    out = []
    for item in value:
        get = item.get if hasattr(item, "get") else (lambda k, _i=item: getattr(_i, k, None))
        out.append({"name": get("name"), "version": get("version"), "sha256": get("sha256")})
    return tuple(out)


def _chunks(chunks: Any) -> Any:
    """Stored checkpoint bytes as the page hands them (one blob, a list, or a JS array of Uint8Arrays)."""
    if not isinstance(chunks, (bytes, bytearray, memoryview, str)):
        return [_payload(c) for c in chunks]
    return bytes(chunks) if isinstance(chunks, memoryview) else chunks


def recover_bundle(chunks: Any) -> tuple[bytes, str]:
    """A bundle (flagged recovered) and its file name from stored checkpoint bytes (one blob or a list)."""
    chunks = _chunks(chunks)
    data = recover(chunks)
    context = Checkpoint.parse(chunks)[-1].context
    name = bundle_name(str(context.get("study")), str(context.get("session")), str(context.get("participant")),
                       int(context.get("seat", 0)))
    return data, name.replace(".zip", "-recovered.zip") if name.endswith(".zip") else name


def prepare_game(study: Mapping[str, Any] | str) -> Game:
    """The game a :class:`Bridge` for ``study`` plays: the env built from ``env.spec`` with ``config.env_config``,
    its bots and away action, wrapped and its snapshots verified (raises what :func:`load_game` raises).

    The page's worker calls it once the env is imported, before its seat is known, and hands the result to the
    game's :class:`Bridge` (``game=``), so that building and verifying the env overlaps joining the room."""
    if isinstance(study, str):
        study = json.loads(study)
    config = study.get("config") or {}
    env = study.get("env") or {}
    away = config.get("away_action")
    players = study_session_config(study).players
    return load_game(str(env["spec"]), config.get("env_config"), bots=config.get("bots"),
                     default_inputs=None if away is None else [int(away)] * players)


__all__ += ["prepare_game"]


def load_env_for_page(spec: str) -> None:
    """Import the study's env module and resolve its factory ``spec`` (``"module:function"`` or ``"file.py:function"``).

    The page's worker calls this once the runtime is loaded, before a seat is known, so that joining a room does
    not wait for the import; :class:`Bridge` later builds the game from the same spec. A spec that cannot be
    resolved raises :class:`~pyodide_runtime.envs.loading.EnvLoadError` (or ``ValueError`` for a malformed one),
    which the page reports.
    """
    from pyodide_runtime.envs.loading import load_factory

    load_factory(str(spec))


__all__ += ["load_env_for_page"]


def practice_study_json(study_json: str | Mapping[str, Any], scene_json: str | Mapping[str, Any]) -> str:
    """The study description a practice scene's :class:`Bridge` is built from (JSON text): one player, the scene's
    ``bots``, ``env_config`` and ``episodes``, everything else as in the study. Build the bridge with seat 0 and
    no room; it has no peers, so it starts on its first tick and plays alone."""
    study = json.loads(study_json) if isinstance(study_json, str) else dict(study_json)
    scene = json.loads(scene_json) if isinstance(scene_json, str) else dict(scene_json)
    config = dict(study.get("config") or {})
    config["session"] = {**(config.get("session") or {}), "players": 1, "episodes": int(scene.get("episodes") or 1)}
    config["bots"] = dict(scene.get("bots") or {})
    if scene.get("env_config") is not None:
        config["env_config"] = dict(scene["env_config"])
    config.pop("scenes", None)
    config.pop("policies", None)
    return json.dumps({**study, "players": 1, "pages": 1, "config": config, "policies": []})


def attach_participant(bundle: Any, record_json: str, practice: Any = ()) -> tuple[bytes, str, str]:
    """The participant's export: the game ``bundle`` (bytes, or ``None`` when there was no game, e.g. consent was
    declined) with the record the page kept (JSON text, see :mod:`pyodide_runtime.export.participant`) and the
    practice bundles attached. Returns ``(zip bytes, file name, sha256)``; the game entries are kept byte for byte.

    The file name is the game bundle's (it is this participant's one export), or, without a game,
    ``<study>_<participant>_participant.zip`` from the record's ``study`` and ``participant`` (when given).
    """
    from pyodide_runtime.export.bundle import open_bundle, sanitize
    from pyodide_runtime.export.participant import attach

    record = json.loads(record_json) if isinstance(record_json, str) else dict(record_json)
    game = _payload(bundle) if bundle is not None else None
    record["practice"] = [_payload(p) for p in (practice or ())]
    data, sha = attach(game, record)
    if game is not None:
        meta = json.loads(open_bundle(game)["metadata.json"])
        canon, local = meta["canonical"], meta["participant_local"]
        name = bundle_name(str(canon.get("study")), str(canon.get("session")), str(local.get("participant")),
                           int(local.get("seat") or 0))
    else:
        name = (f"{sanitize(record.get('study') or 'study')}_{sanitize(record.get('participant') or 'participant')}"
                "_participant.zip")
    return data, name, sha


__all__ += ["practice_study_json", "attach_participant"]
