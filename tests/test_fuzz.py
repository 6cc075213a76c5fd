"""Fuzzing the decoder and a live two-peer session with hostile traffic (the fast subset of ``bench fuzz``).

Random bytes into the decoder and into a single session are covered in ``test_protocol.py``; here mutated valid
packets, and every hostile kind injected into a live session through ``Session.tick(..., incoming=...)``, are
checked for: nothing raises, every hostile packet is counted as rejected, and the canonical data and the export
are byte-identical to the same seeded session without hostile traffic.
"""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pyodide_runtime.host.benchmarks.fuzz import HOSTILE_KINDS, bench_fuzz, fuzz_session
from pyodide_runtime.config import SessionConfig
from pyodide_runtime.protocol.codec import DecodeError, decode, encode
from pyodide_runtime.protocol.messages import Goodbye, GoodbyeReason, Hello, Inputs
from pyodide_runtime.session import REJECT_KINDS, Session
from pyodide_runtime.host.testing.games import TinyGridGame, tiny_grid_factory
from pyodide_runtime.host.testing.netsim import LinkSpec

CONFIG = SessionConfig(episodes=2)


def _running_pair() -> tuple[Session, Session]:
    """Two sessions past the handshake, a few frames into the game."""
    a, b = (Session(TinyGridGame(length=200), CONFIG, s) for s in (0, 1))
    to_a: list[bytes] = []
    to_b: list[bytes] = []
    for tick in range(20):
        now = tick * CONFIG.frame_ms
        ra = a.tick(now, 1, [(1, d) for d in to_a])
        rb = b.tick(now, 2, [(0, d) for d in to_b])
        to_b = [d for _, d in ra.messages]
        to_a = [d for _, d in rb.messages]
    assert a.state == b.state == "running" and a.frame > 5
    return a, b


def _packets() -> list[bytes]:
    hello = Hello(1, 2, TinyGridGame.env_id, TinyGridGame.env_version, CONFIG.digest(), CONFIG.seed, 0b11)
    return [
        encode(Inputs(1, 3, 5, 4, 0, 2, (1, 1, 2, 2, 0))),
        encode(Inputs(1, 4, 9, 6, 1, 3, (2,) * 40, 29, bytes(range(8)))),
        encode(hello),
        encode(Goodbye(1, GoodbyeReason.LEFT, 100)),
    ]


mutation_st = st.tuples(
    st.sampled_from(range(4)),
    st.lists(st.integers(0, 8 * 400), min_size=0, max_size=4),  # bits to flip
    st.integers(0, 400),  # truncate at
    st.binary(max_size=12),  # appended bytes
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutation_st)
def test_mutated_valid_packets_decode_or_raise_decode_error_only(mutation):
    which, bits, cut, tail = mutation
    data = bytearray(_packets()[which])
    for bit in bits:
        if bit < len(data) * 8:
            data[bit // 8] ^= 1 << (bit % 8)
    data = bytes(data[:cut]) + tail
    try:
        msg = decode(data)
    except DecodeError as exc:
        assert exc.kind in REJECT_KINDS
    else:
        assert isinstance(msg, (Hello, Inputs, Goodbye))
        assert encode(msg) == data or isinstance(msg, Inputs)  # runs may re-encode more compactly


@settings(max_examples=150, deadline=None)
@given(mutation_st, st.sampled_from([1, 0, 5]))
def test_mutated_packets_into_a_running_session_never_raise_and_are_counted(mutation, from_seat):
    a, _ = _running_pair()
    which, bits, cut, tail = mutation
    data = bytearray(_packets()[which])
    for bit in bits:
        if bit < len(data) * 8:
            data[bit // 8] ^= 1 << (bit % 8)
    data = bytes(data[:cut]) + tail
    try:
        msg = decode(data)
    except DecodeError:
        msg = None
    before = sum(a.stats["rejected"].values())
    queue = a.queues.values(1, 0, a.queues.count(1))
    a.receive(1000.0, data, from_seat)
    rejected = sum(a.stats["rejected"].values()) - before
    if msg is None or from_seat != 1 or msg.seat != 1:
        assert rejected == 1  # undecodable or from the wrong seat: always rejected and counted
    if rejected:
        assert a.queues.values(1, 0, a.queues.count(1)) == queue  # a rejected packet changes nothing
    else:
        assert a.queues.values(1, 0, len(queue)) == queue  # accepted inputs never rewrite known ones


def test_replayed_hello_and_goodbye_once_running_count_as_duplicates():
    a, _ = _running_pair()
    assert a.peers[1].started  # the partner's inputs arrived: its hellos are over
    hello = encode(Hello(1, 2, TinyGridGame.env_id, TinyGridGame.env_version, CONFIG.digest(), CONFIG.seed, 0b11))
    before = a.stats["rejected"]["duplicate"]
    a.receive(1000.0, hello, 1)
    assert a.stats["rejected"]["duplicate"] == before + 1
    # A goodbye is sent twice; once the first copy has marked the partner gone, a later copy is a duplicate.
    draining, _ = _running_pair()
    draining.peers[1].gone, draining.peers[1].goodbye = True, GoodbyeReason.COMPLETE
    draining.receive(1000.0, encode(Goodbye(1, GoodbyeReason.COMPLETE, 400)), 1)
    assert draining.stats["rejected"]["duplicate"] == 1 and not draining.ended


@pytest.mark.parametrize("seed", [1, 2])
def test_live_session_under_every_kind_of_hostile_traffic_keeps_its_data(seed):
    report = fuzz_session(
        tiny_grid_factory(length=240), CONFIG, seed=seed, per_delivery=6,
        link=LinkSpec(latency_ms=60, jitter_ms=20, loss=0.05, duplicate=0.05, reorder=0.05),
    )
    assert set(report["sent_by_kind"]) == set(HOSTILE_KINDS)  # every kind was tried...
    assert report["hostile_sent"] > 3000
    assert report["rejected_total"] == report["hostile_sent"]  # ...and every hostile packet was counted
    by_kind = report["rejected_by_kind"]
    for kind in ("malformed", "oversized", "wrong_seat", "out_of_window", "conflict", "invalid_input", "duplicate"):
        assert by_kind.get(kind, 0) > 0, kind
    assert by_kind["oversized"] >= report["sent_by_kind"]["oversized"]
    assert by_kind["conflict"] >= report["sent_by_kind"]["conflict"]
    assert by_kind["duplicate"] + by_kind.get("reordered", 0) >= report["sent_by_kind"]["replay"]
    assert report["outcomes"] == report["reference_outcomes"] == ["complete", "complete"]
    assert report["records_identical"] and report["exports_identical"] and report["peers_identical"]
    assert report["frames"] == 480


def test_bench_fuzz_small_run_reports_rate_and_no_crash():
    totals = bench_fuzz(messages=20_000, per_delivery=20, seed=7)
    assert totals["hostile_sent"] >= 20_000
    assert totals["crashes"] == 0 and totals["data_changed_runs"] == 0 and totals["unaccounted"] == 0
    assert totals["messages_per_second"] > 0
    assert sum(totals["rejected_by_kind"].values()) == totals["hostile_sent"]
