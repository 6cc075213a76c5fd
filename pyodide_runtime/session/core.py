"""The sans-IO session: one per peer, a state machine fed with time, local input and peer bytes.

Quick start::

    session = Session(game, SessionConfig(players=2, input_delay=2), seat=0)
    while not session.ended:
        result = session.tick(now_ms, local_input, incoming=[(from_seat, packet_bytes), ...], away=tab_hidden)
        for seat, data in result.messages:
            transport.send(seat, data)
        for event in result.events:
            ...  # RollbackEvent, EpisodeEnded, DesyncDetected, PeerAway, SessionEnded, ...
        draw(session.render())          # the game's state at result.frame
    rows = session.log.confirmed         # canonical frame records (see pyodide_runtime.framelog)

Call protocol
    * Call :meth:`Session.tick` once per display tick (typically every ``1000 / fps`` ms) with the current time
      in ms from any monotonic clock, the participant's current input (an int in ``range(game.input_count(seat))``),
      the packets received since the last tick, and whether the page is hidden. Packets may also be fed between
      ticks with :meth:`Session.receive`; their events come out of the next tick.
    * Send every ``(seat, bytes)`` in ``result.messages`` to that seat, unreliably and unordered is fine: every
      input packet repeats all unacknowledged inputs.
    * The session decides how many frames a tick simulates from wall time: normally 0 or 1, up to
      ``max_frames_per_tick`` when catching up. It stalls (``Stalled``) rather than predict more than
      ``max_prediction`` frames ahead of the confirmed frame, and skips frames when time sync finds it ahead.
    * Before frame 0 the peers exchange ``Hello`` until each has heard every other; a mismatch of protocol
      version, player count, env id/version, seed or config digest ends the session (``HandshakeFailed``).
    * The session ends by itself (``SessionEnded``): ``complete`` when every episode is confirmed and every peer
      holds our inputs, ``partial`` when a peer disconnects, stays away too long or its env raised, ``error``
      when our own env raised (see below). Call :meth:`Session.close` when the participant leaves. Nothing
      raises on bad peer data: it is rejected and counted in ``stats``.

Env errors
    An exception from the game (``reset``, ``step``, a bot policy, ``get_state``/``set_state``, or
    :meth:`Session.render`), in a fresh step or while a rollback resimulates, never escapes :meth:`Session.tick`.
    The session ends with outcome ``error`` at once, without touching the game again: the confirmed frames are
    kept exactly as they were (nothing is promoted after the error) and the speculative ones become the
    unconfirmed tail. ``session.error`` describes it (kind, message, where, frame, the env's file and line,
    traceback) and ``end_reason`` says it plainly ("the env raised ZeroDivisionError in step at frame 88").
    The peers get ``Goodbye(ERROR)`` and end ``partial`` ("seat 0 stopped: its env raised an error").

Away
    While ``away=True`` the local seat plays its default input, flagged away, and commits it ahead of wall time
    on every tick: far enough to cover twice the gap between its ticks (at most ``away_lease_frames``), so the
    other peers confirm those frames without waiting even when a hidden page ticks at 1 Hz. Committed inputs are
    final, so a participant who returns plays again from the end of the last lease. After a freeze the first
    ticks are far behind wall time; the session then fast-forwards in chunks of ``max_frames_per_tick``,
    executing the away default it announces for those frames (``FastForward``). The other peers see
    ``PeerAway``/``PeerBack`` at the frames where the flag changes. Away longer than ``away_timeout_ms`` ends
    the session as partial, with every confirmed frame kept.

Between episodes
    With ``between_episodes_ms`` > 0, the live timeline holds when it enters a new episode (never after the last):
    for that much wall time no frame is simulated and no input committed, while packets, acks and silence checks go
    on; :meth:`Session.holding` says so (for the page's countdown). The pacer waits meanwhile, so the hold leaves no
    catch-up debt. A rollback that moves a speculative episode end keeps the one hold already made. Pacing never
    changes the data: ``stats["between_episode_holds"]`` counts the holds.

Input delay
    The local input sampled on a tick is committed for frame ``frame + input_delay``. With
    ``config.adaptive_delay`` each session chooses its own delay within ``[min_input_delay, max_input_delay]``
    from the round trips its peers' acks show and the frame cost the host reports with
    :meth:`Session.note_frame_cost` (see :mod:`pyodide_runtime.sync.input_delay`); each change is an
    ``InputDelayChanged`` event and a row of ``diagnostics()["input_delays"]``. Inputs stay per frame and final, so
    the data does not depend on the delays the peers chose.

Rejoin
    A page that reloads mid-game builds its session with :meth:`Session.resume` from its last checkpoint: the
    confirmed frames are replayed (their hashes must match), its own inputs past them are taken back from the
    peers (``Resume``/``Echo``), and it catches up (``Resumed``, then ``FastForward``). Its partners call
    :meth:`Session.peer_reconnecting` when the server reports it disconnected, which allows its silence for
    ``rejoin_grace_ms``; they answer its ``Resume`` by themselves (``PeerRejoined``). See
    :mod:`pyodide_runtime.session.resume`.

Records
    ``session.log.confirmed`` holds the confirmed :class:`~pyodide_runtime.framelog.FrameRecord` objects (global
    frame order) and ``session.log.episode_starts`` the reset observations; ``session.unconfirmed_tail()`` the
    records that were never confirmed when a session ended partial. ``session.stats`` counts rollbacks,
    stalls, fast-forward frames, time-sync skips, traffic and rejected packets by kind.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from pyodide_runtime.config import SessionConfig
from pyodide_runtime.envs.base import Game
from pyodide_runtime.framelog import FrameLog, FrameRecord
from pyodide_runtime.protocol.codec import T_HELLO, DecodeError, decode, decode_inputs_fields, encode, peek_header
from pyodide_runtime.protocol.messages import AWAY_BIT, Echo, Goodbye, GoodbyeReason, Hello, Inputs, Resume
from pyodide_runtime.session.errors import describe_error
from pyodide_runtime.session.events import (
    EpisodeEnded, Event, FastForward, HandshakeFailed, InputDelayChanged, PeerReconnecting, RollbackEvent,
    SessionEnded, Stalled, Started,
)
from pyodide_runtime.session.pacing import Pacer
from pyodide_runtime.session.peer import REJECT_KINDS, PeerLink
from pyodide_runtime.session.resume import ResumePoint, ResumeState, on_rejoin_message, replay
from pyodide_runtime.session.state import End, EndCause, Outcome, SessionState
from pyodide_runtime.sync.input_delay import DelayController
from pyodide_runtime.sync.inputs import InputQueues
from pyodide_runtime.sync.prediction import Predictor, make_predictor
from pyodide_runtime.sync.timeline import Timeline

__all__ = ["Session", "TickResult"]

_ACTION_MASK = AWAY_BIT - 1
_HANDSHAKE, _RUNNING, _DRAINING, _ENDED = (
    SessionState.HANDSHAKE, SessionState.RUNNING, SessionState.DRAINING, SessionState.ENDED,
)
#: The goodbye we send the peers, by why the session ended (``LEFT`` for the causes not listed).
_GOODBYE = {
    EndCause.ALL_CONFIRMED: GoodbyeReason.COMPLETE, EndCause.ENV_ERROR: GoodbyeReason.ERROR,
    EndCause.AWAY_TIMEOUT: GoodbyeReason.AWAY_TIMEOUT, EndCause.PEER_AWAY_TIMEOUT: GoodbyeReason.AWAY_TIMEOUT,
    EndCause.HANDSHAKE_FAILED: GoodbyeReason.HANDSHAKE_FAILED,
}


@dataclass(slots=True)
class TickResult:
    """What one tick produced: the frame to render, packets to send and events."""

    frame: int
    messages: list[tuple[int, bytes]]
    events: list[Event]


class Session:
    """One peer's rollback session. See the module docstring for the call protocol."""

    #: While a session built by :meth:`resume` waits for its peers' echoes (see :mod:`.resume`).
    _resume: ResumeState | None = None

    def __init__(
        self, game: Game, config: SessionConfig, seat: int, *, predictor: Predictor | None = None
    ) -> None:
        """Build the session for ``seat``. Raises :class:`SnapshotError` for a game that cannot be snapshotted."""
        if not 0 <= seat < config.players:
            raise ValueError(f"seat {seat} out of range for {config.players} players")
        if len(game.seats) != config.players:
            raise ValueError(f"the game has {len(game.seats)} seats but the config says players={config.players}")
        self.game = game
        self.config = config
        self.seat = seat
        self.input_counts = tuple(game.input_count(s) for s in range(config.players))
        self.defaults = tuple(game.default_input(s) for s in range(config.players))
        for s, (n, d) in enumerate(zip(self.input_counts, self.defaults)):
            if not 0 < n <= _ACTION_MASK or not 0 <= d < n:
                raise ValueError(f"seat {s}: input_count {n} / default_input {d} cannot be sent as inputs")
        self.stats: dict[str, Any] = {
            "frames_simulated": 0, "rollbacks": 0, "resimulated_frames": 0, "max_rollback_depth": 0,
            "stalls": 0, "stall_ticks": 0, "fast_forward_frames": 0, "time_sync_skips": 0,
            "packets_sent": 0, "bytes_sent": 0, "packets_received": 0, "bytes_received": 0,
            "desyncs": 0, "between_episode_holds": 0, "rejected": dict.fromkeys(REJECT_KINDS, 0),
            "resim_snapshots_skipped": 0,
        }
        #: The adaptive input delay (``None`` when ``config.adaptive_delay`` is off) and its changes.
        self._delay: DelayController | None = None
        self._delay_changes: list[dict[str, Any]] = []
        if config.adaptive_delay:
            self._delay = DelayController(config.input_delay, config.min_input_delay, config.max_input_delay,
                                          config.frame_ms, lower_after=2 * config.fps, warmup=2 * config.fps)
            self.stats["input_delay"] = config.input_delay
            self.stats["input_delay_changes"] = 0
        self.log = FrameLog(config.frame_hash, config.hash_interval)
        self.queues = InputQueues(self.defaults, config.input_delay, self.input_counts)
        self.timeline = Timeline(
            game, config, self.queues, self.log,
            make_predictor(predictor if predictor is not None else config.prediction, self.defaults),
            self.stats,
        )
        self.timeline.check_snapshots()
        self._slack = 4 * (config.input_delay + config.max_prediction + config.away_lease_frames + config.fps)
        self._events: list[Event] = []
        self.peers = {
            s: PeerLink(s, seat, queues=self.queues, timeline=self.timeline, log=self.log, stats=self.stats,
                        events=self._events, slack=self._slack, delay=self._delay)
            for s in range(config.players) if s != seat
        }
        self.state = _HANDSHAKE
        #: How the session ended (outcome, machine-readable cause and its detail), or ``None`` while it runs.
        self.end: End | None = None
        #: What our env raised (see :func:`describe_error`), or ``None``.
        self.error: dict[str, Any] | None = None
        self._out: list[tuple[int, bytes]] = []
        self.pacer = Pacer(config, self.stats)
        self._last_hello = -1e18
        self._last_tick: float | None = None
        self._seq = 0
        self._stalled = False
        self._away_since: float | None = None
        self._away_gap = 0.0
        self._episodes_confirmed = 0
        self._final_frames = 0
        self._latest_hash: tuple[int, bytes] | None = None
        self._hash_sends = 0
        # Inputs sent per packet stay within the receiver's window (it takes up to ``_slack`` frames past what it
        # holds): after a long freeze the away inputs committed up to wall time go out over a few round trips.
        self._send_window = self._slack // 2
        self._hello_fields = Hello(seat, config.players, game.env_id, game.env_version, config.digest(), config.seed, 0)
        # Hot-path copies of fixed values (the config is frozen).
        self._local_count = self.input_counts[seat]
        self._away_value = self.defaults[seat] | AWAY_BIT
        self._input_delay = config.input_delay
        self._max_per_tick = config.max_frames_per_tick
        self._ff_threshold = config.fast_forward_threshold
        self._away_timeout_ms = config.away_timeout_ms
        self._hash_interval = config.hash_interval
        self._between_ms = config.between_episodes_ms
        #: ``(next episode, wall time the hold ends)`` while the live timeline holds between episodes.
        self._hold: tuple[int, float] | None = None
        self._held_episode = 0

    @classmethod
    def resume(
        cls, game: Game, config: SessionConfig, seat: int, point: ResumePoint, *, now_ms: float = 0.0,
        nonce: int | None = None, predictor: Predictor | None = None,
    ) -> Session:
        """A session rebuilt from a checkpoint (after a page reload), see :mod:`pyodide_runtime.session.resume`.

        Its log, queues and game are those of confirmed frame ``point.confirmed``. Tick it like any session: it
        asks its peers for its own inputs past the checkpoint (``Resume``), runs once they answered (``Resumed``)
        and catches up to them. Raises :class:`~pyodide_runtime.session.resume.ResumeError` when the checkpoint
        is not this session's or replaying it does not reproduce its hashes.
        """
        session = cls(game, config, seat, predictor=predictor)
        replay(session, point, now_ms, nonce)
        return session

    # -- public API -------------------------------------------------------------------------------------------
    @property
    def frame(self) -> int:
        """Number of frames simulated on the current timeline (the next frame to simulate)."""
        return self.timeline.frame

    @property
    def confirmed_frames(self) -> int:
        """Number of confirmed frames (all of them in :attr:`log`)."""
        return self.log.confirmed_count

    def holding(self, now_ms: float) -> tuple[int, float] | None:
        """``(next episode, remaining ms)`` while the live timeline holds between episodes, else ``None``."""
        hold = self._hold
        if hold is None or self.state is not _RUNNING or now_ms >= hold[1]:
            return None
        return hold[0], hold[1] - now_ms

    @property
    def ended(self) -> bool:
        return self.state is _ENDED

    @property
    def started(self) -> bool:
        return self.state is not _HANDSHAKE

    @property
    def resuming(self) -> bool:
        """Built by :meth:`resume` and still waiting for its peers' echoes (not started yet)."""
        return self._resume is not None

    @property
    def outcome(self) -> Outcome | None:
        """``complete``, ``partial`` or ``error`` once ended (equal to those strings), else ``None``."""
        return self.end.outcome if self.end is not None else None

    @property
    def end_reason(self) -> str | None:
        """Why the session ended, in words (:attr:`End.message`), or ``None``."""
        return self.end.message if self.end is not None else None

    def render(self) -> Any:
        """The game's render output for the current frame; ``None`` once the env raised (a raising ``render``
        ends the session like any env error, see :meth:`fail`)."""
        if self.error is not None:
            return None
        try:
            return self.game.render()
        except Exception as exc:  # noqa: BLE001 - the env's failure ends the session, never the page
            self.fail(self._last_tick or 0.0, exc)
            return None

    @property
    def input_delay(self) -> int:
        """The current input delay: the input sampled at frame ``f`` is executed at ``f + input_delay``."""
        return self._input_delay

    def note_frame_cost(self, ms: float) -> None:
        """The host's measure of what one simulated frame costs: the median wall time (ms) of one ``step``
        with its snapshot, in the page that runs this session. Call it whenever the measure is updated (a few
        times a second is plenty); until it is called the cost counts as 0. With ``adaptive_delay`` a cost that
        would not let the expected rollbacks be resimulated within one frame raises the input delay (see
        :mod:`pyodide_runtime.sync.input_delay`) and is recorded in ``stats["frame_cost_ms"]``; without it the
        call changes nothing. Raises ``ValueError`` for a negative or non-finite value.
        """
        ms = float(ms)
        if not 0.0 <= ms < float("inf"):
            raise ValueError(f"note_frame_cost: ms must be a finite, non-negative number of milliseconds, not {ms!r}")
        if self._delay is not None:
            self._delay.note_frame_cost(ms)
            self.stats["frame_cost_ms"] = ms

    def fail(self, now_ms: float, exc: BaseException, where: str | None = None) -> bool:
        """The env raised ``exc`` outside :meth:`tick` (e.g. while the page drew its output): end with outcome
        ``error``, exactly as an exception inside a tick does. ``where`` overrides what the traceback says.

        Returns whether it ended the session; an ended session only records the first error in :attr:`error`.
        Like :meth:`receive`, its events and packets come out of the next tick.
        """
        ended = self.state is _ENDED
        self._fail(now_ms, exc, where)
        return not ended

    def tick(
        self, now_ms: float, local_input: int, incoming: Any = (), away: bool = False
    ) -> TickResult:
        """Advance the session to ``now_ms``; see the module docstring.

        ``incoming`` holds packets as ``bytes`` or ``(from_seat, bytes)`` pairs.
        """
        if not 0 <= local_input < self._local_count:
            raise ValueError(f"local input {local_input} out of range(0, {self._local_count})")
        if incoming:
            receive = self.receive
            for item in incoming:
                if isinstance(item, tuple):
                    receive(now_ms, item[1], item[0])
                else:
                    receive(now_ms, item)
        try:
            state = self.state
            if state is _HANDSHAKE:
                self._handshake(now_ms)
                state = self.state
            if state is _RUNNING or state is _DRAINING:
                self._run(now_ms, local_input, away)
        except Exception as exc:  # noqa: BLE001 - the env's failure ends the session, never the page
            self._fail(now_ms, exc)
        self._last_tick = now_ms
        tl = self.timeline
        self.stats["frames_simulated"] = tl.simulated
        out, events = self._out, self._events[:]
        self._out = []
        self._events.clear()  # the peers hold this list
        return TickResult(tl.frame, out, events)

    def receive(self, now_ms: float, data: bytes, from_seat: int | None = None) -> None:
        """Take one packet from a peer. Bad packets are rejected and counted, never raised."""
        stats = self.stats
        stats["packets_received"] += 1
        stats["bytes_received"] += len(data)
        if self.state is _ENDED:
            return
        if type(data) is not bytes:
            try:
                data = bytes(data)
            except Exception:  # noqa: BLE001 - whatever a peer sends must not escape the session
                self._reject("malformed")
                return
        try:
            fields = decode_inputs_fields(data)
        except DecodeError as exc:
            self._reject(exc.kind)
            return
        if fields is not None:  # the steady-state packet, without a message object
            seat = data[3]
            peer = self.peers.get(seat)
            if peer is None or (from_seat is not None and from_seat != seat):
                self._reject("wrong_seat")
            else:
                peer.on_inputs(now_ms, *fields)
            return
        try:
            msg = decode(data)
        except DecodeError as exc:
            if exc.kind == "version" and self.state is _HANDSHAKE and self._hello_packet(data):
                self._fail_handshake(now_ms, data[3], f"protocol version {exc.version} differs from ours")
            self._reject(exc.kind)
            return
        except Exception:  # noqa: BLE001 - whatever a peer sends must not escape the session
            self._reject("malformed")
            return
        seat = msg.seat
        if seat == self.seat or seat not in self.peers or (from_seat is not None and from_seat != seat):
            self._reject("wrong_seat")
            return
        peer = self.peers[seat]
        if isinstance(msg, Inputs):
            peer.on_inputs(now_ms, msg.seq, msg.frame, msg.ack, msg.advantage, msg.start, msg.values,
                           msg.hash_frame, msg.state_hash)
        elif isinstance(msg, Hello):
            problem = peer.on_hello(now_ms, msg, self._hello_fields, self.state is _HANDSHAKE)
            if problem is not None:
                if self.state is _HANDSHAKE:
                    self._fail_handshake(now_ms, seat, problem)
                else:
                    self._reject("unexpected")
        elif isinstance(msg, (Resume, Echo)):
            on_rejoin_message(self, peer, msg, now_ms)
        elif peer.on_goodbye(msg):
            if self.state is _HANDSHAKE:
                self._fail_handshake(now_ms, seat, f"peer left ({msg.reason.name.lower()})")
            elif self.state is _RUNNING:
                end = peer.goodbye_end(msg)
                if end is not None:
                    self._end(now_ms, end)

    def close(self, now_ms: float, reason: str = "participant left") -> list[tuple[int, bytes]]:
        """End the session from this side (partial unless already complete); returns goodbye packets to send."""
        if self.state is not _ENDED:
            self._end(now_ms, End(Outcome.PARTIAL, EndCause.CLOSED, {"reason": reason}))
        out, self._out = self._out, []
        return out

    def peer_left(self, seat: int, now_ms: float, reason: str = "left the study page") -> bool:
        """Seat ``seat`` is gone for good (the study server saw it leave): end as its ``Goodbye(LEFT)`` would.

        Running, the session ends partial with ``end_reason`` ``f"seat {seat} {reason}"``, every confirmed frame
        kept and the unconfirmed tail flagged; once every episode is confirmed it ends complete without waiting
        for that seat's acks. Returns False, changing nothing, for an unknown seat, our own seat, a seat already
        gone, or an ended session. Like :meth:`receive`, its events and packets come out of the next tick.
        """
        peer = self.peers.get(seat) if type(seat) is int else None
        if peer is None or peer.gone or self.state is _ENDED:
            return False
        peer.gone = True
        peer.goodbye = GoodbyeReason.LEFT
        if self.state is _HANDSHAKE:
            self._end(now_ms, End(Outcome.PARTIAL, EndCause.PEER_GONE_BEFORE_START, {"seat": seat, "reason": reason}))
        elif self.state is _RUNNING:
            self._end(now_ms, End(Outcome.PARTIAL, EndCause.PEER_GONE, {"seat": seat, "reason": reason}))
        return True

    def peer_reconnecting(self, seat: int, now_ms: float) -> bool:
        """The study server says seat ``seat`` disconnected and may come back (its page reloads): allow its
        silence for ``config.rejoin_grace_ms`` (if longer than the usual limit) until its ``Resume`` arrives.

        Returns False, changing nothing, when ``rejoin_grace_ms`` is 0, for an unknown seat, our own seat, a seat
        already gone, or a session not running. Like :meth:`receive`, its event comes out of the next tick.
        """
        peer = self.peers.get(seat) if type(seat) is int else None
        if (peer is None or peer.gone or self.config.rejoin_grace_ms <= 0
                or (self.state is not _RUNNING and self.state is not _DRAINING)):
            return False
        if peer.reconnecting is None:
            peer.reconnecting = now_ms
        if self._delay is not None:
            self._delay.interrupt(now_ms)
        self._events.append(PeerReconnecting(seat, self.timeline.frame))
        return True

    def records(self) -> list[FrameRecord]:
        """Confirmed frame records, in frame order."""
        return self.log.confirmed

    def unconfirmed_tail(self) -> list[FrameRecord]:
        """Records never confirmed (kept apart and flagged when the session ended partial)."""
        return self.log.unconfirmed_tail()

    # -- handshake --------------------------------------------------------------------------------------------
    @staticmethod
    def _hello_packet(data: bytes) -> bool:
        try:
            return peek_header(data)[1] == T_HELLO and len(data) > 3
        except DecodeError:
            return False

    def _hello(self) -> bytes:
        heard = 1 << self.seat
        for s, p in self.peers.items():
            if p.heard_hello:
                heard |= 1 << s
        return encode(replace(self._hello_fields, heard=heard))

    def _handshake(self, now_ms: float) -> None:
        if self._resume is not None:
            self._resume.tick(self, now_ms)
            return
        if all(p.ready for p in self.peers.values()):
            self._start(now_ms)
        if now_ms - self._last_hello >= self.config.handshake_resend_ms or self.state is not _HANDSHAKE:
            self._last_hello = now_ms
            hello = self._hello()
            for s in self.peers:
                self._send(s, hello)

    def _fail_handshake(self, now_ms: float, seat: int, reason: str) -> None:
        self._events.append(HandshakeFailed(seat, reason))
        self._end(now_ms, End(Outcome.PARTIAL, EndCause.HANDSHAKE_FAILED, {"seat": seat, "reason": reason}))

    def _start(self, now_ms: float) -> None:
        self.state = _RUNNING
        self.pacer.epoch = now_ms
        for p in self.peers.values():
            p.last_heard = now_ms
        self.timeline.start(now_ms)
        self._events.append(Started(now_ms))
        self._promote(now_ms)

    # -- running ----------------------------------------------------------------------------------------------
    def _run(self, now_ms: float, local_input: int, away: bool) -> None:
        if self._delay is not None and (away or (
                self._last_tick is not None and now_ms - self._last_tick > 4 * self.pacer.frame_ms)):
            self._delay.interrupt(now_ms)  # acks of what we sent before a pause measure the pause
        if (self.peers and self._check_peers(now_ms)) or self._check_away(now_ms, away):
            return
        tl = self.timeline
        if tl.pending_rollback is not None:
            rb = tl.apply_rollback(now_ms)
            if rb is not None:
                self._events.append(RollbackEvent(*rb))
                if self._between_ms:
                    self._check_hold(now_ms)
        if self.state is _RUNNING:
            self._advance(now_ms, local_input, away)
        self._promote(now_ms)
        if self.state is _DRAINING and all(
            p.gone or p.acked >= self._final_frames for p in self.peers.values()
        ):
            self._end(now_ms, End(Outcome.COMPLETE, EndCause.ALL_CONFIRMED))
            return
        if self.peers:
            self._send_inputs(now_ms)

    def _check_peers(self, now_ms: float) -> bool:
        paused = now_ms - self._last_tick if self._last_tick is not None else 0.0
        draining = self.state is _DRAINING
        for p in self.peers.values():
            if p.gone:
                continue
            end = p.check_silence(now_ms, paused, draining, self.config)
            if end is not None:
                self._end(now_ms, end)
                return True
        return False

    def _check_away(self, now_ms: float, away: bool) -> bool:
        gap = now_ms - self._last_tick if self._last_tick is not None else 0.0
        if not away and self._away_since is None:
            # The common case, present and not coming back from away: only the gap since the last tick matters.
            if gap > self._away_timeout_ms and self.state is _RUNNING:
                self._end(now_ms, End(Outcome.PARTIAL, EndCause.AWAY_TIMEOUT, {"limit_ms": self._away_timeout_ms}))
                return True
            self._away_gap = 0.0
            return False
        cfg = self.config
        if away and self._away_since is None:
            self._away_since = now_ms
        too_long = gap > cfg.away_timeout_ms or (
            self._away_since is not None and now_ms - self._away_since > cfg.away_timeout_ms
        )
        if not away:
            self._away_since = None
        if too_long and self.state is _RUNNING:
            self._end(now_ms, End(Outcome.PARTIAL, EndCause.AWAY_TIMEOUT, {"limit_ms": cfg.away_timeout_ms}))
            return True
        if away and self.state is _RUNNING:
            # Commit the away default far enough ahead to cover the gap until our next tick (hidden pages may
            # tick at 1 Hz), but no further: inputs committed here are what the participant gets on return.
            self._away_gap = max(self._away_gap, gap)
            lease = min(cfg.away_lease_frames, int(2 * self._away_gap / self.pacer.frame_ms) + 2)
            horizon = max(self.timeline.frame, self.pacer.target(now_ms)) + self._input_delay + lease
            self.queues.fill(self.seat, horizon, self._away_value)
        else:
            self._away_gap = 0.0
        return False

    def _check_hold(self, now_ms: float) -> None:
        """Start the between-episode hold when the live timeline entered an episode it has not held for (not past
        the last one). One hold per episode: a rollback that moves a speculative episode end (by at most
        ``max_prediction`` frames) neither cancels nor repeats it, so the participant sees one countdown."""
        tl = self.timeline
        episode = tl.episode
        if episode > self._held_episode and episode < self.config.episodes:
            self._held_episode = episode
            self._hold = (episode, now_ms + self._between_ms)
            self.stats["between_episode_holds"] += 1
            self.pacer.waited(now_ms, tl.frame)

    def _advance(self, now_ms: float, local_input: int, away: bool) -> None:
        tl = self.timeline
        hold = self._hold
        if hold is not None:
            if now_ms < hold[1]:
                # Between episodes: no frames and no input committed, no catch-up debt; packets still flow.
                self.pacer.waited(now_ms, tl.frame)
                return
            self._hold = None
        due = self.pacer.due(now_ms, tl.frame)
        if due <= 0:
            return
        if self._delay is not None:
            new = self._delay.update()
            if new is not None:
                self._set_delay(new)
        fast_forward = due >= self._ff_threshold
        value = self._away_value if (away or fast_forward) else local_input
        start = tl.frame
        n = due if due < self._max_per_tick else self._max_per_tick
        d, seat, fill = self._input_delay, self.seat, self.queues.fill
        blocked = False
        episode = tl.episode if self._between_ms else -1
        for _ in range(n):
            fill(seat, tl.frame + d, value)
            if not tl.can_advance():
                blocked = True
                break
            tl.advance(now_ms)
            if episode >= 0 and tl.episode != episode:
                self._check_hold(now_ms)
                if self._hold is not None:
                    break
                episode = tl.episode
        if blocked:
            cfg = self.config
            self.pacer.waited(now_ms, tl.frame)
            if not tl.finished:
                self.stats["stall_ticks"] += 1
                if not self._stalled:
                    self._stalled = True
                    self.stats["stalls"] += 1
                    cc = self.queues.confirmed_count()
                    waiting = tuple(s for s in range(cfg.players) if self.queues.count(s) <= cc)
                    self._events.append(Stalled(tl.frame, cc, waiting))
        else:
            self._stalled = False
        if fast_forward and tl.frame > start:
            self.stats["fast_forward_frames"] += tl.frame - start
            self._events.append(FastForward(start, tl.frame))
        self.pacer.sync(tl.frame, self.peers.values(), away or fast_forward)

    def _set_delay(self, delay: int) -> None:
        """The adaptive delay changed (by one frame). Inputs stay per frame and final: a higher delay commits the
        current input for the skipped frame too (``fill`` fills the gap), a lower one drops the inputs sampled for
        frames already committed (``fill`` to a known frame is a no-op)."""
        self._input_delay = delay
        frame = self.timeline.frame
        rtt = self._delay.rtt_ms if self._delay is not None else None
        rtt = round(rtt, 1) if rtt is not None else None
        self.stats["input_delay"] = delay
        self.stats["input_delay_changes"] += 1
        self._delay_changes.append({"frame": frame, "delay": delay, "rtt_ms": rtt})
        self._events.append(InputDelayChanged(frame, delay, rtt))

    def _promote(self, now_ms: float) -> None:
        records = self.timeline.promote(now_ms)
        if not records:
            return
        interval = self._hash_interval
        for rec in records:
            last = False
            if rec.episode_over:
                self._episodes_confirmed += 1
                self._events.append(EpisodeEnded(rec.episode, rec.global_frame, rec.frame + 1))
                last = self._episodes_confirmed >= self.config.episodes
            if last or (rec.global_frame + 1) % interval == 0:
                self._hash_point(rec)
            if last:
                self.state = _DRAINING
                self._final_frames = rec.global_frame + 1

    def _hash_point(self, rec: FrameRecord) -> None:
        """A confirmed hash point: sent to the peers from now on, compared with what they sent."""
        self._latest_hash = (rec.global_frame, bytes.fromhex(rec.state_hash or "")[:8])
        self._hash_sends = 0
        for p in self.peers.values():
            p.hash_point(rec.global_frame)

    # -- sending ----------------------------------------------------------------------------------------------
    def _send(self, seat: int, data: bytes) -> None:
        self._out.append((seat, data))
        self.stats["packets_sent"] += 1
        self.stats["bytes_sent"] += len(data)

    def _send_inputs(self, now_ms: float) -> None:
        hash_frame, h = -1, b""
        if self._latest_hash is not None and (self._hash_sends < 4 or self._seq % 8 == 0):
            hash_frame, h = self._latest_hash
            self._hash_sends += 1
        frame = self.timeline.frame
        if self._delay is not None:
            self._delay.sent(self.queues.count(self.seat), now_ms)
        hello = None
        for s, p in self.peers.items():
            if p.gone:
                continue
            if p.reply_hello:
                p.reply_hello = False
                hello = hello or self._hello()
                self._send(s, hello)
            self._seq += 1
            self._send(s, p.inputs_packet(self._seq, frame, self._send_window, hash_frame, h))

    # -- ending -----------------------------------------------------------------------------------------------
    def _fail(self, now_ms: float, exc: BaseException, where: str | None = None) -> None:
        """Our env raised: record it and end with outcome ``error``, without calling the game again."""
        error = self._record_error(exc, where)
        if self.state is not _ENDED:
            self._end(now_ms, End(Outcome.ERROR, EndCause.ENV_ERROR, {"reason": error["reason"]}))

    def _record_error(self, exc: BaseException, where: str | None = None) -> dict[str, Any]:
        if self.error is None:
            tl = self.timeline
            self.error = describe_error(exc, self.game, frame=tl.frame, episode=tl.episode,
                                        confirmed_frames=self.log.confirmed_count, where=where)
        return self.error

    def _end(self, now_ms: float, end: End) -> None:
        if self.state is _ENDED:
            return
        if self.state is not _HANDSHAKE and self.error is None:
            try:
                rb = self.timeline.apply_rollback(now_ms)  # the tail then holds the best-known inputs
            except Exception as exc:  # noqa: BLE001 - resimulating the tail raised: the env failed after all
                end = End(Outcome.ERROR, EndCause.ENV_ERROR, {"reason": self._record_error(exc)["reason"]})
            else:
                if rb is not None:
                    self._events.append(RollbackEvent(*rb))
        self.state = _ENDED
        self.end = end
        self.log.close()
        bye = encode(Goodbye(self.seat, _GOODBYE.get(end.cause, GoodbyeReason.LEFT), self._final_frames))
        for s, p in self.peers.items():
            if not p.gone:
                self._send(s, bye)
                self._send(s, bye)  # a second copy, in case one is lost
        self._events.append(SessionEnded(end.outcome, end.message, end.cause))

    def _reject(self, kind: str) -> None:
        self.stats["rejected"][kind] += 1

    def diagnostics(self) -> dict[str, Any]:
        """Stats plus state, for logs and the export's non-canonical metadata."""
        self.stats["frames_simulated"] = self.timeline.simulated
        end = self.end
        return {
            "seat": self.seat, "state": self.state.value,
            "outcome": end.outcome.value if end is not None else None,
            "end_reason": end.message if end is not None else None,
            "frame": self.timeline.frame, "confirmed_frames": self.log.confirmed_count,
            "unconfirmed_tail": len(self.log.unconfirmed_tail()), "desynced_frames": list(self.log.desynced_frames),
            "error": dict(self.error) if self.error is not None else None,
            **{k: (dict(v) if isinstance(v, dict) else v) for k, v in self.stats.items()},
            # with adaptive_delay: every change of the input delay, (frame, delay, rtt_ms), in order
            **({"input_delays": [dict(c) for c in self._delay_changes]} if self._delay is not None else {}),
        }
