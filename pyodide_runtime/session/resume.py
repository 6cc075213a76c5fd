"""Rejoin after a reload: rebuild a session from its checkpoint, then the ``Resume``/``Echo`` exchange.

A participant's page reloads mid-game. Its new page holds the checkpoint the old one stored (the confirmed frames
up to ``C``, see :mod:`pyodide_runtime.export.checkpoint`) and nothing else. :func:`replay` rebuilds the session
from it: it resets episode 0 and steps the game through frames ``0 .. C-1`` with the recorded inputs of every seat
(away flags included), through the same code that simulated them the first time, and promotes them. The chained
state hash of every replayed frame must equal the recorded one, and the episode starts must be the recorded ones;
otherwise the env is not deterministic (or the checkpoint is not this session's) and :class:`ResumeError` is
raised: the page then offers the recovered download instead.

The replayed session does not run yet (its state stays ``HANDSHAKE``). Inputs never change once sent, and the old
page may have sent its own inputs past ``C`` before it died: a partner may already have confirmed frames with them.
So the resuming session sends ``Resume(seat, nonce, confirmed=C)`` to every peer until each has answered with
``Echo``: the resuming seat's inputs from ``C`` on, as that peer holds them (:func:`answer_resume`). Every peer
holds a prefix of the same sequence of inputs, so the answers agree by construction; the resuming session keeps
the longest, puts those values in its own queue (they are final, as they were on the old page) and only then runs
(:meth:`ResumeState.start`): new local inputs go after them. It then catches up to the partner's reported frame on
the existing fast-forward path (the frames it skips play its away default, flagged away).

A running peer that gets ``Resume`` from a seat it plays with (:func:`answer_resume`): ignores that seat's input
packets numbered up to the floor it sends back in ``Echo.seq`` (packets of the old page still in flight, which
could otherwise add inputs the new page does not know), rewinds what it believes the seat holds of its own inputs
to at most ``C`` (so they are sent again), and answers with the echo, split into packets within the usual size
limits. Every ``Resume`` is answered (they are resent until answered); only a new nonce resets the link.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pyodide_runtime.protocol.codec import encode, encode_echo
from pyodide_runtime.protocol.messages import AWAY_BIT, Echo, Resume
from pyodide_runtime.session.events import PeerRejoined, Resumed
from pyodide_runtime.session.state import End, EndCause, Outcome, SessionState

if TYPE_CHECKING:
    from pyodide_runtime.session.core import Session
    from pyodide_runtime.session.peer import PeerLink

__all__ = ["ResumeError", "ResumePoint", "ResumeState", "replay", "answer_resume", "on_rejoin_message",
           "SEQ_GAP", "MAX_ECHO_FRAMES"]

#: After a ``Resume``, a peer ignores the resuming seat's input packets numbered up to this many above the last
#: one it took from the old page: the old page cannot have that many packets still in flight.
SEQ_GAP = 1 << 20
#: Most of its own inputs past the checkpoint a resuming session takes from an echo (about 4.8 hours at 60 fps).
MAX_ECHO_FRAMES = 1 << 20
_ACTION_MASK = AWAY_BIT - 1
_PENDING_PARTS = 4096


class ResumeError(ValueError):
    """A checkpoint this session cannot resume from (another session, or an env that replays differently)."""


@dataclass
class ResumePoint:
    """What a session resumes from: the confirmed frames ``0 .. confirmed-1`` of a checkpoint.

    ``inputs[g]`` holds every seat's input of frame ``g`` as the queues hold it (``AWAY_BIT`` set when away),
    ``hashes[g]`` the chained state hash recorded for it, ``starts`` the recorded episode starts as ``(episode,
    seed, start_frame)``. ``config`` is the :class:`~pyodide_runtime.config.SessionConfig` as a dict, ``env`` the
    game's ``describe()``. ``context``, ``frames_text`` and ``resets_text`` are the export context and encoded
    rows the checkpoint holds (the bridge checks that its own export encodes the replayed frames identically).
    """

    confirmed: int
    inputs: list[tuple[int, ...]]
    hashes: list[str]
    starts: list[tuple[int, int, int]]
    config: dict[str, Any]
    seat: int
    env: dict[str, Any]
    context: dict[str, Any] = field(default_factory=dict)
    frames_text: str = ""
    resets_text: str = ""


def replay(session: Session, point: ResumePoint, now_ms: float = 0.0, nonce: int | None = None) -> ResumeState:
    """Replay ``point`` into a freshly built ``session`` and leave it waiting for its peers' echoes.

    Raises :class:`ResumeError` when the checkpoint is not this session's (seat, config, env) or when replaying
    it does not reproduce the recorded hashes and episode starts (an env that is not deterministic).
    """
    cfg = session.config
    if session.state is not SessionState.HANDSHAKE or session.frame != 0 or session._resume is not None:
        raise ResumeError("only a new session can resume from a checkpoint")
    if point.seat != session.seat:
        raise ResumeError(f"the checkpoint is seat {point.seat}'s, this session is seat {session.seat}'s")
    ours = cfg.to_dict()
    differ = sorted(k for k in set(ours) | set(point.config) if ours.get(k) != point.config.get(k))
    if differ:
        raise ResumeError(f"the checkpoint was made with another session config ({', '.join(differ)} differ)")
    game = session.game
    if (point.env.get("env_id"), point.env.get("env_version")) != (game.env_id, game.env_version):
        raise ResumeError(f"the checkpoint was made with env {point.env.get('env_id')}@{point.env.get('env_version')}, "
                          f"this session runs {game.env_id}@{game.env_version}")
    c = point.confirmed
    if len(point.inputs) != c or len(point.hashes) != c or any(len(v) != cfg.players for v in point.inputs):
        raise ResumeError("the checkpoint's inputs do not cover its confirmed frames")
    queues, tl, log = session.queues, session.timeline, session.log
    for seat in range(cfg.players):
        accepted = queues.accept(seat, 0, [v[seat] for v in point.inputs], c)
        if type(accepted) is str:
            raise ResumeError(f"the checkpoint's inputs of seat {seat} cannot be replayed ({accepted})")
    try:
        tl.start(now_ms)
        while tl.frame < c:
            if tl.finished:
                raise ResumeError(f"replaying the checkpoint ended every episode at frame {tl.frame}, "
                                  f"but it holds {c} frames: the env does not replay its own inputs")
            tl.advance(now_ms)
        session._promote(now_ms)
    except ResumeError:
        raise
    except Exception as exc:
        raise ResumeError(f"the env raised {type(exc).__name__} while replaying frame {tl.frame}: {exc}") from exc
    draining = session.state is SessionState.DRAINING
    session.state = SessionState.HANDSHAKE  # not running until the peers echoed our inputs
    if log.confirmed_count != c:
        raise ResumeError(f"replaying the checkpoint confirmed {log.confirmed_count} frames, not {c}")
    for g, (rec, recorded) in enumerate(zip(log.confirmed, point.hashes)):
        if rec.state_hash != recorded:
            raise ResumeError(
                f"replaying the checkpoint diverged at frame {g} (state hash {str(rec.state_hash)[:16]}, "
                f"recorded {recorded[:16]}): the env is not deterministic, so this session cannot resume"
            )
    starts = [(s.episode, s.seed, s.start_frame) for s in log.episode_starts]
    if starts != [tuple(s) for s in point.starts]:
        raise ResumeError(f"replaying the checkpoint started episodes {starts}, recorded {point.starts}")
    if nonce is None:
        nonce = int.from_bytes(os.urandom(4), "big")
    state = ResumeState(session, c, nonce & 0xFFFFFFFF, draining)
    session._resume = state
    session.stats["resumed"] = {"from_frame": c, "replayed_frames": c, "echoed_frames": None, "nonce": state.nonce}
    return state


class ResumeState:
    """A replayed session waiting for its peers' echoes (``session._resume`` until it runs)."""

    __slots__ = ("nonce", "confirmed", "draining", "values", "pending", "answers", "last_sent", "packet", "since")

    def __init__(self, session: Session, confirmed: int, nonce: int, draining: bool) -> None:
        self.nonce = nonce
        self.confirmed = confirmed
        self.draining = draining
        q, seat = session.queues, session.seat
        #: Our inputs from frame ``confirmed`` on, as known (frames before ``input_delay``) or echoed.
        self.values: list[int] = q.values(seat, confirmed, q.count(seat))
        self.pending: dict[int, tuple[int, ...]] = {}  # echo parts that arrived before the ones in front of them
        self.answers: dict[int, tuple[int, int, int]] = {}  # seat -> (held, frame, seq)
        self.last_sent = -1e18
        self.since: float | None = None  # the first tick
        h = session._hello_fields
        self.packet = encode(Resume(seat, self.nonce, confirmed, h.players, h.env_id, h.env_version,
                                    h.config_digest, h.seed))

    def _done(self, seat: int) -> bool:
        answer = self.answers.get(seat)
        return answer is not None and self.confirmed + len(self.values) >= answer[0]

    def tick(self, session: Session, now_ms: float) -> None:
        """Instead of the handshake: run once every peer answered, else (re)send ``Resume`` to the others.

        A peer that has not answered at all after ``disconnect_timeout_ms`` is gone (it ended, or it never heard
        of us): the session ends ``partial`` with the replayed frames, as for any silent peer.
        """
        waiting = [s for s, p in session.peers.items() if not p.gone and not self._done(s)]
        if not waiting:
            self.start(session, now_ms)
            return
        if self.since is None:
            self.since = now_ms
        limit = session.config.disconnect_timeout_ms
        silent = [s for s in waiting if s not in self.answers]
        if silent and now_ms - self.since > limit:
            session._end(now_ms, End(Outcome.PARTIAL, EndCause.PEER_SILENT, {"seat": silent[0], "limit_ms": limit}))
            return
        if now_ms - self.last_sent >= session.config.handshake_resend_ms:
            self.last_sent = now_ms
            for s in waiting:
                session._send(s, self.packet)

    def on_echo(self, session: Session, link: PeerLink, msg: Echo, now_ms: float) -> None:
        """Take one echo packet: our own inputs as ``link``'s seat holds them."""
        c = self.confirmed
        if msg.nonce != self.nonce:
            link.reject("unexpected")  # the answer to another page's Resume
            return
        if msg.held > c + MAX_ECHO_FRAMES or (msg.values and msg.start < c):
            link.reject("out_of_window")
            return
        if msg.values:
            count, default = session.input_counts[session.seat], session.defaults[session.seat]
            for v in set(msg.values):
                action = v & _ACTION_MASK
                if action >= count or (v & AWAY_BIT and action != default) or v >= 2 * AWAY_BIT:
                    link.reject("invalid_input")
                    return
            if msg.start > c + len(self.values):
                pending = self.pending
                if (len(pending) < _PENDING_PARTS
                        and sum(map(len, pending.values())) + len(msg.values) <= MAX_ECHO_FRAMES):
                    pending[msg.start] = msg.values  # kept for when the parts before it arrive
            elif not self._merge(msg.start, msg.values):
                link.reject("conflict")
                return
            while self.pending:
                start = min(self.pending)
                if start > c + len(self.values):
                    break
                if not self._merge(start, self.pending.pop(start)):
                    link.reject("conflict")
        held, frame, seq = self.answers.get(link.seat, (0, 0, -1))
        self.answers[link.seat] = (max(held, msg.held), max(frame, msg.frame), max(seq, msg.seq))
        link.last_heard = now_ms

    def _merge(self, start: int, values: tuple[int, ...]) -> bool:
        known = self.values
        offset = start - self.confirmed
        overlap = min(len(known) - offset, len(values))
        if overlap > 0 and known[offset:offset + overlap] != list(values[:overlap]):
            return False
        known.extend(values[max(overlap, 0):])
        return True

    def start(self, session: Session, now_ms: float) -> None:
        """Every peer answered: our echoed inputs become final, then the session runs and catches up."""
        c, q, seat = self.confirmed, session.queues, session.seat
        own = q.count(seat)
        echoed = self.values[own - c:]
        for v in echoed:
            q.append(seat, v)
        target = c
        for s, p in session.peers.items():
            p.last_heard = now_ms
            answer = self.answers.get(s)
            if answer is None:
                continue
            held, frame, seq = answer
            p.acked = min(held, q.count(seat))  # what it holds of ours: we send from there
            p._slack += max(0, frame - c)  # it runs ahead of us until we caught up: take its packets meanwhile
            if seq > session._seq:
                session._seq = seq
            target = max(target, frame)
        session.state = SessionState.DRAINING if self.draining else SessionState.RUNNING
        pacer = session.pacer
        pacer.epoch = now_ms - (target - 0.5) * pacer.frame_ms  # frames up to the partner's are due now
        pacer.catch_up_to = target
        session.timeline._clock = now_ms
        session._held_episode = session.timeline.episode  # the replayed episode starts had their holds already
        session._resume = None
        session.stats["resumed"].update(echoed_frames=len(echoed), partner_frame=target, at_ms=now_ms)
        session._events.append(Resumed(c, c, len(echoed)))


def answer_resume(session: Session, link: PeerLink, msg: Resume, now_ms: float) -> None:
    """A running session got ``Resume`` from ``link``'s seat: reset the link (once per nonce) and echo."""
    state = session.state
    if (state is not SessionState.RUNNING and state is not SessionState.DRAINING) or link.gone:
        link.reject("unexpected")
        return
    h = session._hello_fields
    if (msg.players, msg.env_id, msg.env_version, msg.config_digest, msg.seed) != (
        h.players, h.env_id, h.env_version, h.config_digest, h.seed
    ):
        link.reject("unexpected")  # not this session's page
        return
    q, seat = session.queues, link.seat
    if msg.confirmed > q.count(session.seat):
        link.reject("out_of_window")  # it cannot have confirmed frames whose inputs we never committed
        return
    if msg.nonce != link.resume_nonce:
        gap = now_ms - link.last_heard
        link.resume_nonce = msg.nonce
        link.seq_max = max(link.seq_max, link.resume_seq, 0) + SEQ_GAP
        link.seq_bits = 0
        link.resume_seq = link.seq_max
        if link.acked > msg.confirmed:
            link.acked = msg.confirmed  # it holds our inputs up to its checkpoint only: send the rest again
        link.sync.reset()
        link.remote_hashes.clear()
        link.reconnecting = None
        session.stats["peer_rejoins"] = session.stats.get("peer_rejoins", 0) + 1
        if session._delay is not None:
            session._delay.interrupt(now_ms)  # its acks of what we sent while it was gone measure the gap
        session._events.append(PeerRejoined(seat, session.timeline.frame, gap))
    link.last_heard = now_ms
    held = q.count(seat)
    start = msg.confirmed
    values = q.values(seat, start, held) if held > start else []
    for packet in encode_echo(session.seat, msg.nonce, link.resume_seq, session.timeline.frame, held, start, values):
        session._send(seat, packet)


def on_rejoin_message(session: Session, link: PeerLink, msg: Resume | Echo, now_ms: float) -> None:
    """Where :meth:`Session.receive` hands ``Resume`` and ``Echo`` packets."""
    if isinstance(msg, Resume):
        answer_resume(session, link, msg, now_ms)
    elif session._resume is not None:
        session._resume.on_echo(session, link, msg, now_ms)
    else:
        resumed = session.stats.get("resumed")
        link.reject("duplicate" if resumed is not None and resumed.get("nonce") == msg.nonce else "unexpected")
