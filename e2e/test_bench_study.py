"""`bench browser --example coin_chase --latency-ms 25 --fps 30`: a short study run in two real browsers."""

from __future__ import annotations

import json

import pytest
from players import run_cli

pytestmark = pytest.mark.browser


def test_bench_study_run_reports_both_seats_and_identical_exports(assets_dir, tmp_path):
    out = tmp_path / "study.json"
    done = run_cli("bench", "browser", "--example", "coin_chase", "--latency-ms", "25", "--jitter-ms", "5",
                   "--fps", "30", "--seconds", "8", "--warmup", "2", "--assets", str(assets_dir),
                   "--workdir", str(tmp_path / "work"), "--json", str(out), timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "[bench study]" in done.stderr  # progress goes to stderr
    data = json.loads(out.read_text())
    assert data["suite"] == "browser-study" and data["study"] == "coin_chase" and data["fps"] == 30
    assert data["machine"]["load_1min"] is not None
    (run,) = data["runs"]
    assert run["identical"] is True and run["valid"] == [True, True] and run["rtt_ms"] == 50
    assert [s["seat"] for s in run["seats"]] == [0, 1]
    for seat in run["seats"]:
        assert seat["outcome"] == "complete" and seat["confirmed_frames"] == 240
        assert seat["conditions"]["latency_ms"] == 25 and seat["conditions"]["jitter_ms"] == 5
        assert 0 < seat["fps_held"] < 40
        tick = seat["tick_ms"]
        assert tick["ticks"] > 0 and 0 < tick["p50"] <= tick["p95"] <= tick["p99"] <= tick["max"] + 1e-9
        assert sum(seat["rollback_depth_histogram"].values()) == seat["rollbacks"]
        assert seat["resimulated_per_s"] is not None and seat["stalls"]["threshold_ms"] == 100
        assert seat["long_tasks"]["count"] >= 0
