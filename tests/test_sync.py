"""Input queues, prediction, the rollback timeline and time sync, exercised directly."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pyodide_runtime.host.testing.games import TinyGridGame
from pyodide_runtime.host.testing.games import TinyGridGame as CoinGame
from pyodide_runtime.canonical import canonical_bytes
from pyodide_runtime.config import SessionConfig
from pyodide_runtime.framelog import FrameLog
from pyodide_runtime.protocol.messages import AWAY_BIT
from pyodide_runtime.sync import InputQueues, TimeSync, Timeline, make_predictor


def _timeline(config, game=None, policy="repeat"):
    queues = InputQueues((0,) * config.players, config.input_delay)
    log = FrameLog(config.frame_hash, config.hash_interval)
    stats = {"rollbacks": 0, "resimulated_frames": 0, "max_rollback_depth": 0}
    tl = Timeline(game or CoinGame(players=config.players, length=25), config, queues, log,
                  make_predictor(policy, queues.defaults), stats)
    tl.start(0.0)
    return tl


def _rows(log):
    return [canonical_bytes(r.canonical()) for r in log.confirmed]


def test_queues_accept_fill():
    q = InputQueues((0, 2), input_delay=2, counts=(5, 5))
    assert q.count(0) == 2 and q.get(1, 1) == 2 and q.confirmed_count() == 2
    assert q.accept(1, 2, (3, 4), limit=100) == (2, 4)
    assert q.accept(1, 3, (4, 1), limit=100) == (4, 5)  # overlapping resend adds only the new frame
    assert q.accept(1, 2, (3, 4), limit=100) == (5, 5)  # nothing new
    assert q.accept(1, 2, (3, 0), limit=100) == "conflict"
    assert q.accept(1, 9, (1,), limit=100) == "out_of_window"  # a gap
    assert q.accept(1, 5, (1, 1), limit=6) == "out_of_window"  # past the limit
    assert q.accept(1, 5, (5,), limit=100) == "invalid_input"  # no such action
    assert q.accept(1, 5, (AWAY_BIT | 1,), limit=100) == "invalid_input"  # away plays the default only
    assert q.accept(1, 5, (AWAY_BIT | 2, 1), limit=100) == (5, 7)
    assert q.values(1, 0, 10) == [2, 2, 3, 4, 1, AWAY_BIT | 2, 1] and q.last(1) == 1
    q.fill(0, 3, 4)
    assert q.values(0, 0, 10) == [0, 0, 4, 4] and q.confirmed_count() == 4
    q.fill(0, 2, 1)  # known inputs are final
    assert q.at(3) == [4, 4] and q.at(7) == [-1, -1] and q.get(0, 5) is None


def test_predictors():
    repeat = make_predictor("repeat", (0, 3))
    assert repeat(1, 10, None) == 3 and repeat(1, 10, 4) == 4
    assert make_predictor("default", (0, 3))(1, 10, 4) == 3
    custom = make_predictor(lambda seat, frame, last: (frame + seat) % 5, (0, 0))
    assert custom(1, 3, None) == 4
    with pytest.raises(ValueError):
        make_predictor("psychic", (0,))


@settings(max_examples=40)
@given(seed=st.integers(0, 10_000), lag=st.integers(1, 8), window=st.integers(1, 10),
       policy=st.sampled_from(["repeat", "default"]))
def test_rollback_gives_the_same_confirmed_records_as_known_inputs(seed, lag, window, policy):
    """Late, mispredicted remote inputs end in exactly the records of a run that knew every input."""
    cfg = SessionConfig(input_delay=0, max_prediction=window, episodes=3)
    rng = random.Random(seed)
    script = [(rng.choice([0, 0, 1, 2, 3, 4]), rng.choice([0, 1, 1, 2, 3, 4])) for _ in range(200)]
    reference = _timeline(cfg, policy=policy)
    for a, b in script:
        if reference.finished:
            break
        reference.queues.append(0, a)
        reference.queues.append(1, b)
        reference.advance(0.0)
        reference.promote(0.0)

    tl = _timeline(cfg, policy=policy)
    delivered = 0
    f = 0
    while not (tl.finished and tl.log.confirmed_count == tl.frame):
        if f < len(script):
            tl.queues.append(0, script[f][0])
        # the remote input of frame f - lag arrives now
        while delivered <= f - lag or (f >= len(script) and delivered < len(script)):
            first, end = tl.queues.accept(1, delivered, (script[delivered][1],), limit=10_000)
            tl.check_inputs(1, first, end)
            delivered += 1
        tl.apply_rollback(0.0)
        if tl.can_advance():
            tl.advance(0.0)
        tl.promote(0.0)
        assert tl.frame - tl.queues.confirmed_count() <= window
        oldest = tl.oldest_snapshot()
        assert tl.snapshot_count <= window and (oldest is None or oldest >= tl.log.confirmed_count)
        f += 1
    assert tl.stats["rollbacks"] > 0 or policy == "default" and all(b == 0 for _, b in script[: tl.frame])
    assert _rows(tl.log) == _rows(reference.log)
    assert [s.canonical() for s in tl.log.episode_starts] == [s.canonical() for s in reference.log.episode_starts]
    assert len(tl.log.episode_starts) == 3


def test_stall_at_prediction_window():
    cfg = SessionConfig(input_delay=1, max_prediction=4)
    tl = _timeline(cfg)
    for _ in range(20):
        tl.queues.append(0, 1)
    steps = 0
    while tl.can_advance():
        tl.advance(0.0)
        steps += 1
    # frame 0 is known (input delay), so 1 + 4 predicted frames run before the stall
    assert steps == 5 and tl.frame == 5
    assert tl.queues.accept(1, 1, (2,), limit=100) == (1, 2)
    tl.check_inputs(1, 1, 2)
    assert tl.pending_rollback == 1
    rb = tl.apply_rollback(0.0)
    assert rb == (1, 4, (1,))
    assert tl.can_advance()


def test_snapshot_and_record_of_a_known_frame_are_not_taken():
    cfg = SessionConfig(input_delay=3, max_prediction=2)
    tl = _timeline(cfg)
    for _ in range(3):
        tl.advance(0.0)  # frames 0..2 carry the delay's default inputs, known to all
    assert tl.snapshot_count == 0
    assert not any(r.speculative for r in tl.log.speculative())
    tl.advance(0.0)
    assert tl.snapshot_count == 1


def test_away_bit_reaches_records_but_not_the_game():
    cfg = SessionConfig(input_delay=0, max_prediction=2)
    tl = _timeline(cfg)
    tl.queues.append(0, AWAY_BIT | 0)
    tl.queues.append(1, 3)
    rec = tl.advance(0.0)
    assert rec.inputs == (0, 3) and rec.away == (True, False)
    assert rec.actions == {"p0": 0, "p1": 3}


def test_time_sync_lead_is_half_the_difference():
    ahead, behind = TimeSync(), TimeSync()
    # peer A runs 6 frames ahead of B; one-way latency is 3 frames.
    for t in range(20):
        a_frame, b_frame = 100 + t + 6, 100 + t
        adv_b = behind.observe(b_frame, a_frame - 3, ahead.advantage)
        ahead.observe(a_frame, b_frame - 3, adv_b)
    assert ahead.lead() == pytest.approx(6.0)
    assert behind.lead() == pytest.approx(-6.0)
    ahead.reset()
    assert ahead.lead() == 0.0


def test_engine_benchmark_runs_and_reports_every_figure():
    from pyodide_runtime.host.benchmarks.timeline import measure_engine

    report = measure_engine(lambda: TinyGridGame(length=10**9), frames=200, repeats=1)
    names = {"bare", "bare_retain", "engine", "engine_full_hash", "resimulation"}
    assert set(report["us_per_frame"]) == names and set(report["ratio_to_bare"]) == names
    assert all(v > 0 for v in report["us_per_frame"].values())
    assert report["ratio_to_bare"]["bare"] == 1.0
    with pytest.raises(RuntimeError, match="longer episodes"):
        measure_engine(lambda: TinyGridGame(length=50), frames=200, repeats=1)
