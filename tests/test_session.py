"""Session facade: configuration, handshake, lifecycle and the call protocol."""

from __future__ import annotations

import dataclasses

import pytest

from pyodide_runtime.config import ConfigError, SessionConfig
from pyodide_runtime.protocol import PROTOCOL_VERSION
from pyodide_runtime.session import (
    EpisodeEnded, HandshakeFailed, Session, SessionEnded, SnapshotError, Started, TickResult,
)
from pyodide_runtime.host.testing import LinkSpec, run_peers
from pyodide_runtime.host.testing.games import TinyGridGame, tiny_grid_factory


# -- config ---------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "field, value",
    [("players", 0), ("fps", 0), ("input_delay", -1), ("max_prediction", 500), ("episodes", 0), ("seed", -1),
     ("prediction", "psychic"), ("away_lease_frames", 0), ("disconnect_timeout_ms", 0), ("hash_interval", 0),
     ("max_frames_per_tick", 0), ("fast_forward_threshold", 1), ("frame_hash", "md5"), ("fps", 30.0)],
)
def test_config_errors_name_the_field(field, value):
    with pytest.raises(ConfigError, match=rf"SessionConfig\.{field} ="):
        SessionConfig(**{field: value})


def test_config_digest_and_episode_seeds():
    base = SessionConfig()
    assert base.digest() == SessionConfig().digest() and len(base.digest()) == 16
    for f in dataclasses.fields(SessionConfig):
        value = getattr(base, f.name)
        bumped = value + 1 if isinstance(value, int) else value
        changed = {"prediction": "default", "frame_hash": "full", "adaptive_delay": True}.get(f.name, bumped)
        extra = {"adaptive_delay": True} if f.name in ("min_input_delay", "max_input_delay") else {}
        assert dataclasses.replace(base, **extra).digest() != dataclasses.replace(
            base, **extra, **{f.name: changed}).digest(), f.name
    seeds = [base.episode_seed(k) for k in range(50)]
    assert len(set(seeds)) == 50 and all(0 <= s < 2**31 for s in seeds)
    assert seeds == [SessionConfig().episode_seed(k) for k in range(50)]
    assert SessionConfig(seed=1).episode_seed(0) != seeds[0]


# -- handshake ------------------------------------------------------------------------------------------------
def _exchange(a: Session, b: Session, rounds: int = 6, now: float = 0.0):
    events = {a.seat: [], b.seat: []}
    for i in range(rounds):
        for src, dst in ((a, b), (b, a)):
            res = src.tick(now + i * 33, 0)
            events[src.seat] += res.events
            for seat, data in res.messages:
                if seat == dst.seat:  # a 3-player peer also greets a seat that is not here
                    dst.receive(now + i * 33, data, src.seat)
    return events


def test_handshake_starts_both_peers():
    cfg = SessionConfig()
    a, b = Session(TinyGridGame(), cfg, 0), Session(TinyGridGame(), cfg, 1)
    assert not a.started
    events = _exchange(a, b)
    assert a.started and b.started
    assert [type(e) for e in events[0]].count(Started) == 1 and [type(e) for e in events[1]].count(Started) == 1
    assert a.frame > 0 and b.frame > 0


class _OtherGame(TinyGridGame):
    env_id = "testing/other"


class _NewerGame(TinyGridGame):
    env_version = "2"


@pytest.mark.parametrize(
    "make_b, cfg_b, expect",
    [
        (lambda: _OtherGame(), SessionConfig(), "ours testing/other@1"),
        (lambda: _NewerGame(), SessionConfig(), "ours testing/tiny_grid@2"),
        (lambda: TinyGridGame(), SessionConfig(seed=5), "seed: peer 0, ours 5"),
        (lambda: TinyGridGame(), SessionConfig(input_delay=3), "config digest differs"),
        (lambda: TinyGridGame(players=3), SessionConfig(players=3), "players: peer 2, ours 3"),
    ],
)
def test_handshake_mismatch_ends_both_sessions(make_b, cfg_b, expect):
    a = Session(TinyGridGame(), SessionConfig(), 0)
    b = Session(make_b(), cfg_b, 1)
    events = _exchange(a, b)
    failed = [e for e in events[0] + events[1] if isinstance(e, HandshakeFailed)]
    assert any(expect in e.reason for e in failed), failed
    assert a.ended and a.outcome == "partial" and "handshake" in a.end_reason
    assert b.ended and b.outcome == "partial"  # its own check fails too, or it hears our goodbye
    assert a.frame == 0 and b.frame == 0 and a.log.confirmed_count == 0


def test_protocol_version_mismatch_is_a_handshake_failure():
    a, b = Session(TinyGridGame(), SessionConfig(), 0), Session(TinyGridGame(), SessionConfig(), 1)
    hello = b.tick(0.0, 0).messages[0][1]
    a.receive(0.0, hello[:1] + bytes([PROTOCOL_VERSION + 1]) + hello[2:], 1)
    res = a.tick(1.0, 0)
    assert any(isinstance(e, HandshakeFailed) and "protocol version" in e.reason for e in res.events)
    assert a.ended and a.stats["rejected"]["version"] == 1
    assert res.messages  # goodbye packets tell the peer


# -- lifecycle ------------------------------------------------------------------------------------------------
def test_single_player_session_completes_alone():
    cfg = SessionConfig(players=1, episodes=2)
    s = Session(TinyGridGame(players=1, length=10), cfg, 0)
    events = []
    now = 0.0
    while not s.ended and now < 10_000:
        res = s.tick(now, 2)
        assert isinstance(res, TickResult) and res.messages == []
        events += res.events
        now += cfg.frame_ms
    assert s.outcome == "complete" and s.log.confirmed_count == 20
    assert [e.episode for e in events if isinstance(e, EpisodeEnded)] == [0, 1]
    assert s.tick(now, 0).events == []  # an ended session stays quiet
    assert all(r.inputs == (0,) for r in s.log.confirmed[:2]) and s.log.confirmed[5].inputs == (2,)


def test_unsnapshottable_game_is_refused():
    class NoSnapshots(TinyGridGame):
        def get_state(self):
            raise NotImplementedError("no state protocol")

    with pytest.raises(SnapshotError, match="cannot be snapshotted"):
        Session(NoSnapshots(), SessionConfig(), 0)


def test_bad_arguments_raise_for_the_caller():
    with pytest.raises(ValueError, match="seat"):
        Session(TinyGridGame(), SessionConfig(), 2)
    with pytest.raises(ValueError, match="seats"):
        Session(TinyGridGame(players=3), SessionConfig(), 0)
    s = Session(TinyGridGame(), SessionConfig(), 0)
    with pytest.raises(ValueError, match="local input"):
        s.tick(0.0, 5)


def test_close_sends_goodbye_and_the_peer_ends_partial():
    cfg = SessionConfig()
    a, b = Session(TinyGridGame(), cfg, 0), Session(TinyGridGame(), cfg, 1)
    _exchange(a, b, rounds=10)
    packets = a.close(400.0)
    assert a.ended and a.outcome == "partial" and packets
    for seat, data in packets:
        b.receive(401.0, data, 0)
    res = b.tick(402.0, 0)
    ended = [e for e in res.events if isinstance(e, SessionEnded)]
    assert ended and ended[0].outcome == "partial" and "left" in ended[0].reason


def test_render_and_diagnostics():
    res = run_peers(tiny_grid_factory(length=15), SessionConfig(), seed=1)
    peer = res.peers[0]
    assert peer.session.render() is None  # TinyGridGame draws nothing
    diag = peer.session.diagnostics()
    assert diag["outcome"] == "complete" and diag["confirmed_frames"] == 15
    assert diag["frames_simulated"] >= 15 and diag["packets_sent"] > 0 and sum(diag["rejected"].values()) == 0


def test_custom_predictor_is_used_and_cannot_change_confirmed_data():
    calls = []

    def always_up(seat, frame, last):
        calls.append((seat, frame))
        return 1

    cfg = SessionConfig(input_delay=0, max_prediction=6)
    make = tiny_grid_factory(length=60)
    link = LinkSpec(latency_ms=90)
    plain = run_peers(make, cfg, link=link, seed=3)
    custom = run_peers(make, cfg, link=link, seed=3,
                       sessions=[Session(make(s), cfg, s, predictor=always_up) for s in range(2)])
    assert calls and {seat for seat, _ in calls} == {0, 1}
    assert custom.total("rollbacks") != plain.total("rollbacks")
    assert custom.identical() and [p.rows for p in custom.peers] == [p.rows for p in plain.peers]
