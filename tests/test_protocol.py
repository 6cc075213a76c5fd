"""Wire format: round trips, and every kind of bad packet rejected, counted and harmless."""

from __future__ import annotations

import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pyodide_runtime.host.testing.games import TinyGridGame as CoinGame
from pyodide_runtime.config import SessionConfig
from pyodide_runtime.protocol import (
    AWAY_BIT, MAX_PACKET, PROTOCOL_VERSION, DecodeError, Echo, Goodbye, GoodbyeReason, Hello, Inputs, Resume, decode,
    encode,
)
from pyodide_runtime.protocol.codec import MAX_RUNS, encode_echo, fit_values
from pyodide_runtime.session import REJECT_KINDS, Session

values_st = st.lists(st.sampled_from([0, 1, 2, 4, AWAY_BIT, AWAY_BIT | 3]), max_size=600)


@settings(max_examples=200)
@given(
    seat=st.integers(0, 255), seq=st.integers(0, 2**32 - 1), frame=st.integers(0, 2**32 - 1),
    ack=st.integers(0, 2**32 - 1), adv=st.integers(-128, 127), start=st.integers(0, 2**32 - 1), values=values_st,
    hashed=st.booleans(), h=st.binary(min_size=8, max_size=8),
)
def test_inputs_round_trip(seat, seq, frame, ack, adv, start, values, hashed, h):
    values = tuple(values[: fit_values(values)])
    msg = Inputs(seat, seq, frame, ack, adv, start, values, 17 if hashed else -1, h if hashed else b"")
    data = encode(msg)
    assert len(data) <= MAX_PACKET
    assert decode(data) == msg


def test_hello_and_goodbye_round_trip():
    hello = Hello(1, 2, "coin_chase", "1.0", bytes(range(16)), 2**63 - 1, 0b11)
    assert decode(encode(hello)) == hello
    for reason in GoodbyeReason:
        bye = Goodbye(0, reason, 1234)
        assert decode(encode(bye)) == bye


def test_steady_input_packets_are_small():
    # 30 packets a second of a typical steady tail must stay well under 2 KB/s.
    msg = Inputs(0, 100, 500, 498, 1, 497, (3, 3, 3, 3, 1), -1, b"")
    assert len(encode(msg)) * 30 < 1000


def test_fit_values_bounds_runs():
    alternating = [i % 2 for i in range(1000)]
    n = fit_values(alternating)
    assert n == MAX_RUNS
    with pytest.raises(ValueError):
        encode(Inputs(0, 0, 0, 0, 0, 0, tuple(alternating)))
    assert fit_values([5] * 10_000) == 10_000  # one value: runs of 255 each, 40 runs


@pytest.mark.parametrize(
    "data, kind",
    [
        (b"", "malformed"),
        (b"\x00\x01\x02\x00", "malformed"),
        (bytes([0xB7, PROTOCOL_VERSION, 2, 1]) + b"\x00" * 5, "malformed"),
        (bytes([0xB7, PROTOCOL_VERSION, 99, 1]), "unknown_type"),
        (bytes([0xB7, PROTOCOL_VERSION + 1, 2, 1]) + b"\x00" * 30, "version"),
        (b"\xb7" + b"\x00" * (MAX_PACKET + 1), "oversized"),
    ],
)
def test_decode_errors(data, kind):
    with pytest.raises(DecodeError) as info:
        decode(data)
    assert info.value.kind == kind


def test_trailing_bytes_and_unknown_flags_are_malformed():
    good = encode(Inputs(1, 1, 0, 0, 0, 0, (1, 1)))
    with pytest.raises(DecodeError, match="malformed"):
        decode(good + b"\x00")
    flags_at = 4 + struct.calcsize("!IIIIb")
    bad = bytearray(good)
    bad[flags_at] = 0x80
    with pytest.raises(DecodeError, match="malformed"):
        decode(bytes(bad))


# -- rejection inside a running session ----------------------------------------------------------------------
def _pair(**cfg):
    config = SessionConfig(**{"input_delay": 2, "max_prediction": 6, **cfg})
    a, b = Session(CoinGame(), config, 0), Session(CoinGame(), config, 1)
    now = 0.0
    for _ in range(3):  # handshake
        for src, dst in ((a, b), (b, a)):
            res = src.tick(now, 0)
            for seat, data in res.messages:
                dst.receive(now, data, src.seat)
    assert a.started and b.started
    return a, b


def _snapshot(session):
    return [session.queues.values(s, 0, session.queues.count(s)) for s in range(session.queues.seats)], session.frame, session.log.confirmed_count


def _inputs(seq, start, values, seat=1, frame=0, ack=0):
    return encode(Inputs(seat, seq, frame, ack, 0, start, tuple(values)))


BAD_PACKETS = {
    "malformed": lambda: b"\xb7\x01\x02",
    "oversized": lambda: b"\xb7\x01\x02\x01" + bytes(MAX_PACKET),
    "version": lambda: bytes([0xB7, PROTOCOL_VERSION + 1, 2, 1]) + bytes(24),
    "unknown_type": lambda: bytes([0xB7, PROTOCOL_VERSION, 77, 1]),
    "wrong_seat": lambda: _inputs(50, 2, [1], seat=0),  # claims to be the receiver itself
    "out_of_window": lambda: _inputs(51, 10_000, [1]),
    "invalid_input": lambda: _inputs(52, 2, [9]),  # seat 1 has 5 inputs
}


@pytest.mark.parametrize("kind", sorted(BAD_PACKETS))
def test_bad_packet_is_rejected_counted_and_changes_nothing(kind):
    a, _ = _pair()
    before = _snapshot(a)
    a.receive(10.0, BAD_PACKETS[kind]())
    assert a.stats["rejected"][kind] == 1
    assert sum(a.stats["rejected"].values()) == 1
    assert _snapshot(a) == before


def test_every_reject_kind_is_reachable_and_counted():
    a, _ = _pair()
    now = 50.0
    for kind, make in BAD_PACKETS.items():
        a.receive(now, make())
    n = a.queues.count(1)
    a.receive(now, _inputs(100, n, [1, 2, 3]))  # accepted
    assert a.queues.values(1, n, a.queues.count(1)) == [1, 2, 3]
    a.receive(now, _inputs(100, n, [1, 2, 3]))  # same seq again
    a.receive(now, _inputs(99, n, [1, 2]))  # older seq, arrives late
    a.receive(now, _inputs(101, n + 1, [4]))  # contradicts the known input of frame n + 1
    a.receive(now, _inputs(102, n, [AWAY_BIT | 3]))  # away must carry the default action
    a.receive(now, encode(Inputs(1, 103, 0, 10_000, 0, n, (1,))))  # acks inputs never sent
    a.receive(now, _inputs(104, n + 9, [1]))  # leaves a gap
    a.receive(now, encode(Hello(1, 2, "testing/tiny_grid", "1", bytes(16), 0, 3)))  # mismatching hello after start
    rejected = a.stats["rejected"]
    assert rejected["duplicate"] == 1 and rejected["reordered"] == 1 and rejected["conflict"] == 1
    assert rejected["invalid_input"] == 2 and rejected["out_of_window"] == 3 and rejected["unexpected"] == 1
    assert set(REJECT_KINDS) == {k for k, v in rejected.items() if v}
    assert a.queues.values(1, n, a.queues.count(1)) == [1, 2, 3]


def test_wrong_sender_address_is_rejected():
    a, _ = _pair()
    a.receive(1.0, _inputs(7, 2, [1]), from_seat=3)
    a.receive(1.0, _inputs(8, 2, [1]), from_seat=0)
    before = _snapshot(a)
    assert a.stats["rejected"]["wrong_seat"] == 2
    a.receive(1.0, _inputs(9, 2, [1]), from_seat=2)
    assert a.stats["rejected"]["wrong_seat"] == 3 and _snapshot(a) == before


@settings(max_examples=300)
@given(st.binary(max_size=200))
def test_random_bytes_never_raise(data):
    a, _ = _pair()
    before = _snapshot(a)
    a.receive(5.0, data)
    a.receive(5.0, b"\xb7\x01" + data)
    a.receive(5.0, b"\xb7\x01\x02\x01" + data)
    total = sum(a.stats["rejected"].values())
    after = _snapshot(a)
    # Random bytes are either rejected or (rarely) a valid packet; they never raise, and rejected ones change nothing.
    assert total <= 3
    if total == 3:
        assert after == before


@settings(max_examples=300)
@given(
    seq=st.integers(0, 2**32 - 1), frame=st.integers(0, 2**32 - 1), ack=st.integers(0, 2**32 - 1),
    adv=st.integers(-128, 127), start=st.one_of(st.integers(0, 12), st.integers(0, 2**32 - 1)),
    values=st.lists(st.integers(0, 0xFFFF), max_size=40), hash_frame=st.integers(-1, 2**32 - 1),
    seat=st.integers(0, 255), reason=st.integers(0, 4), final=st.integers(0, 2**32 - 1),
)
def test_structurally_valid_but_hostile_packets_never_raise_or_rewrite_known_inputs(
    seq, frame, ack, adv, start, values, hash_frame, seat, reason, final
):
    a, _ = _pair()
    known = a.queues.values(1, 0, a.queues.count(1))
    packets = [
        encode(Inputs(seat, seq, frame, ack, adv, start, tuple(values[: fit_values(values)]), hash_frame, b"\x01" * 8)),
        encode(Hello(seat, seat % 4, "x" * (seat % 7), "1", bytes(16), seq, seat)),
    ]
    for data in packets:
        a.receive(20.0, data)
    a.tick(40.0, 1)
    assert a.queues.values(1, 0, len(known)) == known
    a.receive(41.0, encode(Goodbye(seat, GoodbyeReason(reason), final)))
    a.tick(60.0, 1)
    assert a.queues.values(1, 0, len(known)) == known


class _Counting:
    """Wraps a ``struct.Struct`` and counts its unpacks."""

    def __init__(self, inner: struct.Struct, calls: list[str], name: str) -> None:
        self._inner, self._calls, self._name, self.size = inner, calls, name, inner.size

    def unpack(self, data):
        self._calls.append(self._name)
        return self._inner.unpack(data)

    def unpack_from(self, data, offset=0):
        self._calls.append(self._name)
        return self._inner.unpack_from(data, offset)


def _count_parses(monkeypatch) -> list[str]:
    from pyodide_runtime.protocol import codec
    from pyodide_runtime.session import core

    calls: list[str] = []
    for name in ("_ONE_RUN", "_ONE_RUN_HASH", "_INPUTS"):
        monkeypatch.setattr(codec, name, _Counting(getattr(codec, name), calls, name))
    real_decode = core.decode
    monkeypatch.setattr(core, "decode", lambda data: (calls.append("decode"), real_decode(data))[1])
    return calls


@pytest.mark.parametrize("values, hashed", [
    ((1,) * 3, False), ((1,) * 3, True),  # one held input: the one-unpack path
    ((1, 2), False), ((1, 2, 3), True), ((1, 2, 3, 4, 1, 2), False),  # several runs: the general path
])
def test_each_input_packet_is_parsed_once_on_the_receive_path(monkeypatch, values, hashed):
    a, _ = _pair()
    n = a.queues.count(1)
    data = encode(Inputs(1, 60, n, 0, 0, n, values, n - 1 if hashed else -1, bytes(8) if hashed else b""))
    calls = _count_parses(monkeypatch)
    a.receive(10.0, data, 1)
    assert len(calls) == 1 and calls[0] != "decode", calls
    assert a.queues.values(1, n, a.queues.count(1)) == list(values)


def test_a_multi_run_packet_the_size_of_a_one_run_hashed_packet_is_parsed_once(monkeypatch):
    from pyodide_runtime.protocol import codec

    values = (1, 2, 1, 2, 1)  # 5 runs, no hash: as long as a one-run packet with a hash
    data = encode(Inputs(1, 60, 3, 0, 0, 3, values))
    assert len(data) == codec._ONE_RUN_HASH.size
    calls = _count_parses(monkeypatch)
    assert codec.decode_inputs_fields(data)[5] == values
    assert calls == ["_INPUTS"]


@pytest.mark.parametrize("data", [
    _inputs(70, 2, [1]) + b"\x00",  # trailing byte after a one-run packet
    bytes([0xB7, PROTOCOL_VERSION, 2, 1]) + struct.pack("!IIIIbBB", 70, 2, 0, 2, 0, 0, 1) + struct.pack("!HB", 1, 0),
    bytes([0xB7, PROTOCOL_VERSION, 2, 1]) + struct.pack("!IIIIbBB", 70, 2, 0, 2, 0, 0, 3) + struct.pack("!HB", 1, 2),
], ids=["trailing", "empty-run", "truncated-runs"])
def test_a_malformed_input_packet_is_parsed_once_and_rejected_as_malformed(monkeypatch, data):
    a, _ = _pair()
    before = _snapshot(a)
    calls = _count_parses(monkeypatch)
    a.receive(10.0, data, 1)
    assert a.stats["rejected"]["malformed"] == 1
    assert "decode" not in calls and len(calls) == 1, calls
    assert _snapshot(a) == before


# -- rejoin: Resume and Echo -----------------------------------------------------------------------------------
def _resume(seat=1, nonce=9, confirmed=2, seed=None, config=None):
    config = config or SessionConfig(input_delay=2, max_prediction=6)
    return Resume(seat, nonce, confirmed, config.players, CoinGame.env_id, CoinGame.env_version, config.digest(),
                  config.seed if seed is None else seed)


def test_resume_and_echo_round_trip():
    resume = Resume(1, 2**32 - 1, 1234, 2, "coin_chase", "1.0", bytes(range(16)), 2**63 - 1)
    assert decode(encode(resume)) == resume
    echo = Echo(0, 7, 2**20, 300, 250, 200, (1, 1, AWAY_BIT, 3))
    assert decode(encode(echo)) == echo
    empty = Echo(0, 7, 5, 300, 100, 200, ())  # it holds fewer inputs than the checkpoint: nothing to echo
    assert decode(encode(empty)) == empty
    with pytest.raises(ValueError):
        encode(Echo(0, 7, 5, 300, 201, 200, (1, 2)))  # values past held


def test_a_long_echo_is_split_into_packets_within_the_limits():
    values = [i % 2 for i in range(2000)] + [AWAY_BIT] * 3000  # 2000 runs, then long runs
    packets = encode_echo(1, 5, 77, 6000, 100 + len(values), 100, values)
    assert len(packets) > 1 and all(len(p) <= MAX_PACKET for p in packets)
    got, start = [], 100
    for p in packets:
        msg = decode(p)
        assert isinstance(msg, Echo) and (msg.seat, msg.nonce, msg.seq, msg.frame) == (1, 5, 77, 6000)
        assert msg.start == start and len(msg.values) > 0
        got.extend(msg.values)
        start += len(msg.values)
    assert got == values
    assert [decode(p) for p in encode_echo(1, 5, 77, 6000, 40, 100, [])] == [Echo(1, 5, 77, 6000, 40, 100, ())]


_ECHO_HEAD = bytes([0xB7, PROTOCOL_VERSION, 5, 1])


@pytest.mark.parametrize("data", [
    encode(_resume())[:-1],  # truncated text
    encode(_resume()) + b"\x00",  # trailing byte
    bytes([0xB7, PROTOCOL_VERSION, 4, 1]) + bytes(10),  # short
    _ECHO_HEAD + struct.pack("!IIIIIB", 9, 5, 10, 50, 2, 1),  # a run announced, none there
    _ECHO_HEAD + struct.pack("!IIIIIB", 9, 5, 10, 50, 2, 1) + struct.pack("!HB", 1, 0),  # empty run
    _ECHO_HEAD + struct.pack("!IIIIIB", 9, 5, 10, 3, 2, 1) + struct.pack("!HB", 1, 2),  # values past held
    encode(Echo(1, 9, 5, 10, 50, 2, (1,))) + b"\x00",  # trailing byte
], ids=["resume-truncated", "resume-trailing", "resume-short", "echo-no-run", "echo-empty-run", "echo-past-held",
        "echo-trailing"])
def test_malformed_resume_and_echo_are_rejected_counted_and_harmless(data):
    with pytest.raises(DecodeError, match="malformed"):
        decode(data)
    a, _ = _pair()
    before = _snapshot(a)
    a.receive(10.0, data, 1)
    assert a.stats["rejected"]["malformed"] == 1 and sum(a.stats["rejected"].values()) == 1
    assert _snapshot(a) == before and a.tick(20.0, 0).messages and not a.ended


def test_resume_from_another_session_and_stray_echoes_are_rejected_as_unexpected():
    a, _ = _pair()
    before = _snapshot(a)
    a.receive(10.0, encode(_resume(seed=77)), 1)  # another seed: not this session's page
    a.receive(10.0, encode(Echo(1, 9, 5, 10, 50, 2, (1,))), 1)  # an echo, but this session is not resuming
    assert a.stats["rejected"]["unexpected"] == 2 and sum(a.stats["rejected"].values()) == 2
    assert _snapshot(a) == before and a.peers[1].resume_nonce is None


def test_a_resume_is_echoed_and_the_old_pages_packets_are_ignored_afterwards():
    a, b = _pair()
    now = 0.0
    for _ in range(20):  # play a little: a holds some of b's inputs, b some of a's
        now += 33.0
        for src, dst in ((a, b), (b, a)):
            for _, data in src.tick(now, 1).messages:
                dst.receive(now, data, src.seat)
    link = a.peers[1]
    held = a.queues.count(1)
    assert held > 6 and link.acked > 3 and link.seq_max > 0
    old_seq = link.seq_max
    a.receive(now, encode(_resume(confirmed=3)), 1)
    out = [decode(d) for s, d in a.tick(now + 1, 1).messages if s == 1]
    echoes = [m for m in out if isinstance(m, Echo)]
    assert echoes == [Echo(0, 9, old_seq + (1 << 20), a.frame, held, 3, tuple(a.queues.values(1, 3, held)))]
    assert link.acked == 3, "its own inputs from the checkpoint on are sent again"
    inputs = [m for m in out if isinstance(m, Inputs)]
    assert inputs and inputs[-1].start == 3
    # A packet of the old page still in flight, numbered below the floor, adds nothing.
    a.receive(now + 2, encode(Inputs(1, old_seq + 5, held, 0, 0, held, (2, 2))), 1)
    assert a.queues.count(1) == held and a.stats["rejected"]["reordered"] == 1
    # The same Resume again is answered again, without a second reset; the new page's packets are taken.
    a.receive(now + 3, encode(_resume(confirmed=3)), 1)
    again = [decode(d) for s, d in a.tick(now + 4, 1).messages if s == 1]
    assert [m.seq for m in again if isinstance(m, Echo)] == [old_seq + (1 << 20)]
    a.receive(now + 5, encode(Inputs(1, old_seq + (1 << 20) + 1, held, 3, 0, held, (2, 2))), 1)
    assert a.queues.count(1) == held + 2
    assert a.stats["peer_rejoins"] == 1


@settings(max_examples=200)
@given(data=st.binary(max_size=120), kind=st.sampled_from([4, 5]), seat=st.integers(0, 3))
def test_random_resume_and_echo_bytes_never_raise(data, kind, seat):
    a, _ = _pair()
    before = _snapshot(a)
    a.receive(5.0, bytes([0xB7, PROTOCOL_VERSION, kind, seat]) + data)
    a.tick(10.0, 0)
    assert sum(a.stats["rejected"].values()) <= 1 and not a.ended
    assert _snapshot(a)[0][1][:len(before[0][1])] == before[0][1]  # known inputs are never rewritten
