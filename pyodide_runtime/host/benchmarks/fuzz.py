"""Hostile peer traffic against a live two-peer session, and the fuzz benchmark (``pyodide-runtime bench fuzz``).

:class:`HostileNetwork` wraps the simulated :class:`~pyodide_runtime.host.testing.netsim.Network` and adds hostile
packets to every delivery to a running session, through the normal ``Session.tick(..., incoming=...)`` path:
random bytes, bit flips, truncations and splices of packets seen on the wire, oversized packets, input runs at
extreme frame numbers, packets claiming the wrong seat, input values that contradict known inputs or are not
valid actions, and replays of delivered packets.

What counts as hostile: every packet a session can tell apart from its partner's honest traffic. A mutation
that happens to produce a well-formed packet the partner could have sent itself (new sequence number, inputs
for frames not yet known, or a matching ``Goodbye``) is a forgery, not malformed input: protecting against it
is the transport's job (DTLS on the WebRTC DataChannel; the server stamps the sender's seat on relayed bytes).
Such mutations are skipped and counted as ``forgeries_skipped``.

:func:`fuzz_session` runs the same seeded session twice, without and with hostile traffic, and reports whether
the canonical data changed, how many hostile packets were sent and how each was rejected.
"""

from __future__ import annotations

import random
import struct
import time
import zipfile
from collections import Counter
from collections.abc import Callable
from io import BytesIO
from typing import Any

from pyodide_runtime.config import SessionConfig
from pyodide_runtime.protocol.codec import MAGIC, MAX_PACKET, PROTOCOL_VERSION, T_INPUTS, DecodeError, decode
from pyodide_runtime.protocol.messages import Goodbye, Hello, Inputs
from pyodide_runtime.session import REJECT_KINDS, Session, SessionState
from pyodide_runtime.host.testing.harness import SimulationResult, random_policy, run_peers
from pyodide_runtime.host.testing.netsim import LinkSpec, Network

__all__ = ["HOSTILE_KINDS", "HostileNetwork", "fuzz_session", "canonical_export", "bench_fuzz"]

#: The kinds of hostile packets :class:`HostileNetwork` makes.
HOSTILE_KINDS = (
    "random_bytes", "bit_flip", "truncate", "splice", "oversized", "extreme_frame", "wrong_seat", "conflict",
    "invalid_input", "replay",
)
_INPUTS_HEAD = struct.Struct("!BBBBIIIIbBB")
_RUN = struct.Struct("!HB")
_HISTORY = 64


class HostileNetwork:
    """A :class:`Network` whose deliveries to running sessions carry ``per_delivery`` hostile packets each.

    ``sessions`` are the sessions the harness runs (seat order); they are read, never changed, to tell a
    forgery from a hostile packet (see the module docstring). ``record`` lists every hostile packet sent as
    ``(to_seat, kind)``.
    """

    def __init__(
        self, inner: Network, sessions: list[Session], *, per_delivery: int = 4, seed: int = 0,
        kinds: tuple[str, ...] = HOSTILE_KINDS,
    ) -> None:
        unknown = set(kinds) - set(HOSTILE_KINDS)
        if unknown:
            raise ValueError(f"unknown hostile kinds {sorted(unknown)}; choose from {HOSTILE_KINDS}")
        self.inner = inner
        self.sessions = sessions
        self.per_delivery = per_delivery
        self.kinds = kinds
        self.rng = random.Random(f"hostile/{seed}")
        self.history: dict[int, list[tuple[int, bytes]]] = {}
        self.sent: Counter[str] = Counter()
        self.forgeries_skipped = 0
        self.hostile_bytes = 0

    @property
    def stats(self) -> dict[str, int]:
        return self.inner.stats

    def send(self, now_ms: float, src: int, dst: int, data: bytes) -> None:
        self.inner.send(now_ms, src, dst, data)

    def next_arrival(self, dst: int) -> float | None:
        return self.inner.next_arrival(dst)

    def deliver(self, now_ms: float, dst: int) -> list[tuple[int, bytes]]:
        honest = self.inner.deliver(now_ms, dst)
        session = self.sessions[dst]
        if session.state not in (SessionState.RUNNING, SessionState.DRAINING) or not all(p.started for p in session.peers.values()):
            return honest  # the handshake is not over: a replayed hello is still honest traffic there
        out = list(honest)
        seen = self.history.setdefault(dst, [])
        hostile: list[tuple[int, bytes]] = []
        for _ in range(self.per_delivery):
            made = self._make(session, seen)
            if made is not None:
                hostile.append(made)
        # Hostile packets go after the honest ones of this delivery, so each replay is of a packet already seen.
        seen.extend(honest)
        del seen[:-_HISTORY]
        out.extend(hostile)
        return out

    # -- making hostile packets -------------------------------------------------------------------------------
    def _make(self, session: Session, seen: list[tuple[int, bytes]]) -> tuple[int, bytes] | None:
        rng = self.rng
        kind = rng.choice(self.kinds)
        partner = next(iter(session.peers))
        made = getattr(self, "_" + kind)(session, partner, seen)
        if made is None:
            return None
        src, data = made
        if kind in ("bit_flip", "truncate", "splice") and self._is_forgery(session, src, data):
            self.forgeries_skipped += 1
            return None
        self.sent[kind] += 1
        self.hostile_bytes += len(data)
        return src, data

    def _is_forgery(self, session: Session, src: int, data: bytes) -> bool:
        """Whether ``data`` is well-formed traffic the partner itself could send (so no session can reject it)."""
        try:
            msg = decode(data)
        except DecodeError:
            return False
        peer = session.peers.get(msg.seat)
        if peer is None or src != msg.seat:
            return False  # wrong seat: rejected
        if isinstance(msg, Inputs):
            return msg.seq > peer.seq_max and not peer.gone
        if isinstance(msg, Goodbye):
            return not peer.gone
        assert isinstance(msg, Hello)
        matches = (
            msg.players == session.config.players and msg.env_id == session.game.env_id
            and msg.env_version == session.game.env_version and msg.seed == session.config.seed
            and msg.config_digest == session.config.digest()
        )
        return matches and not (peer.heard_hello and msg.heard >> session.seat & 1)

    def _random_bytes(self, session: Session, partner: int, seen: list) -> tuple[int, bytes]:
        rng = self.rng
        n = rng.choice((0, 1, 3, 4, 5, 12, 25, 40, 64, 200))
        body = rng.randbytes(n)
        if n >= 4 and rng.random() < 0.5:  # a plausible header, so decoding gets past the first checks
            body = bytes((MAGIC, PROTOCOL_VERSION, rng.randrange(1, 5), partner)) + body[4:]
        return partner, body

    def _pick(self, seen: list) -> tuple[int, bytes] | None:
        return self.rng.choice(seen) if seen else None

    def _bit_flip(self, session: Session, partner: int, seen: list) -> tuple[int, bytes] | None:
        picked = self._pick(seen)
        if picked is None:
            return None
        data = bytearray(picked[1])
        for _ in range(self.rng.randint(1, 3)):
            bit = self.rng.randrange(len(data) * 8)
            data[bit // 8] ^= 1 << (bit % 8)
        return picked[0], bytes(data)

    def _truncate(self, session: Session, partner: int, seen: list) -> tuple[int, bytes] | None:
        picked = self._pick(seen)
        if picked is None or len(picked[1]) < 2:
            return None
        return picked[0], picked[1][: self.rng.randrange(len(picked[1]))]

    def _splice(self, session: Session, partner: int, seen: list) -> tuple[int, bytes] | None:
        a, b = self._pick(seen), self._pick(seen)
        if a is None or b is None:
            return None
        rng = self.rng
        return a[0], a[1][: rng.randrange(len(a[1]) + 1)] + b[1][rng.randrange(len(b[1]) + 1):] + rng.randbytes(
            rng.choice((0, 0, 1, 7))
        )

    def _oversized(self, session: Session, partner: int, seen: list) -> tuple[int, bytes]:
        n = self.rng.choice((MAX_PACKET + 1, 4096, 65_536))
        return partner, bytes((MAGIC, PROTOCOL_VERSION, T_INPUTS, partner)) + bytes(n - 4)

    def _inputs(self, partner: int, seq: int, frame: int, start: int, values: list[int], ack: int = 0) -> bytes:
        runs = [(v, 1) for v in values]
        return _INPUTS_HEAD.pack(MAGIC, PROTOCOL_VERSION, T_INPUTS, partner, seq, frame, ack, start, 0, 0,
                                 len(runs)) + b"".join(_RUN.pack(v, n) for v, n in runs)

    def _extreme_frame(self, session: Session, partner: int, seen: list) -> tuple[int, bytes]:
        rng = self.rng
        q = session.queues.count(partner)
        # Far beyond anything honest packets of this same delivery could add to the queue first.
        big = rng.choice((0xFFFFFFFF, 0x7FFFFFFF, q + 100_000, q + 20_000 + rng.randrange(1000)))
        which = rng.randrange(3)
        seq = rng.choice((0xFFFFFFFF, rng.randrange(1 << 32)))
        start, frame, ack = (big, 0, 0) if which == 0 else (0, big, 0) if which == 1 else (0, 0, big)
        if which == 2:
            ack = max(ack, session.queues.count(session.seat) + 1)
        if which == 1:
            frame = max(frame, session.frame + 100_000)
        return partner, self._inputs(partner, seq, frame, start, [session.defaults[partner]], ack)

    def _wrong_seat(self, session: Session, partner: int, seen: list) -> tuple[int, bytes] | None:
        picked = self._pick(seen)
        if picked is None:
            return None
        data = bytearray(picked[1])
        rng = self.rng
        if rng.random() < 0.5:  # the seat byte names us, or a seat that does not exist
            data[3] = rng.choice((session.seat, session.config.players, 0xFF))
            return partner, bytes(data)
        return rng.choice((session.seat, session.config.players + 3)), bytes(data)  # arrived from elsewhere

    def _conflict(self, session: Session, partner: int, seen: list) -> tuple[int, bytes] | None:
        known = session.queues.count(partner)
        count = session.input_counts[partner]
        if not known or count < 2:
            return None
        start = self.rng.randrange(known)
        other = (session.queues.get(partner, start) % 0x8000 + 1) % count  # a valid action that differs from the known one
        return partner, self._inputs(partner, self.rng.randrange(1 << 32), start, start, [other])

    def _invalid_input(self, session: Session, partner: int, seen: list) -> tuple[int, bytes]:
        q = session.queues.count(partner)
        count = session.input_counts[partner]
        bad = self.rng.choice((count, 0x7FFF, 0x8000 | ((session.defaults[partner] + 1) % count), 0xFFFF))
        return partner, self._inputs(partner, self.rng.randrange(1 << 32), q, q, [bad])

    def _replay(self, session: Session, partner: int, seen: list) -> tuple[int, bytes] | None:
        return self._pick(seen)


def canonical_export(session: Session) -> dict[str, bytes]:
    """The canonical parts of the session's export bundle (what every participant's bundle shares)."""
    import json

    from pyodide_runtime.export import ExportContext, Exporter
    from pyodide_runtime.export.schema import canonical_files

    context = ExportContext.from_session(session, study="fuzz", session_id="fuzz", participant="p")
    out: dict[str, bytes] = {}
    with zipfile.ZipFile(BytesIO(Exporter(context).bundle(session.log))) as zf:
        names = set(zf.namelist())
        for spec in canonical_files():
            if spec.path not in names:
                continue
            data = zf.read(spec.path)
            if spec.canonical_member:
                data = json.dumps(json.loads(data)[spec.canonical_member], sort_keys=True).encode()
            out[spec.path] = data
    return out


def _run(make_game: Callable[[int], Any], config: SessionConfig, link: LinkSpec, seed: int,
         hostile: dict[str, Any] | None) -> tuple[SimulationResult, HostileNetwork | None]:
    sessions = [Session(make_game(s), config, s) for s in range(config.players)]
    net: Any = Network(seed=seed, default=link)
    if hostile is not None:
        net = HostileNetwork(net, sessions, seed=seed, **hostile)
    result = run_peers(make_game, config, network=net, seed=seed, policy=random_policy(seed), sessions=sessions)
    return result, (net if hostile is not None else None)


def fuzz_session(
    make_game: Callable[[int], Any], config: SessionConfig, *, link: LinkSpec | None = None, seed: int = 0,
    per_delivery: int = 4, kinds: tuple[str, ...] = HOSTILE_KINDS,
) -> dict[str, Any]:
    """Run a seeded session without and with hostile traffic; report what was sent, rejected and changed."""
    link = link or LinkSpec(latency_ms=40, jitter_ms=10, loss=0.02, duplicate=0.02, reorder=0.02)
    reference, _ = _run(make_game, config, link, seed, None)
    t0 = time.perf_counter()
    attacked, net = _run(make_game, config, link, seed, {"per_delivery": per_delivery, "kinds": kinds})
    seconds = time.perf_counter() - t0
    assert net is not None
    rejected: Counter[str] = Counter()
    for ref, hot in zip(reference.peers, attacked.peers):
        for kind in REJECT_KINDS:
            rejected[kind] += hot.session.stats["rejected"][kind] - ref.session.stats["rejected"][kind]
    sent = sum(net.sent.values())
    records_same = all(a.rows == r.rows for a, r in zip(attacked.peers, reference.peers))
    tails_same = all(
        [x.canonical() for x in a.tail] == [x.canonical() for x in r.tail]
        for a, r in zip(attacked.peers, reference.peers)
    )
    exports_same = all(
        canonical_export(a.session) == canonical_export(r.session) for a, r in zip(attacked.peers, reference.peers)
    )
    return {
        "seed": seed, "frames": attacked.peers[0].session.confirmed_frames,
        "outcomes": [p.outcome for p in attacked.peers], "reference_outcomes": [p.outcome for p in reference.peers],
        "hostile_sent": sent, "hostile_bytes": net.hostile_bytes, "sent_by_kind": dict(net.sent),
        "rejected_by_kind": {k: v for k, v in rejected.items() if v}, "rejected_total": sum(rejected.values()),
        "forgeries_skipped": net.forgeries_skipped, "records_identical": records_same and tails_same,
        "exports_identical": exports_same, "peers_identical": attacked.identical(), "seconds": seconds,
    }


def bench_fuzz(messages: int = 1_000_000, per_delivery: int = 40, seed: int = 0) -> dict[str, Any]:
    """Push at least ``messages`` hostile packets through live sessions (several seeded runs); totals and rate."""
    from pyodide_runtime.host.testing.games import tiny_grid_factory

    config = SessionConfig(episodes=3)
    totals: dict[str, Any] = {"runs": 0, "hostile_sent": 0, "hostile_bytes": 0, "rejected_total": 0,
                              "forgeries_skipped": 0, "crashes": 0, "data_changed_runs": 0, "frames": 0}
    sent_by_kind: Counter[str] = Counter()
    rejected_by_kind: Counter[str] = Counter()
    crashes: list[str] = []
    seconds = 0.0
    run_seed = seed
    while totals["hostile_sent"] < messages:
        try:
            r = fuzz_session(tiny_grid_factory(length=600), config, seed=run_seed, per_delivery=per_delivery)
        except Exception as exc:  # noqa: BLE001 - a crash is a finding to report, not to stop on
            totals["crashes"] += 1
            crashes.append(f"seed {run_seed}: {type(exc).__name__}: {exc}")
            run_seed += 1
            continue
        totals["runs"] += 1
        for key in ("hostile_sent", "hostile_bytes", "rejected_total", "forgeries_skipped", "frames"):
            totals[key] += r[key]
        if not (r["records_identical"] and r["exports_identical"] and r["peers_identical"]
                and r["outcomes"] == r["reference_outcomes"]):
            totals["data_changed_runs"] += 1
        sent_by_kind.update(r["sent_by_kind"])
        rejected_by_kind.update(r["rejected_by_kind"])
        seconds += r["seconds"]
        run_seed += 1
    totals["unaccounted"] = totals["hostile_sent"] - totals["rejected_total"]
    totals["messages_per_second"] = round(totals["hostile_sent"] / seconds) if seconds else None
    totals["seconds"] = round(seconds, 1)
    totals["sent_by_kind"] = dict(sorted(sent_by_kind.items()))
    totals["rejected_by_kind"] = dict(sorted(rejected_by_kind.items()))
    totals["crash_details"] = crashes
    return totals


def add_parser(sub: Any) -> None:
    """``bench fuzz``: the parser, for :mod:`pyodide_runtime.host.commands.bench`."""
    from pathlib import Path

    p = sub.add_parser("fuzz", help="hostile peer traffic into live sessions: rate, rejections, data unchanged")
    p.add_argument("--messages", type=int, default=1_000_000, help="hostile packets to send (default %(default)s)")
    p.add_argument("--per-delivery", type=int, default=40, help="hostile packets per delivery (default %(default)s)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", type=Path, metavar="FILE", help="also write the results as JSON")
    p.set_defaults(bench_run=run_cli)


def run_cli(args: Any) -> int:
    """Run ``bench fuzz``; exit 1 if anything crashed, changed data or went uncounted."""
    import json
    import platform
    import sys

    from pyodide_runtime.host.cli import CommandError

    if args.messages < 1 or args.per_delivery < 1:
        raise CommandError("--messages and --per-delivery must be positive")
    print(f"bench fuzz: {args.messages:,} hostile packets, {args.per_delivery} per delivery…", file=sys.stderr)
    totals = bench_fuzz(args.messages, args.per_delivery, args.seed)
    totals = {"suite": "fuzz", "python": platform.python_version(), **totals}
    print(f"{totals['hostile_sent']:,} hostile packets in {totals['runs']} sessions ({totals['frames']:,} frames): "
          f"{totals['messages_per_second']:,} packets/s; crashes {totals['crashes']}, sessions with changed data "
          f"{totals['data_changed_runs']}, not counted as rejected {totals['unaccounted']}")
    print("rejected by kind: " + ", ".join(f"{k} {v:,}" for k, v in totals["rejected_by_kind"].items()))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(totals, indent=1))
        print(f"wrote {args.json}", file=sys.stderr)
    return 0 if totals["crashes"] == 0 and totals["data_changed_runs"] == 0 and totals["unaccounted"] == 0 else 1
