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

Records
    ``session.log.confirmed`` holds the confirmed :class:`~pyodide_runtime.framelog.FrameRecord` objects (global
    frame order) and ``session.log.episode_starts`` the reset observations; ``session.unconfirmed_tail()`` the
    records that were never confirmed when a session ended partial. ``session.stats`` counts rollbacks,
    stalls, fast-forward frames, time-sync skips, traffic and rejected packets by kind.
"""

from __future__ import annotations

import os
import sys
import traceback
from dataclasses import dataclass
from typing import Any

from pyodide_runtime.config import SessionConfig
from pyodide_runtime.envs.base import Game
from pyodide_runtime.framelog import FrameLog, FrameRecord
from pyodide_runtime.protocol.codec import (
    T_HELLO, DecodeError, decode, decode_inputs_fields, encode, encode_inputs, peek_header,
)
from pyodide_runtime.protocol.messages import AWAY_BIT, Goodbye, GoodbyeReason, Hello, Inputs
from pyodide_runtime.sync.inputs import InputQueues
from pyodide_runtime.sync.prediction import Predictor, make_predictor
from pyodide_runtime.sync.time_sync import TimeSync
from pyodide_runtime.sync.timeline import SnapshotError, Timeline

__all__ = [
    "Session", "TickResult", "SnapshotError",
    "Started", "RollbackEvent", "EpisodeEnded", "DesyncDetected", "PeerAway", "PeerBack", "FastForward",
    "Stalled", "HandshakeFailed", "SessionEnded", "REJECT_KINDS", "describe_error",
]

#: Kinds of rejected peer packets, each counted in ``stats["rejected"]``.
REJECT_KINDS = (
    "malformed", "oversized", "version", "unknown_type", "wrong_seat", "out_of_window", "duplicate",
    "reordered", "conflict", "invalid_input", "unexpected",
)
_ACTION_MASK = AWAY_BIT - 1


# -- events ---------------------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Started:
    """The handshake completed; frame 0 starts now."""

    now_ms: float


@dataclass(frozen=True, slots=True)
class RollbackEvent:
    """Frames ``frame ..`` were resimulated (``depth`` of them) because ``seats`` were mispredicted."""

    frame: int
    depth: int
    seats: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class EpisodeEnded:
    """Episode ``episode`` ended, confirmed, at global frame ``last_frame`` after ``frames`` steps."""

    episode: int
    last_frame: int
    frames: int


@dataclass(frozen=True, slots=True)
class DesyncDetected:
    """Seat ``seat`` reported a different confirmed-state hash for global frame ``frame``."""

    frame: int
    seat: int
    local_hash: str
    remote_hash: str


@dataclass(frozen=True, slots=True)
class PeerAway:
    """Seat ``seat`` announced it is away from global frame ``frame`` on."""

    seat: int
    frame: int


@dataclass(frozen=True, slots=True)
class PeerBack:
    """Seat ``seat`` plays again from global frame ``frame`` on."""

    seat: int
    frame: int


@dataclass(frozen=True, slots=True)
class FastForward:
    """Frames ``start .. end-1`` were simulated in one catch-up tick."""

    start: int
    end: int


@dataclass(frozen=True, slots=True)
class Stalled:
    """The simulation reached the prediction window at ``frame`` and waits for ``seats``."""

    frame: int
    confirmed: int
    seats: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class HandshakeFailed:
    """Seat ``seat`` runs something incompatible."""

    seat: int
    reason: str


@dataclass(frozen=True, slots=True)
class SessionEnded:
    """The session is over: ``outcome`` is ``"complete"``, ``"partial"`` or ``"error"`` (our env raised)."""

    outcome: str
    reason: str


@dataclass(slots=True)
class TickResult:
    """What one tick produced: the frame to render, packets to send and events."""

    frame: int
    messages: list[tuple[int, bytes]]
    events: list[Any]


# -- env errors -----------------------------------------------------------------------------------------------
#: The game's methods the engine calls, as an error report names them.
_GAME_CALLS = frozenset(("reset", "step", "render", "get_state", "set_state"))


def _module_matcher(owners: list[Any]) -> Any:
    """A test for "this module name is the env's (or a bot's) code": its module, or a sibling in its package."""
    names = {getattr(o, "__module__", None) for o in owners} - {None}
    packages = tuple(n.rpartition(".")[0] + "." for n in names if "." in n)
    return lambda name: name in names or (bool(packages) and name.startswith(packages))


def _engine_or_stdlib(name: str) -> bool:
    if name.startswith("pyodide_runtime."):
        return not name.startswith(("pyodide_runtime.examples", "pyodide_runtime.examples"))
    return name.partition(".")[0] in sys.stdlib_module_names


def _where(path: str, line: int) -> str:
    try:
        rel = os.path.relpath(path)
    except ValueError:  # another drive (Windows)
        rel = path
    return f"{path if rel.startswith('..') else rel}:{line}"


def describe_error(
    exc: BaseException, game: Game | None, *, frame: int, episode: int = 0, confirmed_frames: int = 0,
    where: str | None = None,
) -> dict[str, Any]:
    """What an exception raised by ``game`` (or around it) was, as plain JSON-able data.

    ``where`` is the game call that raised (``reset``, ``step``, ``bot policy``, ``render``, ``get_state``,
    ``set_state``; ``session`` when no game call is on the traceback), read from the traceback unless given.
    ``location`` is ``file:line`` of the innermost frame in the env's (or a bot's) own code, else the innermost
    frame outside the engine and the standard library, else the innermost frame. ``reason`` is the one-line
    summary used as the session's ``end_reason``.
    """
    entries = list(traceback.walk_tb(exc.__traceback__))
    start, call = len(entries), None
    for i, (f, _) in enumerate(entries):
        if game is not None and f.f_code.co_name in _GAME_CALLS and f.f_locals.get("self") is game:
            start, call = i, f.f_code.co_name
            break
    inner = entries[start:]
    if call == "step" and any(f.f_code.co_name == "_bot_action" and f.f_locals.get("self") is game
                              for f, _ in inner):
        call = "bot policy"
    where = where or call or "session"
    owners: list[Any] = []
    if game is not None:
        env = getattr(game, "env", None)
        owners.append(type(getattr(env, "unwrapped", env)) if env is not None else type(game))
        for bot in dict(getattr(game, "bots", None) or {}).values():
            owners.append(getattr(bot, "function", None) or type(bot))
    own = _module_matcher(owners)
    location = None
    for test in (own, lambda name: not _engine_or_stdlib(name), lambda name: True):
        hits = [(f, n) for f, n in inner if test(f.f_globals.get("__name__", ""))]
        if hits:
            f, n = hits[-1]
            location = _where(f.f_code.co_filename, n)
            break
    if location is None and entries:
        f, n = entries[-1]
        location = _where(f.f_code.co_filename, n)
    kind = type(exc).__name__
    reason = (f"the session raised {kind} at frame {frame}" if where == "session"
              else f"the env raised {kind} in {where} at frame {frame}")
    return {
        "kind": kind, "message": str(exc), "where": where, "frame": frame, "episode": episode,
        "resimulating": any(f.f_code.co_name == "apply_rollback" for f, _ in entries),
        "confirmed_frames": confirmed_frames, "location": location, "reason": reason,
        "traceback": "".join(traceback.format_exception(type(exc), exc, exc.__traceback__)),
    }


# -- per-peer bookkeeping -------------------------------------------------------------------------------------
class _Peer:
    __slots__ = (
        "seat", "heard_hello", "heard_me", "started", "last_heard", "acked", "seq_max", "seq_bits", "frame",
        "sync", "away", "away_since", "gone", "goodbye", "final_frames", "remote_hashes", "hash_checked",
        "reply_hello",
    )

    def __init__(self, seat: int) -> None:
        self.seat = seat
        self.heard_hello = False
        self.heard_me = False
        self.started = False
        self.last_heard = 0.0
        self.acked = 0
        self.seq_max = -1
        self.seq_bits = 0
        self.frame = 0
        self.sync = TimeSync()
        self.away = False
        self.away_since = 0.0
        self.gone = False
        self.goodbye: GoodbyeReason | None = None
        self.final_frames = 0
        self.remote_hashes: dict[int, bytes] = {}
        self.hash_checked = -1
        self.reply_hello = False


_HANDSHAKE, _RUNNING, _DRAINING, _ENDED = "handshake", "running", "draining", "ended"


class Session:
    """One peer's rollback session. See the module docstring for the call protocol."""

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
            "desyncs": 0, "rejected": dict.fromkeys(REJECT_KINDS, 0),
        }
        self.log = FrameLog(config.frame_hash, config.hash_interval)
        self.queues = InputQueues(self.defaults, config.input_delay)
        self.timeline = Timeline(
            game, config, self.queues, self.log,
            make_predictor(predictor if predictor is not None else config.prediction, self.defaults),
            self.stats,
        )
        self.timeline.check_snapshots()
        self.peers = {s: _Peer(s) for s in range(config.players) if s != seat}
        self.state = _HANDSHAKE
        self.outcome: str | None = None
        self.end_reason: str | None = None
        #: What our env raised (see :func:`describe_error`), or ``None``.
        self.error: dict[str, Any] | None = None
        self._events: list[Any] = []
        self._out: list[tuple[int, bytes]] = []
        self._epoch = 0.0
        self._frame_ms = config.frame_ms
        self._last_hello = -1e18
        self._last_tick: float | None = None
        self._seq = 0
        self._stalled = False
        self._wait_frames = 0
        self._skip_next = False
        self._next_sync_frame = config.fps
        self._away_since: float | None = None
        self._away_gap = 0.0
        self._episodes_confirmed = 0
        self._final_frames = 0
        self._latest_hash: tuple[int, bytes] | None = None
        self._hash_sends = 0
        self._slack = 4 * (config.input_delay + config.max_prediction + config.away_lease_frames + config.fps)
        # Inputs sent per packet stay within the receiver's window (it takes up to ``_slack`` frames past what it
        # holds): after a long freeze the away inputs committed up to wall time go out over a few round trips.
        self._send_window = self._slack // 2
        self._digest = config.digest()
        # Hot-path copies of fixed values (the config is frozen).
        self._local_count = self.input_counts[seat]
        self._away_value = self.defaults[seat] | AWAY_BIT
        self._input_delay = config.input_delay
        self._max_per_tick = config.max_frames_per_tick
        self._ff_threshold = config.fast_forward_threshold
        self._away_timeout_ms = config.away_timeout_ms
        self._hash_interval = config.hash_interval

    # -- public API -------------------------------------------------------------------------------------------
    @property
    def frame(self) -> int:
        """Number of frames simulated on the current timeline (the next frame to simulate)."""
        return self.timeline.frame

    @property
    def confirmed_frames(self) -> int:
        """Number of confirmed frames (all of them in :attr:`log`)."""
        return self.log.confirmed_count

    @property
    def ended(self) -> bool:
        return self.state == _ENDED

    @property
    def started(self) -> bool:
        return self.state != _HANDSHAKE

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

    def fail(self, now_ms: float, exc: BaseException, where: str | None = None) -> bool:
        """The env raised ``exc`` outside :meth:`tick` (e.g. while the page drew its output): end with outcome
        ``error``, exactly as an exception inside a tick does. ``where`` overrides what the traceback says.

        Returns whether it ended the session; an ended session only records the first error in :attr:`error`.
        Like :meth:`receive`, its events and packets come out of the next tick.
        """
        ended = self.state == _ENDED
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
            if state == _HANDSHAKE:
                self._handshake(now_ms)
                state = self.state
            if state == _RUNNING or state == _DRAINING:
                self._run(now_ms, local_input, away)
        except Exception as exc:  # noqa: BLE001 - the env's failure ends the session, never the page
            self._fail(now_ms, exc)
        self._last_tick = now_ms
        tl = self.timeline
        self.stats["frames_simulated"] = tl.simulated
        out, events = self._out, self._events
        self._out, self._events = [], []
        return TickResult(tl.frame, out, events)

    def receive(self, now_ms: float, data: bytes, from_seat: int | None = None) -> None:
        """Take one packet from a peer. Bad packets are rejected and counted, never raised."""
        stats = self.stats
        stats["packets_received"] += 1
        stats["bytes_received"] += len(data)
        if self.state == _ENDED:
            return
        if type(data) is not bytes:
            try:
                data = bytes(data)
            except Exception:  # noqa: BLE001 - whatever a peer sends must not escape the session
                self._reject("malformed")
                return
        fields = decode_inputs_fields(data)
        if fields is not None:  # the steady-state packet, without a message object
            seat = data[3]
            peer = self.peers.get(seat)
            if peer is None or (from_seat is not None and from_seat != seat):
                self._reject("wrong_seat")
            else:
                self._on_inputs(now_ms, peer, *fields)
            return
        try:
            msg = decode(data)
        except DecodeError as exc:
            if exc.kind == "version" and self.state == _HANDSHAKE and self._hello_packet(data):
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
            self._on_inputs(now_ms, peer, msg.seq, msg.frame, msg.ack, msg.advantage, msg.start, msg.values,
                            msg.hash_frame, msg.state_hash)
        elif isinstance(msg, Hello):
            self._on_hello(now_ms, peer, msg)
        else:
            self._on_goodbye(now_ms, peer, msg)

    def close(self, now_ms: float, reason: str = "participant left") -> list[tuple[int, bytes]]:
        """End the session from this side (partial unless already complete); returns goodbye packets to send."""
        if self.state != _ENDED:
            self._end(now_ms, "partial", reason, GoodbyeReason.LEFT)
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
        if peer is None or peer.gone or self.state == _ENDED:
            return False
        peer.gone = True
        peer.goodbye = GoodbyeReason.LEFT
        if self.state == _HANDSHAKE:
            self._end(now_ms, "partial", f"seat {seat} {reason} before the session started", GoodbyeReason.LEFT)
        elif self.state == _RUNNING:
            self._end(now_ms, "partial", f"seat {seat} {reason}", GoodbyeReason.LEFT)
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
        return encode(Hello(
            self.seat, self.config.players, self.game.env_id, self.game.env_version, self._digest,
            self.config.seed, heard,
        ))

    def _handshake(self, now_ms: float) -> None:
        if all(p.heard_hello and (p.heard_me or p.started) for p in self.peers.values()):
            self._start(now_ms)
        if now_ms - self._last_hello >= self.config.handshake_resend_ms or self.state != _HANDSHAKE:
            self._last_hello = now_ms
            hello = self._hello()
            for s in self.peers:
                self._send(s, hello)

    def _on_hello(self, now_ms: float, peer: _Peer, msg: Hello) -> None:
        cfg = self.config
        problems = []
        if msg.players != cfg.players:
            problems.append(f"players: peer {msg.players}, ours {cfg.players}")
        if msg.env_id != self.game.env_id or msg.env_version != self.game.env_version:
            problems.append(
                f"env: peer {msg.env_id}@{msg.env_version}, ours {self.game.env_id}@{self.game.env_version}"
            )
        if msg.seed != cfg.seed:
            problems.append(f"seed: peer {msg.seed}, ours {cfg.seed}")
        if msg.config_digest != self._digest:
            problems.append("config digest differs")
        if problems:
            if self.state == _HANDSHAKE:
                self._fail_handshake(now_ms, peer.seat, "; ".join(problems))
            else:
                self._reject("unexpected")
            return
        if peer.started and peer.heard_hello and msg.heard & (1 << self.seat):
            self._reject("duplicate")  # a stale or replayed hello: the peer already sends inputs
            return
        peer.heard_hello = True
        peer.heard_me = peer.heard_me or bool(msg.heard & (1 << self.seat))
        peer.last_heard = now_ms
        if self.state != _HANDSHAKE and not msg.heard & (1 << self.seat):
            peer.reply_hello = True

    def _fail_handshake(self, now_ms: float, seat: int, reason: str) -> None:
        self._events.append(HandshakeFailed(seat, reason))
        self._end(now_ms, "partial", f"handshake with seat {seat} failed: {reason}", GoodbyeReason.HANDSHAKE_FAILED)

    def _start(self, now_ms: float) -> None:
        self.state = _RUNNING
        self._epoch = now_ms
        for p in self.peers.values():
            p.last_heard = now_ms
        self.timeline.start(now_ms)
        self._events.append(Started(now_ms))
        self._promote(now_ms)

    # -- running ----------------------------------------------------------------------------------------------
    def _run(self, now_ms: float, local_input: int, away: bool) -> None:
        if (self.peers and self._check_peers(now_ms)) or self._check_away(now_ms, away):
            return
        tl = self.timeline
        if tl.pending_rollback is not None:
            rb = tl.apply_rollback(now_ms)
            if rb is not None:
                self._events.append(RollbackEvent(*rb))
        if self.state == _RUNNING:
            self._advance(now_ms, local_input, away)
        self._promote(now_ms)
        if self.state == _DRAINING and all(
            p.gone or p.acked >= self._final_frames for p in self.peers.values()
        ):
            self._end(now_ms, "complete", "all episodes confirmed", GoodbyeReason.COMPLETE)
            return
        if self.peers:
            self._send_inputs()

    def _check_peers(self, now_ms: float) -> bool:
        cfg = self.config
        paused = now_ms - self._last_tick if self._last_tick is not None else 0.0
        for p in self.peers.values():
            if p.gone:
                continue
            if paused > cfg.disconnect_timeout_ms / 2:
                # We did not run (a frozen tab): what the peer sent meanwhile is still on its way to us, and may
                # reach us only after this tick. Our own pause is not the peer's silence.
                p.last_heard = min(now_ms, p.last_heard + paused)
            if self.state == _DRAINING:
                if now_ms - p.last_heard > cfg.disconnect_timeout_ms:
                    p.gone = True  # our data is complete; its goodbye was lost or it left: stop waiting for acks
                continue
            limit = cfg.away_silence_timeout_ms if p.away else cfg.disconnect_timeout_ms
            if now_ms - p.last_heard > limit:
                self._end(now_ms, "partial", f"seat {p.seat} disconnected (silent for {limit} ms)",
                          GoodbyeReason.LEFT)
                return True
            if p.away and now_ms - p.away_since > cfg.away_timeout_ms:
                self._end(now_ms, "partial", f"seat {p.seat} away longer than {cfg.away_timeout_ms} ms",
                          GoodbyeReason.AWAY_TIMEOUT)
                return True
        return False

    def _check_away(self, now_ms: float, away: bool) -> bool:
        gap = now_ms - self._last_tick if self._last_tick is not None else 0.0
        if not away and self._away_since is None:
            # The common case, present and not coming back from away: only the gap since the last tick matters.
            if gap > self._away_timeout_ms and self.state == _RUNNING:
                self._end(now_ms, "partial", f"away longer than {self._away_timeout_ms} ms",
                          GoodbyeReason.AWAY_TIMEOUT)
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
        if too_long and self.state == _RUNNING:
            self._end(now_ms, "partial", f"away longer than {cfg.away_timeout_ms} ms", GoodbyeReason.AWAY_TIMEOUT)
            return True
        if away and self.state == _RUNNING:
            # Commit the away default far enough ahead to cover the gap until our next tick (hidden pages may
            # tick at 1 Hz), but no further: inputs committed here are what the participant gets on return.
            self._away_gap = max(self._away_gap, gap)
            lease = min(cfg.away_lease_frames, int(2 * self._away_gap / self._frame_ms) + 2)
            horizon = max(self.timeline.frame, self._target(now_ms)) + cfg.input_delay + lease
            self._extend_local(horizon, self.defaults[self.seat] | AWAY_BIT)
        else:
            self._away_gap = 0.0
        return False

    def _target(self, now_ms: float) -> int:
        """Frames that should have been simulated by ``now_ms``."""
        return int((now_ms - self._epoch) / self._frame_ms) + 1

    def _extend_local(self, through: int, value: int) -> None:
        q = self.queues.queues[self.seat]
        while len(q) <= through:
            q.append(value)

    def _advance(self, now_ms: float, local_input: int, away: bool) -> None:
        tl = self.timeline
        due = int((now_ms - self._epoch) / self._frame_ms) + 1 - tl.frame  # self._target(now_ms) - tl.frame
        if due <= 0:
            return
        if self._wait_frames > 0:
            # Skip every other frame while time sync asks us to wait: a slowdown rather than a visible pause.
            self._skip_next = not self._skip_next
            if self._skip_next:
                self._wait_frames -= 1
                self._epoch += self._frame_ms
                self.stats["time_sync_skips"] += 1
                due -= 1
                if due <= 0:
                    return
        fast_forward = due >= self._ff_threshold
        value = self._away_value if (away or fast_forward) else local_input
        start = tl.frame
        n = due if due < self._max_per_tick else self._max_per_tick
        d = self._input_delay
        q = self.queues.queues[self.seat]
        blocked = False
        for _ in range(n):
            through = tl.frame + d  # self._extend_local(through, value)
            while len(q) <= through:
                q.append(value)
            if not tl.can_advance():
                blocked = True
                break
            tl.advance(now_ms)
        if blocked:
            cfg = self.config
            # Waiting (stall or end of the timeline) accrues no debt: wall time restarts from here.
            self._epoch = now_ms - (tl.frame - 1) * self._frame_ms
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
        if tl.frame >= self._next_sync_frame:
            self._next_sync_frame = tl.frame + self.config.fps
            self._time_sync(away or fast_forward)

    def _time_sync(self, locally_away: bool) -> None:
        if locally_away:
            return
        leads = [p.sync.lead() for p in self.peers.values() if not (p.gone or p.away)]
        lead = max(leads, default=0.0)
        if lead >= self.config.time_sync_threshold:
            # At most a few frames per second: a peer that is behind because it is catching up after a
            # freeze closes the gap itself within a second, and must not drag this one down meanwhile.
            self._wait_frames += min(int(lead), max(1, self.config.fps // 6))
            for p in self.peers.values():
                p.sync.reset()

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

    # -- hashes -----------------------------------------------------------------------------------------------
    def _hash_point(self, rec: FrameRecord) -> None:
        h = bytes.fromhex(rec.state_hash or "")[:8]
        self._latest_hash = (rec.global_frame, h)
        self._hash_sends = 0
        for p in self.peers.values():
            remote = p.remote_hashes.pop(rec.global_frame, None)
            if remote is not None:
                self._compare_hash(p, rec.global_frame, remote)

    def _on_remote_hash(self, peer: _Peer, frame: int, h: bytes) -> None:
        if frame <= peer.hash_checked:
            return
        if frame < self.log.confirmed_count:
            self._compare_hash(peer, frame, h)
        elif len(peer.remote_hashes) < 64 and frame < self.timeline.frame + self._slack:
            peer.remote_hashes[frame] = h

    def _compare_hash(self, peer: _Peer, frame: int, remote: bytes) -> None:
        peer.hash_checked = max(peer.hash_checked, frame)
        local = bytes.fromhex(self.log.hash_at(frame) or "")[:8]
        if local != remote:
            self.stats["desyncs"] += 1
            self.log.mark_desync(frame)
            self._events.append(DesyncDetected(frame, peer.seat, local.hex(), remote.hex()))

    # -- receiving inputs -------------------------------------------------------------------------------------
    def _on_inputs(
        self, now_ms: float, peer: _Peer, seq: int, frame: int, ack: int, advantage: int, start: int,
        values: tuple[int, ...], hash_frame: int, state_hash: bytes,
    ) -> None:
        if peer.gone:
            self._reject("unexpected")
            return
        if seq <= peer.seq_max:
            back = peer.seq_max - seq
            if back == 0 or (back < 64 and peer.seq_bits >> back & 1):
                self._reject("duplicate")
            else:
                self._reject("reordered")
            return
        seat = peer.seat
        queues = self.queues.queues
        q = queues[seat]
        known = len(q)
        end = start + len(values)
        tl = self.timeline
        horizon = (tl.frame if tl.frame > known else known) + self._slack
        if start > known or end > horizon or frame > horizon or ack > len(queues[self.seat]):
            self._reject("out_of_window")
            return
        count = self.input_counts[seat]
        if values and max(values) >= count:  # below count every value is a valid action, not flagged away
            default = self.defaults[seat]
            for v in set(values):
                action = v & _ACTION_MASK
                if action >= count or (v & AWAY_BIT and action != default):
                    self._reject("invalid_input")
                    return
        overlap = (known if known < end else end) - start  # values of frames already known must match them
        if overlap > 0 and tuple(q[start:start + overlap]) != values[:overlap]:
            self._reject("conflict")
            return
        # Accepted from here on.
        shift = seq - peer.seq_max
        peer.seq_bits = ((peer.seq_bits << shift) | 1) & 0xFFFFFFFFFFFFFFFF if shift < 64 else 1
        peer.seq_max = seq
        peer.last_heard = now_ms
        peer.started = True
        if ack > peer.acked:
            peer.acked = ack
        if end > known:
            q.extend(values[known - start :])
            tl.check_inputs(seat, known, end)
            if end - known != 1 or (q[known] >= AWAY_BIT) != peer.away:  # else the away flag did not change
                self._track_away(now_ms, peer, q, known, end)
        peer.frame = frame
        peer.sync.observe(tl.frame, frame, advantage)
        if hash_frame >= 0:
            self._on_remote_hash(peer, hash_frame, state_hash)

    def _track_away(self, now_ms: float, peer: _Peer, q: list[int], first: int, end: int) -> None:
        was = peer.away
        # Values are below 2 * AWAY_BIT (16 bits on the wire), so "flagged away" is "at least AWAY_BIT".
        if (min(q[first:end]) >= AWAY_BIT) if was else (max(q[first:end]) < AWAY_BIT):
            return  # no change of the away flag in this range
        for g in range(first, end):
            now_away = bool(q[g] & AWAY_BIT)
            if now_away != peer.away:
                peer.away = now_away
                if now_away:
                    peer.away_since = now_ms
                    self._events.append(PeerAway(peer.seat, g))
                else:
                    peer.sync.reset()  # measurements taken while it was away say nothing about now
                    self._events.append(PeerBack(peer.seat, g))

    def _on_goodbye(self, now_ms: float, peer: _Peer, msg: Goodbye) -> None:
        if peer.gone:
            self._reject("duplicate" if peer.goodbye is not None else "unexpected")
            return
        peer.gone = True
        peer.goodbye = msg.reason
        peer.final_frames = msg.final_frames
        if self.state == _HANDSHAKE:
            self._fail_handshake(now_ms, peer.seat, f"peer left ({msg.reason.name.lower()})")
        elif self.state == _RUNNING:
            done = msg.reason == GoodbyeReason.COMPLETE and self.queues.count(peer.seat) >= msg.final_frames > 0
            if msg.reason == GoodbyeReason.ERROR:
                self._end(now_ms, "partial", f"seat {peer.seat} stopped: its env raised an error", GoodbyeReason.LEFT)
            elif not done:
                self._end(now_ms, "partial", f"seat {peer.seat} left ({msg.reason.name.lower()})", GoodbyeReason.LEFT)

    # -- sending ----------------------------------------------------------------------------------------------
    def _send(self, seat: int, data: bytes) -> None:
        self._out.append((seat, data))
        self.stats["packets_sent"] += 1
        self.stats["bytes_sent"] += len(data)

    def _send_inputs(self) -> None:
        queues = self.queues.queues
        local = queues[self.seat]
        out, stats = self._out, self.stats
        hash_frame, h = -1, b""
        if self._latest_hash is not None and (self._hash_sends < 4 or self._seq % 8 == 0):
            hash_frame, h = self._latest_hash
            self._hash_sends += 1
        frame = self.timeline.frame
        hello = None
        for s, p in self.peers.items():
            if p.gone:
                continue
            if p.reply_hello:
                p.reply_hello = False
                hello = hello or self._hello()
                self._send(s, hello)
            self._seq += 1
            acked = p.acked
            # encode(Inputs(seat, seq, frame, ack, advantage, start, values, ...)), as many values as fit
            packet, _ = encode_inputs(
                self.seat, self._seq, frame, len(queues[s]), p.sync.advantage, acked,
                local[acked : acked + self._send_window], hash_frame, h,
            )
            out.append((s, packet))  # self._send(s, packet), inlined: one packet per peer per tick
            stats["packets_sent"] += 1
            stats["bytes_sent"] += len(packet)

    # -- ending -----------------------------------------------------------------------------------------------
    def _fail(self, now_ms: float, exc: BaseException, where: str | None = None) -> None:
        """Our env raised: record it and end with outcome ``error``, without calling the game again."""
        error = self._record_error(exc, where)
        if self.state != _ENDED:
            self._end(now_ms, "error", error["reason"], GoodbyeReason.ERROR)

    def _record_error(self, exc: BaseException, where: str | None = None) -> dict[str, Any]:
        if self.error is None:
            tl = self.timeline
            self.error = describe_error(exc, self.game, frame=tl.frame, episode=tl.episode,
                                        confirmed_frames=self.log.confirmed_count, where=where)
        return self.error

    def _end(self, now_ms: float, outcome: str, reason: str, why: GoodbyeReason) -> None:
        if self.state == _ENDED:
            return
        if self.state != _HANDSHAKE and self.error is None:
            try:
                rb = self.timeline.apply_rollback(now_ms)  # the tail then holds the best-known inputs
            except Exception as exc:  # noqa: BLE001 - resimulating the tail raised: the env failed after all
                outcome, reason, why = "error", self._record_error(exc)["reason"], GoodbyeReason.ERROR
            else:
                if rb is not None:
                    self._events.append(RollbackEvent(*rb))
        self.state = _ENDED
        self.outcome = outcome
        self.end_reason = reason
        self.log.close()
        bye = encode(Goodbye(self.seat, why, self._final_frames))
        for s, p in self.peers.items():
            if not p.gone:
                self._send(s, bye)
                self._send(s, bye)  # a second copy, in case one is lost
        self._events.append(SessionEnded(outcome, reason))

    def _reject(self, kind: str) -> None:
        self.stats["rejected"][kind] += 1

    def diagnostics(self) -> dict[str, Any]:
        """Stats plus state, for logs and the export's non-canonical metadata."""
        self.stats["frames_simulated"] = self.timeline.simulated
        return {
            "seat": self.seat, "state": self.state, "outcome": self.outcome, "end_reason": self.end_reason,
            "frame": self.timeline.frame, "confirmed_frames": self.log.confirmed_count,
            "unconfirmed_tail": len(self.log.unconfirmed_tail()), "desynced_frames": list(self.log.desynced_frames),
            "error": dict(self.error) if self.error is not None else None,
            **{k: (dict(v) if isinstance(v, dict) else v) for k, v in self.stats.items()},
        }
