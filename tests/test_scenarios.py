"""Regression scenarios: each injects one fault, asserts the fault really happened, then asserts parity."""

from __future__ import annotations

import dataclasses

import pytest

from pyodide_runtime.host.commands.simulate import DEFAULT_ENV as COIN_CHASE
from pyodide_runtime.canonical import canonical_bytes
from pyodide_runtime.config import SessionConfig
from pyodide_runtime.envs.loading import load_game
from pyodide_runtime.protocol import decode, encode
from pyodide_runtime.session import (
    DesyncDetected, EpisodeEnded, FastForward, HandshakeFailed, PeerAway, PeerBack, RollbackEvent, Session,
    SessionEnded, Stalled, Started,
)
from pyodide_runtime.host.testing import AwaySpan, LinkSpec, Network, random_policy, replay, run_peers, scripted_policy
from pyodide_runtime.host.testing.games import TinyGridGame


def coin_chase(length, players=2, **cfg):
    """A ``make_game(seat)`` factory for the bundled example env with episodes of ``length`` frames."""
    env_cfg = {"players": players, "max_steps": length, "target_score": 10_000, **cfg}
    return lambda seat: load_game(COIN_CHASE, env_cfg, verify=False)


def rows(records):
    return [canonical_bytes(r.canonical()) for r in records]


def assert_parity(result, make_game, config):
    """Every peer confirmed the same bytes, and those bytes follow from the confirmed inputs alone."""
    assert result.identical()
    records = result.peers[0].records
    assert rows(replay(make_game(0), config, records).confirmed) == rows(records)


def events_of(peer, kind):
    return [e for e in peer.events if isinstance(e, kind)]


# -- episode boundaries ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("late", [1, 2, 3])
def test_late_input_in_the_last_frames_of_an_episode(late):
    length = 30
    cfg = SessionConfig(input_delay=1, max_prediction=8, episodes=2)
    # Seat 1 changes its input on each of the last `late` frames of episode 0; it arrives ~4 frames late.
    script = {0: [1] * 200, 1: [0] * (length - late - 1) + [3, 4, 1][:late] + [0] * 200}
    make = coin_chase(length)
    result = run_peers(make, cfg, link=LinkSpec(latency_ms=130), policy=scripted_policy(script), seed=late)
    p0 = result.peers[0]
    late_rollbacks = [e for e in events_of(p0, RollbackEvent) if length - late <= e.frame < length]
    assert late_rollbacks, events_of(p0, RollbackEvent)
    for peer in result.peers:
        assert peer.outcome == "complete"
        ends = [(e.episode, e.last_frame) for e in events_of(peer, EpisodeEnded)]
        assert ends == [(0, length - 1), (1, 2 * length - 1)]
    assert_parity(result, make, cfg)


def test_late_input_that_changes_when_the_episode_ends():
    """A terminating move predicted wrongly: the speculative episode end (and next reset) is rolled back."""
    cfg = SessionConfig(input_delay=0, max_prediction=10, episodes=2)
    make = coin_chase(150, target_score=2)  # the first player to 2 points ends the episode
    result = run_peers(make, cfg, link=LinkSpec(latency_ms=150, jitter_ms=40), policy=random_policy(4, (1, 3)), seed=4)
    ends = [[(e.episode, e.last_frame) for e in events_of(p, EpisodeEnded)] for p in result.peers]
    assert ends[0] == ends[1] and len(ends[0]) == 2
    assert any(r.episode_over and any(r.terminated.values()) for r in result.peers[0].records)
    assert result.total("rollbacks") > 0
    assert_parity(result, make, cfg)


def test_multi_episode_no_leakage():
    cfg = SessionConfig(input_delay=1, max_prediction=8, episodes=4, seed=9)
    make = coin_chase(20)
    result = run_peers(make, cfg, link=LinkSpec(latency_ms=90, jitter_ms=30), seed=9)
    assert result.total("rollbacks") > 0
    log = result.peers[0].session.log
    assert [s.episode for s in log.episode_starts] == [0, 1, 2, 3]
    for start in log.episode_starts:
        fresh = make(0).reset(cfg.episode_seed(start.episode))
        assert canonical_bytes(start.observations) == canonical_bytes(fresh.observations)
        episode_rows = [r for r in log.confirmed if r.episode == start.episode]
        assert [r.frame for r in episode_rows] == list(range(20))
        assert episode_rows[0].global_frame == start.start_frame
    assert_parity(result, make, cfg)


# -- rollback depth -------------------------------------------------------------------------------------------
def test_deep_rollback_at_the_full_prediction_window_and_stall():
    window = 6
    cfg = SessionConfig(input_delay=0, max_prediction=window, episodes=1)
    make = coin_chase(90)
    worst = {"spec": 0}

    def watch(seat, now, session):
        worst["spec"] = max(worst["spec"], session.frame - session.queues.confirmed_count())

    result = run_peers(make, cfg, link=LinkSpec(latency_ms=400), policy=random_policy(2, (1, 2)), seed=2,
                       on_tick=watch)
    assert max(p.session.stats["max_rollback_depth"] for p in result.peers) == window
    assert all(p.session.stats["stalls"] > 0 and events_of(p, Stalled) for p in result.peers)
    assert worst["spec"] == window  # never more than the window ahead of the confirmed frame
    assert_parity(result, make, cfg)


def test_cascaded_rollbacks_three_players():
    cfg = SessionConfig(players=3, input_delay=0, max_prediction=12, episodes=1)
    net = Network(seed=5, default=LinkSpec(latency_ms=40))
    net.links[(2, 0)] = LinkSpec(latency_ms=230)  # seat 2's inputs reach seat 0 much later than seat 1's
    make = coin_chase(80, players=3)
    result = run_peers(make, cfg, network=net, policy=random_policy(5, (1, 3)), seed=5)
    p0 = result.peers[0]
    rollbacks = events_of(p0, RollbackEvent)
    cascaded = [b for a, b in zip(rollbacks, rollbacks[1:]) if b.frame < a.frame + a.depth]
    assert cascaded, "a rollback should land inside frames an earlier rollback resimulated"
    assert max(r.resimulated for r in p0.records) >= 2
    assert {s for r in rollbacks for s in r.seats} == {1, 2}
    assert_parity(result, make, cfg)


# -- network faults -------------------------------------------------------------------------------------------
def test_packet_loss_with_active_inputs():
    cfg = SessionConfig(input_delay=2, max_prediction=8, episodes=2)
    make = coin_chase(60)
    link = LinkSpec(latency_ms=60, jitter_ms=20, loss=0.3)
    result = run_peers(make, cfg, link=link, policy=random_policy(3, (1, 4)), seed=3)
    assert result.network["lost"] > 50 and result.total("rollbacks") > 0
    assert all(p.outcome == "complete" for p in result.peers)
    assert_parity(result, make, cfg)


def test_duplicated_and_reordered_packets_are_counted_and_harmless():
    cfg = SessionConfig(input_delay=1, max_prediction=8, episodes=1)
    make = coin_chase(80)
    link = LinkSpec(latency_ms=50, jitter_ms=10, duplicate=0.3, reorder=0.3, reorder_ms=80)
    result = run_peers(make, cfg, link=link, seed=8)
    rejected = [p.session.stats["rejected"] for p in result.peers]
    assert sum(r["duplicate"] for r in rejected) > 0 and sum(r["reordered"] for r in rejected) > 0
    assert result.network["duplicated"] > 0 and result.network["reordered"] > 0
    assert result.total("rollbacks") > 0
    assert_parity(result, make, cfg)


def test_asymmetric_links_burst_outage_and_partition():
    cfg = SessionConfig(input_delay=1, max_prediction=8, episodes=1)
    net = Network(seed=6, default=LinkSpec(latency_ms=20))
    net.links[(0, 1)] = LinkSpec(latency_ms=150, jitter_ms=50, outages=((1000, 1600),))
    net.partition(2500, 3500, [0], [1])
    make = coin_chase(180)
    result = run_peers(make, cfg, network=net, seed=6)
    assert result.network["outage_drops"] > 20
    assert all(p.session.stats["stalls"] > 0 for p in result.peers)
    assert all(p.outcome == "complete" for p in result.peers)
    assert_parity(result, make, cfg)


# -- away and fast-forward ------------------------------------------------------------------------------------
@pytest.mark.parametrize("mode", ["hidden", "worker", "frozen"])
def test_tab_away_across_an_episode_boundary(mode):
    cfg = SessionConfig(input_delay=2, max_prediction=8, episodes=3)
    make = coin_chase(60)  # episodes end at 2 s, 4 s, 6 s
    span = AwaySpan(1, 1000, 3000, mode)
    result = run_peers(make, cfg, link=LinkSpec(latency_ms=40, jitter_ms=10), away=[span], seed=11)
    p0, p1 = result.peers
    away_frames = [r.global_frame for r in p0.records if r.away[1]]
    assert away_frames, "seat 1's away frames are in the records"
    episodes_touched = {p0.records[g].episode for g in away_frames}
    assert len(episodes_touched) >= 2, "the away span crosses an episode boundary"
    assert not any(r.away[0] for r in p0.records)
    assert all(p0.records[g].inputs[1] == 0 for g in away_frames)  # the declared default
    if mode != "frozen":  # a frozen tab announces nothing until it thaws
        assert events_of(p0, PeerAway) and events_of(p0, PeerBack)
        assert events_of(p0, PeerAway)[0].frame == away_frames[0]
    if mode == "hidden":
        assert p1.session.stats["fast_forward_frames"] > 0 and events_of(p1, FastForward)
        # once the 1 Hz ticking is seen, the lease covers it: the present peer waits at most about one gap
        assert p0.session.stats["stall_ticks"] <= cfg.fps * 1.2
    if mode == "frozen":
        assert p1.session.stats["fast_forward_frames"] > 0
    assert all(p.outcome == "complete" for p in result.peers)
    assert_parity(result, make, cfg)


def test_fast_forward_executes_exactly_the_announced_inputs():
    cfg = SessionConfig(input_delay=2, max_prediction=8, episodes=1, max_frames_per_tick=5)
    make = coin_chase(200)
    sent: dict[int, int] = {}

    class Recording(Network):
        def send(self, now_ms, src, dst, data):
            if src == 1 and data[2] == 2:
                msg = decode(data)
                for i, v in enumerate(msg.values):
                    sent.setdefault(msg.start + i, v)
            super().send(now_ms, src, dst, data)

    net = Recording(seed=12, default=LinkSpec(latency_ms=30))
    result = run_peers(make, cfg, network=net, away=[AwaySpan(1, 2000, 4000, "frozen")],
                       policy=random_policy(12, (1, 3)), seed=12)
    p1 = result.peers[1]
    ff = events_of(p1, FastForward)
    assert ff and all(e.end - e.start <= 5 for e in ff)  # bounded chunks
    executed = {r.global_frame: r.inputs[1] | (0x8000 if r.away[1] else 0) for r in p1.records}
    ff_frames = [g for e in ff for g in range(e.start, e.end)]
    assert all(executed[g] == sent[g] for g in ff_frames)  # what ran is what was announced
    # after the few inputs sampled before the freeze, the catch-up plays the away default
    assert all(p1.records[g].away[1] for g in ff_frames[cfg.input_delay :])
    assert_parity(result, make, cfg)


def test_away_timeout_ends_cleanly_with_data_kept():
    cfg = SessionConfig(input_delay=1, episodes=1, away_timeout_ms=2000)
    make = coin_chase(600)
    result = run_peers(make, cfg, link=LinkSpec(latency_ms=30), away=[AwaySpan(1, 1000, 9000, "hidden")], seed=13)
    p0, p1 = result.peers
    for peer in (p0, p1):
        assert peer.outcome == "partial" and "away" in peer.session.end_reason
        assert peer.records and peer.records[-1].global_frame == len(peer.records) - 1
    assert result.common_prefix_identical()


# -- disconnect -----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("goodbye", [False, True])
def test_partner_disconnect_mid_episode(goodbye):
    cfg = SessionConfig(input_delay=1, max_prediction=8, episodes=2, disconnect_timeout_ms=1500)
    make = coin_chase(150)
    result = run_peers(make, cfg, link=LinkSpec(latency_ms=70), disconnect={1: (2500.0, goodbye)},
                       policy=random_policy(14, (1, 3)), seed=14)
    p0 = result.peers[0]
    ended = events_of(p0, SessionEnded)
    assert ended and ended[0].outcome == "partial"
    assert ("left" if goodbye else "disconnected") in ended[0].reason
    s = p0.session
    # every frame whose inputs were all known was confirmed, and nothing else
    assert len(p0.records) == min(s.queues.confirmed_count(), len(p0.records) + len(p0.tail))
    assert [r.global_frame for r in p0.records] == list(range(len(p0.records)))
    assert p0.tail and not any(r.confirmed for r in p0.tail) and all(r.confirmed for r in p0.records)
    assert p0.tail[0].global_frame == len(p0.records)
    assert any(r.speculative for r in p0.tail)
    assert 0 < len(p0.records) < 150
    assert result.common_prefix_identical()
    records = p0.records
    assert rows(replay(make(0), cfg, records).confirmed) == rows(records)


# -- desync and handshake -------------------------------------------------------------------------------------
@pytest.mark.parametrize("normal, divergent", [
    # same env id and version, different rules: a peer running a modified copy of the env
    (coin_chase(60), coin_chase(60, hazard_penalty=3)),
    (lambda seat: TinyGridGame(length=60), lambda seat: TinyGridGame(length=60, drift=1)),
])
def test_divergent_game_raises_desync(normal, divergent):
    cfg = SessionConfig(input_delay=1, episodes=1, hash_interval=10)
    s0, s1 = Session(normal(0), cfg, 0), Session(divergent(1), cfg, 1)
    result = run_peers(None, cfg, link=LinkSpec(latency_ms=30), sessions=[s0, s1], seed=15,
                       policy=random_policy(15, (1, 3)))
    for peer in result.peers:
        desyncs = events_of(peer, DesyncDetected)
        assert desyncs and peer.session.stats["desyncs"] == len(desyncs)
        assert all(peer.records[d.frame].desynced for d in desyncs)
        assert peer.session.log.desynced_frames == [d.frame for d in desyncs]
    assert not result.identical()


def test_corrupted_hash_is_detected_and_recorded():
    cfg = SessionConfig(input_delay=1, episodes=1, hash_interval=10)

    class Corrupting(Network):
        def send(self, now_ms, src, dst, data):
            if src == 1 and data[2] == 2:
                msg = decode(data)
                if msg.hash_frame >= 0:
                    data = encode(dataclasses.replace(msg, state_hash=bytes(8)))
            super().send(now_ms, src, dst, data)

    make = coin_chase(60)
    result = run_peers(make, cfg, network=Corrupting(seed=16, default=LinkSpec(latency_ms=30)), seed=16)
    p0, p1 = result.peers
    desyncs = events_of(p0, DesyncDetected)
    assert desyncs and all(d.remote_hash == "00" * 8 and d.seat == 1 for d in desyncs)
    assert {d.frame for d in desyncs} == {9, 19, 29, 39, 49, 59}
    assert all(p0.records[d.frame].desynced for d in desyncs)
    assert not events_of(p1, DesyncDetected)
    assert result.identical()  # the data itself never changed


def test_handshake_mismatch_in_the_harness():
    s0 = Session(TinyGridGame(), SessionConfig(), 0)
    s1 = Session(TinyGridGame(), SessionConfig(max_prediction=4), 1)
    result = run_peers(None, SessionConfig(), sessions=[s0, s1], seed=17)
    for peer in result.peers:
        assert peer.outcome == "partial" and "handshake" in peer.session.end_reason and not peer.records
    assert any(events_of(p, HandshakeFailed) for p in result.peers)


# -- the bundled example env ----------------------------------------------------------------------------------
def test_example_env_parity_under_latency_loss_and_away():
    env_cfg = {"players": 2, "max_steps": 90}
    make = lambda seat: load_game(COIN_CHASE, env_cfg)  # noqa: E731
    cfg = SessionConfig(input_delay=2, max_prediction=8, episodes=2, seed=21)
    link = LinkSpec(latency_ms=90, jitter_ms=30, loss=0.1, duplicate=0.05, reorder=0.05)
    result = run_peers(make, cfg, link=link, away=[AwaySpan(0, 1500, 3500, "frozen")], seed=21)
    assert result.total("rollbacks") > 0 and result.network["lost"] > 0
    assert result.peers[0].session.stats["fast_forward_frames"] > 0
    assert all(p.outcome == "complete" for p in result.peers)
    assert len(result.peers[0].records) == 180
    assert_parity(result, make, cfg)


# -- time sync and bandwidth ----------------------------------------------------------------------------------
def test_time_sync_holds_back_a_peer_whose_clock_runs_fast():
    cfg = SessionConfig(input_delay=1, max_prediction=8, episodes=1)
    make = coin_chase(450)
    gaps = []

    def watch(seat, now, session):
        if seat == 1 and session.started:
            gaps.append(session.frame - result_frames[0])
        result_frames[seat] = session.frame

    result_frames = [0, 0]
    result = run_peers(make, cfg, link=LinkSpec(latency_ms=60), clock_rate=[1.0, 1.08], seed=18, on_tick=watch)
    fast, slow = result.peers[1].session.stats, result.peers[0].session.stats
    assert fast["time_sync_skips"] > 10 and slow["time_sync_skips"] <= fast["time_sync_skips"] // 4
    # 8% drift over 15 s would put the fast peer 36 frames ahead; time sync keeps it near the other
    assert max(gaps[-100:]) <= cfg.max_prediction + 4
    assert_parity(result, make, cfg)


def test_input_traffic_stays_under_2_kb_per_second_per_player():
    cfg = SessionConfig(input_delay=2, episodes=1)
    make = coin_chase(600)  # 20 s
    result = run_peers(make, cfg, link=LinkSpec(latency_ms=80, jitter_ms=20, loss=0.02), seed=19,
                       policy=random_policy(19, (1, 3)))
    seconds = result.end_ms / 1000
    for peer in result.peers:
        assert peer.session.stats["bytes_sent"] / seconds < 1500
    assert result.identical()


def test_late_joiner_waits_in_the_handshake():
    cfg = SessionConfig(input_delay=2, episodes=1)
    make = coin_chase(60)
    result = run_peers(make, cfg, link=LinkSpec(latency_ms=50), start_ms=[0.0, 2500.0], seed=20)
    p0, p1 = result.peers
    started = [next(e.now_ms for e in p.events if isinstance(e, Started)) for p in (p0, p1)]
    assert started[0] >= 2500 and started[1] >= 2500  # nobody runs frames alone
    assert p0.ticks > p1.ticks + 60  # seat 0 ticked through the wait
    assert all(p.outcome == "complete" for p in result.peers)
    assert_parity(result, make, cfg)


def test_lost_goodbyes_do_not_hold_a_finished_peer_hostage():
    """Every goodbye is dropped and the partner is away at the end: the finished peer still completes soon."""
    cfg = SessionConfig(input_delay=1, episodes=1, disconnect_timeout_ms=1500)

    class NoGoodbyes(Network):
        def send(self, now_ms, src, dst, data):
            if data[2] != 3:  # goodbye packets vanish
                super().send(now_ms, src, dst, data)

    make = coin_chase(90)  # 3 s
    net = NoGoodbyes(seed=22, default=LinkSpec(latency_ms=40))
    result = run_peers(make, cfg, network=net, away=[AwaySpan(1, 1500, 60_000, "worker")], seed=22)
    assert any(r.away[1] for r in result.peers[0].records)
    assert all(p.outcome == "complete" for p in result.peers)
    assert result.end_ms < 3000 + 1500 + 1500  # handshake, play, then at most one disconnect timeout
    assert_parity(result, make, cfg)


# -- the hold between episodes --------------------------------------------------------------------------------
@pytest.mark.parametrize("seed", [4, 5])
def test_hold_between_episodes_under_rollbacks_keeps_the_data_identical(seed):
    """Episodes end on a scoring move, so a late input can move (or undo) a speculative episode end; each peer
    still holds once per new episode, for between_episodes_ms of wall time, and both export the same bytes."""
    import json

    from pyodide_runtime.export import ExportContext, write_bundle
    from pyodide_runtime.export.bundle import open_bundle

    hold_ms = 800
    cfg = SessionConfig(input_delay=0, max_prediction=10, episodes=3, between_episodes_ms=hold_ms)
    make = coin_chase(150, target_score=2)
    frozen: list[dict[int, list[tuple[float, int]]]] = [{}, {}]

    def on_tick(seat, now, session):
        hold = session.holding(now)
        if hold is not None:
            frozen[seat].setdefault(hold[0], []).append((now, session.frame))

    result = run_peers(make, cfg, link=LinkSpec(latency_ms=120, jitter_ms=40, loss=0.1),
                       policy=random_policy(seed, (1, 3)), seed=seed, on_tick=on_tick)
    assert result.total("rollbacks") > 0
    for seat, peer in enumerate(result.peers):
        assert peer.outcome == "complete"
        assert peer.session.stats["between_episode_holds"] == 2
        assert sorted(frozen[seat]) == [1, 2]
        for ticks in frozen[seat].values():
            assert len({frame for _, frame in ticks}) == 1, "no frame is simulated during the hold"
            assert ticks[-1][0] - ticks[0][0] >= hold_ms - 2 * cfg.frame_ms
    assert_parity(result, make, cfg)
    digests = []
    for peer in result.peers:
        ctx = ExportContext.from_session(peer.session, study="hold", session_id="s", participant=f"p{peer.seat}")
        manifest = json.loads(open_bundle(write_bundle(peer.session.log, ctx))["manifest.json"])
        digests.append(manifest["canonical_digest"])
    assert digests[0] == digests[1]
