"""A short soak (a few simulated minutes of the ``bench soak`` session): faults happen, parity holds, and the
structures that must not grow with session length stay bounded while memory grows only per confirmed frame."""

from __future__ import annotations

import pytest

from pyodide_runtime.host.benchmarks.soak import BOUNDED, fault_schedule, run_soak
from pyodide_runtime.config import SessionConfig


@pytest.fixture(scope="module")
def soak() -> dict:
    return run_soak(minutes=4, seed=3, sample_every_s=10)


def test_faults_happened_and_both_peers_complete_with_identical_data(soak):
    faults = soak["faults"]
    assert faults["partitions"] >= 1 and faults["network"]["outage_drops"] > 0
    assert len(faults["away_spans"]) >= 2
    assert faults["network"]["lost"] > 0 and faults["network"]["duplicated"] > 0 and faults["network"]["reordered"] > 0
    assert faults["rollbacks"] > 0 and faults["fast_forward_frames"] > 0
    assert soak["outcomes"] == ["complete", "complete"]
    assert soak["identical"]
    assert soak["confirmed_frames"] == [4 * 60 * 30] * 2


def test_bounded_structures_stay_within_the_prediction_window(soak):
    cfg = SessionConfig()
    window = cfg.max_prediction + cfg.max_frames_per_tick + cfg.input_delay
    peaks = soak["bounded_peaks"]
    assert set(peaks) == set(BOUNDED)
    assert peaks["snapshots"] <= window and peaks["speculative"] <= window and peaks["used_inputs"] <= window
    assert peaks["remote_hashes"] <= 64  # the session's own cap on hashes waiting for comparison
    # Every sample after the first minute stays under the peaks seen in the first minute plus the window: no
    # drift upwards with session length.
    samples = soak["samples"]
    early = [s for s in samples if s["virtual_s"] <= 60]
    late = [s for s in samples if s["virtual_s"] > 60]
    assert early and late
    for key in ("snapshots", "speculative", "used_inputs", "in_flight"):
        assert max(s[key] for s in late) <= max(s[key] for s in early) + window, key


def test_memory_grows_per_confirmed_frame_only(soak):
    mem = soak["memory"]
    # Records and inputs are kept by design: a steady cost per frame, the same early and late in the session.
    assert 500 < mem["bytes_per_frame"] < 20_000
    assert abs(mem["bytes_per_frame_second_half"] - mem["bytes_per_frame_first_half"]) < 0.25 * mem["bytes_per_frame"]
    # Around that line, what is left (snapshots, queues, packets) stays within a few hundred frames' worth.
    assert mem["residual_range_bytes"] < 300 * mem["bytes_per_frame"]


def test_fault_schedule_spreads_every_kind_over_the_hour():
    partitions, away = fault_schedule(60, 0)
    assert len(partitions) >= 10 and all(1_000 <= b - a <= 3_000 for a, b in partitions)
    assert {a.mode for a in away} == {"hidden", "worker", "frozen"} and {a.seat for a in away} == {0, 1}
    assert max(a.end_ms for a in away) < 60 * 60_000
