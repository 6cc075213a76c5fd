"""The core benchmark measures what it claims: real rollbacks and fast-forwards happen in its sessions.

These tests check the measurement, never the speed: performance is reported by `bench`, not asserted.
"""

from __future__ import annotations

import json

from pyodide_runtime.host.benchmarks.core import bench_env
from pyodide_runtime.host.cli import main


def test_example_env_bench_exercises_rollback_and_fast_forward():
    out = bench_env("example", frames=200, repeats=1)
    assert out["players"] == 2 and out["snapshot_method"] == "explicit"
    assert out["rollbacks"] > 0 and out["resimulated_frames"] > 0
    assert out["fast_forward_frames"] > 0
    for key in ("bare_step_us", "game_step_us", "engine_frame_us", "resim_frame_us", "fast_forward_fps"):
        assert out[key] > 0, key
    assert abs(out["engine_ratio"] - out["engine_frame_us"] / out["bare_step_us"]) < 0.01 * out["engine_ratio"]


def test_cartpole_bench_with_the_generic_fallback():
    out = bench_env("cartpole", frames=200, repeats=1, snapshot="pickle")
    assert out["players"] == 1 and out["snapshot_method"] == "pickle"
    assert out["resim_frame_us"] > 0 and "fast_forward_fps" not in out


def test_bench_cli_writes_json(tmp_path, capsys):
    target = tmp_path / "core.json"
    assert main(["bench", "core", "--frames", "150", "--repeats", "1", "--no-pyodide", "--json", str(target)]) == 0
    data = json.loads(target.read_text())
    assert [r["env"] for r in data["cpython"]] == ["example", "cartpole", "cartpole"]
    assert "engine/bare" in capsys.readouterr().out


def test_bench_cli_rejects_tiny_runs(capsys):
    assert main(["bench", "core", "--frames", "5", "--no-pyodide"]) == 2
    assert "--frames" in capsys.readouterr().err
