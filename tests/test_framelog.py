"""Frame log: speculative buffer, one-time promotion, rollback discards, the hash chain and the tail."""

from __future__ import annotations

import pytest

from pyodide_runtime.framelog import CANONICAL_FIELDS, DIAGNOSTIC_FIELDS, EpisodeStart, FrameLog, FrameRecord


def rec(g, obs=0, episode=0, frame=None, over=False, speculative=True, ms=0.0):
    return FrameRecord(
        g, episode, g if frame is None else frame, (1, 2), (False, False), {"a": 1, "b": 2},
        {"a": [obs], "b": [obs]}, {"a": 0.5, "b": -0.0}, {"a": over, "b": over}, {"a": False, "b": False},
        {"a": {}, "b": {}}, over, speculative, ms,
    )


def test_promotion_is_once_and_in_order():
    log = FrameLog()
    log.add_episode_start(EpisodeStart(0, 11, 0, {"a": 0}, {}))
    for g in range(5):
        log.add(rec(g))
    out = log.promote(3, now_ms=7.0)
    assert [r.global_frame for r in out] == [0, 1, 2]
    assert all(r.confirmed_ms == 7.0 for r in out) and log.speculative_count == 2
    assert log.promote(3, 8.0) == []  # nothing promoted twice
    assert [r.global_frame for r in log.promote(10, 9.0)] == [3, 4]
    assert log.confirmed_count == 5 and log.episode_starts[0].confirmed_ms == 7.0


def test_out_of_order_promotion_is_refused():
    log = FrameLog()
    log.add(rec(1))
    with pytest.raises(RuntimeError, match="out of order"):
        log.promote(5, 0.0)


def test_rollback_discards_at_and_after_and_carries_diagnostics():
    log = FrameLog()
    for g in range(6):
        log.add(rec(g, ms=100.0 + g))
    log.add_episode_start(EpisodeStart(1, 5, 4, {}, {}))
    log.add_episode_start(EpisodeStart(2, 6, 6, {}, {}))
    assert log.discard_from(3) == 3
    assert [r.global_frame for r in log.speculative()] == [0, 1, 2]
    again = rec(3, obs=9, speculative=False, ms=500.0)
    log.add(again)
    # the replacement keeps the first simulation time, counts the resimulation and stays flagged speculative
    assert (again.first_ms, again.resimulated, again.speculative) == (103.0, 1, True)
    log.promote(10, 0.0)
    assert log.episode_starts == []  # both starts were after the rollback frame


def test_episode_start_kept_when_rollback_is_at_its_first_frame():
    log = FrameLog()
    log.add(rec(0, over=True))
    log.add_episode_start(EpisodeStart(1, 5, 1, {}, {}))
    log.add(rec(1, episode=1, frame=0))
    log.discard_from(1)
    log.add(rec(1, episode=1, frame=0))
    log.promote(2, 0.0)
    assert [s.episode for s in log.episode_starts] == [1]


@pytest.mark.parametrize("mode", ["sampled", "full"])
def test_hash_chain_depends_on_canonical_content_only(mode):
    def build(obs_at_2, ms):
        log = FrameLog(mode, sample_every=3)
        for g in range(6):
            log.add(rec(g, obs=obs_at_2 if g == 2 else 0, ms=ms))
        log.promote(6, ms)
        return log

    base, other_times, changed = build(0, 1.0), build(0, 99.0), build(1, 1.0)
    assert [r.state_hash for r in base.confirmed] == [r.state_hash for r in other_times.confirmed]
    # frame 2 is a sampled frame ((2 + 1) % 3 == 0), so both modes see the changed observation
    assert base.hash_at(1) == changed.hash_at(1) and base.hash_at(2) != changed.hash_at(2)
    assert base.hash_at(5) != changed.hash_at(5) and base.hash_at(6) is None


def test_sampled_mode_skips_unsampled_observations_but_full_does_not():
    def last_hash(mode, obs_at_1):
        log = FrameLog(mode, sample_every=3)
        for g in range(3):
            log.add(rec(g, obs=obs_at_1 if g == 1 else 0))
        log.promote(3, 0.0)
        return log.hash_at(0), log.hash_at(1)

    assert last_hash("sampled", 0) == last_hash("sampled", 5)
    assert last_hash("full", 0)[1] != last_hash("full", 5)[1]


def test_tail_desync_and_canonical_split():
    log = FrameLog()
    for g in range(4):
        log.add(rec(g))
    log.promote(2, 0.0)
    log.mark_desync(1)
    log.close()
    assert [r.global_frame for r in log.unconfirmed_tail()] == [2, 3]
    assert log.speculative_count == 0 and log.desynced_frames == [1] and log.confirmed[1].desynced
    row = log.canonical_rows()[0]
    assert tuple(row) == CANONICAL_FIELDS and not set(DIAGNOSTIC_FIELDS) & set(row)
    assert set(log.confirmed[0].diagnostics()) == set(DIAGNOSTIC_FIELDS)
    with pytest.raises(ValueError):
        FrameLog("none")
