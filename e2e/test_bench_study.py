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
        assert "0.05 ms buckets" in tick["method"] and "window" not in tick["method"], "the worker's own percentiles"
        # Where the ticks went: every part reported, none negative, and the Python parts plus the conversions make
        # up the tick (their means add up to the tick's mean, give or take the rounding and the clock).
        parts = seat["tick_parts_ms"]
        python = {"session", "env_step", "snapshot", "hosted", "export", "checkpoint", "render", "bridge"}
        assert set(parts["p50"]) == set(parts["mean"]) == python | {"convert", "post", "status"}
        assert all(v is not None and v >= 0 for v in [*parts["p50"].values(), *parts["mean"].values()])
        assert parts["mean"]["env_step"] > 0 and parts["env_step_per_frame_ms"] > 0
        assert parts["clock_resolution_ms"] in (0.005, 0.1)
        in_call = sum(parts["mean"][k] for k in python | {"convert"})
        assert in_call <= tick["mean"] + 0.1, (in_call, tick)
        overhead = seat["worker_overhead_ms"]
        assert overhead["p50"] == pytest.approx(tick["p50"] - parts["p50"]["env_step"], abs=1e-6)
        assert overhead["mean"] is not None and overhead["mean"] <= tick["mean"]
        main = seat["main_thread_ms"]
        assert main["p50"] is not None and 0 <= main["p50"] <= main["p95"]
        assert main["per_tick_mean"] >= 0 and main["recorded_per_tick_mean"] >= 0
        assert main["recorded"]["messages"] > 0 and main["recorded"]["rafs"] > 0
        # The status is built on a time basis, not per tick (nor on every rollback).
        assert 0 < seat["status_messages"] * 8 < tick["ticks"], (seat["status_messages"], tick["ticks"])
