"""The protocol with one remote seat: handshake, sequence window, acks, away tracking and hash exchange."""

from __future__ import annotations

from typing import Any

from pyodide_runtime.config import SessionConfig
from pyodide_runtime.framelog import FrameLog
from pyodide_runtime.protocol.codec import encode_inputs
from pyodide_runtime.protocol.messages import AWAY_BIT, Goodbye, GoodbyeReason, Hello
from pyodide_runtime.session.events import DesyncDetected, PeerAway, PeerBack
from pyodide_runtime.session.state import End, EndCause, Outcome
from pyodide_runtime.sync.input_delay import DelayController
from pyodide_runtime.sync.inputs import InputQueues
from pyodide_runtime.sync.time_sync import TimeSync
from pyodide_runtime.sync.timeline import Timeline

__all__ = ["PeerLink", "REJECT_KINDS", "hello_mismatch"]

#: Kinds of rejected peer packets, each counted in ``stats["rejected"]``.
REJECT_KINDS = (
    "malformed", "oversized", "version", "unknown_type", "wrong_seat", "out_of_window", "duplicate",
    "reordered", "conflict", "invalid_input", "unexpected",
)


def hello_mismatch(theirs: Hello, ours: Hello) -> str | None:
    """What makes a peer's hello incompatible with ours, in words; ``None`` when it is compatible."""
    problems = []
    if theirs.players != ours.players:
        problems.append(f"players: peer {theirs.players}, ours {ours.players}")
    if theirs.env_id != ours.env_id or theirs.env_version != ours.env_version:
        problems.append(f"env: peer {theirs.env_id}@{theirs.env_version}, ours {ours.env_id}@{ours.env_version}")
    if theirs.seed != ours.seed:
        problems.append(f"seed: peer {theirs.seed}, ours {ours.seed}")
    if theirs.config_digest != ours.config_digest:
        problems.append("config digest differs")
    return "; ".join(problems) or None


class PeerLink:
    """What this peer knows about one remote seat and what it does with that seat's packets.

    It shares the session's input queues, timeline, frame log, stats and event list; events it raises come out
    of the session's next tick.
    """

    __slots__ = (
        "seat", "local_seat", "heard_hello", "heard_me", "started", "reply_hello", "last_heard", "acked",
        "seq_max", "seq_bits", "sync", "away", "away_since", "gone", "goodbye", "remote_hashes", "hash_checked",
        "_queues", "_timeline", "_log", "_stats", "_events", "_slack", "reconnecting", "resume_nonce", "resume_seq",
        "_delay",
    )

    def __init__(
        self, seat: int, local_seat: int, *, queues: InputQueues, timeline: Timeline, log: FrameLog,
        stats: dict[str, Any], events: list[Any], slack: int, delay: DelayController | None = None,
    ) -> None:
        self.seat = seat
        self.local_seat = local_seat
        self.heard_hello = False  # its hello arrived
        self.heard_me = False  # its hello said it heard ours
        self.started = False  # its inputs arrived: it is running
        self.reply_hello = False  # send it our hello with the next inputs (it has not heard it)
        self.last_heard = 0.0
        self.acked = 0  # our inputs it holds
        self.seq_max = -1
        self.seq_bits = 0  # bit i: seq_max - i arrived
        self.sync = TimeSync()
        self.away = False
        self.away_since = 0.0
        self.gone = False
        self.goodbye: GoodbyeReason | None = None
        self.remote_hashes: dict[int, bytes] = {}  # its hashes of frames we have not confirmed yet
        self.hash_checked = -1
        self.reconnecting: float | None = None  # when the study server said it disconnected (it may rejoin)
        self.resume_nonce: int | None = None  # the nonce of its latest Resume we answered
        self.resume_seq = -1  # the sequence number floor we told it in our Echo
        self._queues = queues
        self._timeline = timeline
        self._log = log
        self._stats = stats
        self._events = events
        self._slack = slack
        self._delay = delay  # measures round trips from this seat's acks (adaptive input delay)

    def reject(self, kind: str) -> None:
        self._stats["rejected"][kind] += 1

    # -- handshake --------------------------------------------------------------------------------------------
    def on_hello(self, now_ms: float, msg: Hello, ours: Hello, handshaking: bool) -> str | None:
        """Take its hello; returns what makes it incompatible (the caller decides what that ends), else ``None``."""
        problem = hello_mismatch(msg, ours)
        if problem is not None:
            return problem
        heard_me = bool(msg.heard & (1 << self.local_seat))
        if self.started and self.heard_hello and heard_me:
            self.reject("duplicate")  # a stale or replayed hello: the peer already sends inputs
            return None
        self.heard_hello = True
        self.heard_me = self.heard_me or heard_me
        self.last_heard = now_ms
        if not handshaking and not heard_me:
            self.reply_hello = True
        return None

    @property
    def ready(self) -> bool:
        """The handshake with this seat is done: each side heard the other."""
        return self.heard_hello and (self.heard_me or self.started)

    # -- inputs -----------------------------------------------------------------------------------------------
    def on_inputs(
        self, now_ms: float, seq: int, frame: int, ack: int, advantage: int, start: int, values: tuple[int, ...],
        hash_frame: int, state_hash: bytes,
    ) -> None:
        """Take one input packet: new inputs go to the queues (and may schedule a rollback); bad ones are counted."""
        if self.gone:
            self.reject("unexpected")
            return
        if seq <= self.seq_max:
            back = self.seq_max - seq
            self.reject("duplicate" if back == 0 or (back < 64 and self.seq_bits >> back & 1) else "reordered")
            return
        seat, queues, tl = self.seat, self._queues, self._timeline
        known = queues.count(seat)
        horizon = (tl.frame if tl.frame > known else known) + self._slack
        if frame > horizon or ack > queues.count(self.local_seat):
            self.reject("out_of_window")
            return
        accepted = queues.accept(seat, start, values, horizon)
        if type(accepted) is str:
            self.reject(accepted)
            return
        shift = seq - self.seq_max
        self.seq_bits = ((self.seq_bits << shift) | 1) & 0xFFFFFFFFFFFFFFFF if shift < 64 else 1
        self.seq_max = seq
        self.last_heard = now_ms
        self.started = True
        first, end = accepted
        was_away = self.away
        if end > first:
            tl.check_inputs(seat, first, end)
            new = values[first - start:]
            if len(new) != 1 or (new[0] >= AWAY_BIT) != self.away:  # else the away flag did not change
                self._track_away(now_ms, first, new)
        if ack > self.acked:
            self.acked = ack
            delay = self._delay
            if delay is not None:
                if was_away or self.away:
                    delay.interrupt(now_ms)  # an away page acks when it ticks, not when our inputs arrive
                else:
                    delay.acked(seat, ack, now_ms)
        self.sync.observe(tl.frame, frame, advantage)
        if hash_frame >= 0:
            self.on_remote_hash(hash_frame, state_hash)

    def _track_away(self, now_ms: float, first: int, new: tuple[int, ...]) -> None:
        # Values are below 2 * AWAY_BIT (16 bits on the wire), so "flagged away" is "at least AWAY_BIT".
        if (min(new) >= AWAY_BIT) if self.away else (max(new) < AWAY_BIT):
            return  # no change of the away flag in this range
        for g, v in enumerate(new, first):
            now_away = bool(v & AWAY_BIT)
            if now_away != self.away:
                self.away = now_away
                if now_away:
                    self.away_since = now_ms
                    self._events.append(PeerAway(self.seat, g))
                else:
                    self.sync.reset()  # measurements taken while it was away say nothing about now
                    self._events.append(PeerBack(self.seat, g))

    def inputs_packet(self, seq: int, frame: int, window: int, hash_frame: int, state_hash: bytes) -> bytes:
        """Our next input packet for this seat: every input it has not acknowledged (up to ``window``)."""
        acked = self.acked
        packet, _ = encode_inputs(
            self.local_seat, seq, frame, self._queues.count(self.seat), self.sync.advantage, acked,
            self._queues.values(self.local_seat, acked, acked + window), hash_frame, state_hash,
        )
        return packet

    # -- goodbye and silence ----------------------------------------------------------------------------------
    def on_goodbye(self, msg: Goodbye) -> bool:
        """Take its goodbye; returns False (counting a reject) when it was already gone."""
        if self.gone:
            self.reject("duplicate" if self.goodbye is not None else "unexpected")
            return False
        self.gone = True
        self.goodbye = msg.reason
        return True

    def goodbye_end(self, msg: Goodbye) -> End | None:
        """How its goodbye ends a running session; ``None`` when it left complete, holding all our inputs."""
        if msg.reason == GoodbyeReason.ERROR:
            return End(Outcome.PARTIAL, EndCause.PEER_ENV_ERROR, {"seat": self.seat})
        if msg.reason == GoodbyeReason.COMPLETE and self._queues.count(self.seat) >= msg.final_frames > 0:
            return None
        return End(Outcome.PARTIAL, EndCause.PEER_LEFT, {"seat": self.seat, "why": msg.reason.name.lower()})

    def check_silence(self, now_ms: float, paused: float, draining: bool, cfg: SessionConfig) -> End | None:
        """Whether its silence (or its absence) ends the session; ``paused`` is how long we ourselves did not run."""
        if paused > cfg.disconnect_timeout_ms / 2:
            # We did not run (a frozen tab): what the peer sent meanwhile is still on its way to us, and may
            # reach us only after this tick. Our own pause is not the peer's silence.
            self.last_heard = min(now_ms, self.last_heard + paused)
        grace = 0
        if self.reconnecting is not None:
            if self.last_heard - self.reconnecting > cfg.disconnect_timeout_ms:
                self.reconnecting = None  # its old page kept talking long after the notice: it never left
            else:
                grace = cfg.rejoin_grace_ms
        if draining:
            if now_ms - self.last_heard > max(cfg.disconnect_timeout_ms, grace):
                self.gone = True  # our data is complete; its goodbye was lost or it left: stop waiting for acks
            return None
        limit = cfg.away_silence_timeout_ms if self.away else cfg.disconnect_timeout_ms
        if grace > limit:
            limit = grace
        if now_ms - self.last_heard > limit:
            return End(Outcome.PARTIAL, EndCause.PEER_SILENT, {"seat": self.seat, "limit_ms": limit})
        if self.away and now_ms - self.away_since > cfg.away_timeout_ms:
            return End(Outcome.PARTIAL, EndCause.PEER_AWAY_TIMEOUT, {"seat": self.seat, "limit_ms": cfg.away_timeout_ms})
        return None

    # -- hashes -----------------------------------------------------------------------------------------------
    def on_remote_hash(self, frame: int, h: bytes) -> None:
        """Its confirmed-state hash of ``frame``: compared now if we confirmed that frame, else kept for later."""
        if frame <= self.hash_checked:
            return
        if frame < self._log.confirmed_count:
            self.compare_hash(frame, h)
        elif len(self.remote_hashes) < 64 and frame < self._timeline.frame + self._slack:
            self.remote_hashes[frame] = h

    def hash_point(self, frame: int) -> None:
        """We confirmed hash point ``frame``: compare the hash it sent earlier, if any."""
        remote = self.remote_hashes.pop(frame, None)
        if remote is not None:
            self.compare_hash(frame, remote)

    def compare_hash(self, frame: int, remote: bytes) -> None:
        self.hash_checked = max(self.hash_checked, frame)
        local = bytes.fromhex(self._log.hash_at(frame) or "")[:8]
        if local != remote:
            self._stats["desyncs"] += 1
            self._log.mark_desync(frame)
            self._events.append(DesyncDetected(frame, self.seat, local.hex(), remote.hex()))
