"""Run N peers in one process over a :class:`~pyodide_runtime.host.testing.netsim.Network`, in virtual time.

Each peer ticks every frame (with optional seeded tick jitter) and feeds its session the packets that arrived
since its last tick. Away schedules change how a peer ticks:

- ``"hidden"``: the tab is hidden but ticks at ``hidden_tick_ms`` (1 Hz in a throttled page), ``away=True``;
- ``"worker"``: hidden, but a Web Worker keeps ticking at full rate, ``away=True``;
- ``"frozen"``: no tick at all until the span ends (packets wait in the network); then ``away=True`` ticks
  resume for the first tick and the session fast-forwards.

A peer may also ``disconnect`` at a time (it stops ticking; with ``goodbye=True`` it says so first). A peer
whose env raises ends with outcome ``error`` (its partners ``partial``) and the run goes on without it.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from pyodide_runtime.canonical import canonical_bytes
from pyodide_runtime.config import SessionConfig
from pyodide_runtime.envs.base import Game
from pyodide_runtime.framelog import FrameRecord
from pyodide_runtime.session import Session, SessionEnded
from pyodide_runtime.host.testing.netsim import LinkSpec, Network, VirtualClock

__all__ = [
    "AwaySpan", "PeerResult", "SimulationResult", "InputPolicy", "random_policy", "scripted_policy",
    "constant_policy", "run_peers",
]

#: ``policy(seat, frame, input_count) -> input``; called once per tick of that seat with its session's current
#: frame (the sampled input is executed ``input_delay`` frames later).
InputPolicy = Callable[[int, int, int], int]


def random_policy(seed: int, hold_frames: tuple[int, int] = (1, 12)) -> InputPolicy:
    """Random keys, each held for a random number of ticks (seeded per seat)."""
    state: dict[int, tuple[random.Random, int, int]] = {}

    def policy(seat: int, frame: int, n: int) -> int:
        rng, value, left = state.get(seat) or (random.Random(f"{seed}/{seat}"), 0, 0)
        if left <= 0:
            value, left = rng.randrange(n), rng.randint(*hold_frames)
        state[seat] = (rng, value, left - 1)
        return value

    return policy


def scripted_policy(script: dict[int, Sequence[int]], default: int = 0) -> InputPolicy:
    """Seat ``s`` samples ``script[s][frame]`` at its session's frame ``frame`` (``default`` after the script)."""

    def policy(seat: int, frame: int, n: int) -> int:
        seq = script.get(seat, ())
        return seq[frame] if frame < len(seq) else default

    return policy


def constant_policy(value: int = 0) -> InputPolicy:
    """Every seat always plays ``value``."""
    return lambda seat, frame, n: value


@dataclass(frozen=True, slots=True)
class AwaySpan:
    """Seat ``seat`` is away (``mode``: hidden, worker or frozen) during ``[start_ms, end_ms)``."""

    seat: int
    start_ms: float
    end_ms: float
    mode: str = "hidden"

    def __post_init__(self) -> None:
        if self.mode not in ("hidden", "worker", "frozen"):
            raise ValueError(f"AwaySpan.mode must be hidden, worker or frozen, not {self.mode!r}")
        if self.end_ms <= self.start_ms:
            raise ValueError("AwaySpan.end_ms must be after start_ms")


@dataclass
class PeerResult:
    """What one peer ended with."""

    seat: int
    session: Session
    events: list[Any]
    ticks: int

    @property
    def records(self) -> list[FrameRecord]:
        return self.session.log.confirmed

    @property
    def rows(self) -> list[bytes]:
        """Canonical bytes of every confirmed record."""
        return [canonical_bytes(r.canonical()) for r in self.session.log.confirmed]

    @property
    def tail(self) -> list[FrameRecord]:
        return self.session.unconfirmed_tail()

    @property
    def stats(self) -> dict[str, Any]:
        return self.session.diagnostics()

    @property
    def outcome(self) -> str | None:
        """``complete``, ``partial``, ``error`` (this peer's env raised), or ``None`` if it never ended."""
        return self.session.outcome

    @property
    def error(self) -> dict[str, Any] | None:
        """What this peer's env raised (``Session.error``: kind, where, frame, location, traceback), or ``None``."""
        return self.session.error

    def count(self, event_type: type) -> int:
        return sum(isinstance(e, event_type) for e in self.events)


@dataclass
class SimulationResult:
    """Every peer's result plus the network's counters."""

    peers: list[PeerResult]
    network: dict[str, int]
    end_ms: float
    extra: dict[str, Any] = field(default_factory=dict)

    def identical(self) -> bool:
        """All peers confirmed the same records, byte for byte (and the same number of them)."""
        first = self.peers[0].rows
        return all(p.rows == first for p in self.peers[1:])

    def common_prefix_identical(self) -> bool:
        """Records agree on every frame that all peers confirmed (for partial sessions)."""
        rows = [p.rows for p in self.peers]
        n = min(map(len, rows))
        return all(r[:n] == rows[0][:n] for r in rows[1:])

    def total(self, key: str) -> int:
        return sum(p.session.stats[key] for p in self.peers)

    def rejected(self) -> int:
        return sum(sum(p.session.stats["rejected"].values()) for p in self.peers)


def run_peers(
    make_game: Callable[[int], Game],
    config: SessionConfig,
    *,
    link: LinkSpec | None = None,
    network: Network | None = None,
    seed: int = 0,
    policy: InputPolicy | None = None,
    away: Sequence[AwaySpan] = (),
    disconnect: dict[int, tuple[float, bool]] | None = None,
    start_ms: Sequence[float] | None = None,
    tick_jitter_ms: float = 0.0,
    clock_rate: Sequence[float] | None = None,
    hidden_tick_ms: float = 1000.0,
    max_ms: float = 600_000.0,
    sessions: Sequence[Session] | None = None,
    on_tick: Callable[[int, float, Session], None] | None = None,
) -> SimulationResult:
    """Run ``config.players`` peers until every session ends (or ``max_ms`` of virtual time).

    ``make_game(seat)`` builds each peer's game. ``disconnect`` maps a seat to ``(time_ms, goodbye)``.
    ``clock_rate[s]`` scales the time seat ``s`` reads (clock drift: 1.01 runs 1% fast). ``start_ms[s]`` is
    when seat ``s`` first ticks (a page that loads late); ``tick_jitter_ms`` jitters every tick interval.
    ``on_tick(seat, now_ms, session)`` is called after each tick.
    Pass ``sessions`` to run pre-built sessions (e.g. with a different game on one peer).
    """
    n = config.players
    net = network if network is not None else Network(seed=seed, default=link or LinkSpec())
    policy = policy or random_policy(seed)
    peers = list(sessions) if sessions is not None else [Session(make_game(s), config, s) for s in range(n)]
    events: list[list[Any]] = [[] for _ in range(n)]
    ticks = [0] * n
    rng = random.Random(f"ticks/{seed}")
    frame_ms = config.frame_ms
    next_tick = list(start_ms) if start_ms is not None else [0.0] * n
    gone = [False] * n
    disconnect = disconnect or {}
    spans = sorted(away, key=lambda a: a.start_ms)
    rates = list(clock_rate) if clock_rate is not None else [1.0] * n

    def away_mode(seat: int, t: float) -> AwaySpan | None:
        for span in spans:
            if span.seat == seat and span.start_ms <= t < span.end_ms:
                return span
        return None

    clock = VirtualClock()
    while True:
        live = [s for s in range(n) if not gone[s] and not peers[s].ended]
        if not live:
            break
        t = min(next_tick[s] for s in live)
        if t > max_ms:
            break
        clock.advance_to(t)
        for s in live:
            if next_tick[s] != t:
                continue
            sess = peers[s]
            when = disconnect.get(s)
            if when is not None and t >= when[0]:
                gone[s] = True
                if when[1]:
                    for dst, data in sess.close(t * rates[s], "participant closed the page"):
                        net.send(t, s, dst, data)
                continue
            span = away_mode(s, t)
            if span is not None and span.mode == "frozen":
                next_tick[s] = span.end_ms
                continue
            incoming = net.deliver(t, s)
            was_frozen = any(a.seat == s and a.mode == "frozen" and a.end_ms == t for a in spans)
            is_away = span is not None or was_frozen
            local_now = t * rates[s]
            result = sess.tick(local_now, policy(s, sess.frame, sess.input_counts[s]), incoming, away=is_away)
            ticks[s] += 1
            for dst, data in result.messages:
                net.send(t, s, dst, data)
            events[s].extend(result.events)
            if on_tick is not None:
                on_tick(s, t, sess)
            step = hidden_tick_ms if span is not None and span.mode == "hidden" else frame_ms
            if tick_jitter_ms:
                step = max(1.0, step + rng.uniform(-tick_jitter_ms, tick_jitter_ms))
            next_tick[s] = t + step
    results = [PeerResult(s, peers[s], events[s], ticks[s]) for s in range(n)]
    return SimulationResult(results, dict(net.stats), clock.now_ms)


def ended_event(peer: PeerResult) -> SessionEnded | None:
    """The peer's :class:`SessionEnded` event, if any."""
    for e in peer.events:
        if isinstance(e, SessionEnded):
            return e
    return None
