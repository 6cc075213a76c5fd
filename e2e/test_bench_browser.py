"""`bench browser` in a tiny configuration: two real players, one short session, a short freeze, the floor."""

from __future__ import annotations

import json

import pytest

from players import run_cli

pytestmark = pytest.mark.browser


def test_bench_browser_reports_boot_play_away_and_floor(assets_dir, tmp_path):
    out = tmp_path / "browser.json"
    done = run_cli("bench", "browser", "--assets", str(assets_dir), "--fps", "30", "--seconds", "4", "--away", "3",
                   "--loss", "0.2", "--memory-seconds", "6", "--no-second-visit", "--workdir", str(tmp_path / "work"), "--json", str(out), timeout=900)
    assert done.returncode == 0, done.stdout + done.stderr
    data = json.loads(out.read_text())
    assert data["suite"] == "browser" and data["machine"]["cpus"] >= 1
    (play,) = data["play"]
    for row in (play, data["loss"]):
        assert row["outcome"] == ["complete", "complete"]
        assert 0 < row["first_frame_s"] < 300
        assert 10 < row["fps_held"] < 60
        for t in row["timings_ms"]:
            assert t["pyodide_ms"] > 0 and t["packages_ms"] > 0 and t["env_ms"] > 0
        assert all(w["count"] > 0 and 0 < w["mean"] < w["max"] + 1e-9 for w in row["worker_tick_ms"])
        for parts, w in zip(row["tick_parts_ms"], row["worker_tick_ms"]):
            assert {"session", "env_step", "export", "render", "convert", "post", "status"} <= set(parts)
            assert all(p["mean"] >= 0 and p["p50"] >= 0 for p in parts.values())
            assert sum(p["mean"] for k, p in parts.items() if k not in ("post", "status")) <= w["mean"] + 0.1
        assert all(m["p50"] is not None and m["p50"] >= 0 and m["per_tick_mean"] >= 0 for m in row["main_thread_ms"])
        assert all(r["count"] > 0 for r in row["raf_interval_ms"])
        assert len(row["memory"]) >= 2
        for sample in row["memory"]:
            assert all(v and v > 0 for v in sample["js_heap_mb"] + sample["wasm_mb"])
        assert all(b and 100 < b < 100_000 for b in row["bytes_per_s"])
        assert row["export_after_last_frame_s"] >= 0
    assert data["loss"]["loss"] == 0.2
    (away,) = data["away"]
    assert away["fast_forward_frames"] > 0 and away["catch_up_s"] >= 0
    memory = data["memory"]
    assert memory["memory"][-1]["confirmed_frames"] > memory["memory"][0]["confirmed_frames"]
    assert all(v is not None for v in memory["growth"]["wasm_bytes_per_confirmed_frame"])
    floor = data["floor"]
    assert floor["pyodide_ms"] > 0 and floor["numpy_ms"] > 0
    assert floor["core"]["bare_step_us"] > 0 and floor["core"]["engine_ratio"] > 1
    assert data["first_frame_vs_floor"] > 0
    pages = data["floor_pair"]["pages"]
    assert len(pages) == 2 and all(p["pyodide_ms"] > 0 and p["packages_ms"] > 0 for p in pages)
    assert data["floor_pair"]["boot_ms"] == max(round(p["pyodide_ms"] + p["numpy_ms"] + p["packages_ms"], 1)
                                                for p in pages)
    assert data["first_frame_vs_floor_pair"] > 0
