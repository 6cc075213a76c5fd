"""The study run of `bench browser` without a browser: its arguments, its study copy and its statistics."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from pyodide_runtime.host.benchmarks import study_stats as S
from pyodide_runtime.host.benchmarks.study import prepare_study, seat_figures, toml_dumps
from pyodide_runtime.host.cli import main

STUDIES = Path(__file__).resolve().parent / "studies"


# -- arguments ----------------------------------------------------------------------------------------------------

def test_one_value_applies_to_every_seat_and_a_list_gives_one_per_seat():
    assert S.per_seat("25", 2, "--latency-ms") == [25.0, 25.0]
    assert S.per_seat("25,40", 2, "--latency-ms") == [25.0, 40.0]
    assert S.per_seat("0", 3, "--jitter-ms") == [0.0, 0.0, 0.0]


@pytest.mark.parametrize("text, words", [
    ("25,25,25", "3 values but the study has 2 seats"),
    ("25,", "empty value"),
    ("fast", "'fast' is not a number"),
    ("-5", "must be a number of milliseconds >= 0"),
    ("nan", ">= 0"),
])
def test_bad_per_seat_values_are_refused_with_the_fix(text, words):
    with pytest.raises(S.ArgumentError, match=words):
        S.per_seat(text, 2, "--latency-ms")


def test_condition_sets_split_runs_on_slashes_and_share_one_jitter():
    runs = S.condition_sets("25/50,50/75", "10", 2)
    assert runs == [([25.0, 25.0], [10.0, 10.0]), ([50.0, 50.0], [10.0, 10.0]), ([75.0, 75.0], [10.0, 10.0])]
    assert S.condition_sets("25", "5,10", 2) == [([25.0, 25.0], [5.0, 10.0])]
    with pytest.raises(S.ArgumentError, match="2 runs"):
        S.condition_sets("25/50/75", "10/20", 2)
    with pytest.raises(S.ArgumentError, match="jitter 30 ms is larger than latency 25 ms"):
        S.condition_sets("25", "30", 2)


@pytest.mark.parametrize("argv, words", [
    (["--example", "coin_chace"], "did you mean 'coin_chase'"),
    (["--example", "coin_chase", "--latency-ms", "25,25,25"], "has 3 values but the study has 2 seats"),
    (["--example", "coin_chase", "--fps", "30,60"], "one frame rate"),
    (["--example", "coin_chase", "--seconds", "5", "--warmup", "6"], "shorter than --seconds"),
    (["--config", "no/such/study.toml"], "no such file"),
])
def test_the_command_refuses_bad_arguments_before_starting_anything(argv, words, capsys):
    assert main(["bench", "browser", *argv]) == 2
    assert words in capsys.readouterr().err


# -- the study copy ----------------------------------------------------------------------------------------------

def test_toml_dumps_round_trips_through_tomllib():
    data = {"title": 'A "quoted" \\ title', "test_mode": True, "env": {"spec": "x.py:f", "packages": ["a==1"],
            "config": {"max_steps": 9, "ratio": 0.5, "layout": {"w": 3}}},
            "controls": {"ArrowUp": 1, "odd key": 2}, "network": {"seats": {"0": {"latency_ms": 25.0}}}}
    assert tomllib.loads(toml_dumps(data)) == data


def test_the_study_copy_turns_test_mode_on_and_sets_fps_length_and_per_seat_conditions(tmp_path):
    config, changes = prepare_study(STUDIES / "overcooked_cogrid" / "study.toml", tmp_path, fps=30, seconds=35,
                                    latency=[25.0, 50.0], jitter=[10.0, 0.0])
    raw = tomllib.loads(config.read_text())
    assert (config.parent / "overcooked.py").is_file()  # the env's files came along
    assert raw["test_mode"] is True and raw["session"]["fps"] == 30 and raw["session"]["episodes"] == 1
    assert raw["env"]["config"]["max_steps"] == 1050 == changes["env.config.max_steps"]
    assert raw["env"]["packages"] == ["cogrid==0.3.2"]
    assert raw["network"]["seats"]["1"] == {"latency_ms": 50.0, "jitter_ms": 0.0, "seed": 102}
    assert raw["network"]["seats"]["0"]["latency_ms"] == 25.0


# -- statistics ------------------------------------------------------------------------------------------------

def test_percentiles_are_nearest_rank():
    assert S.percentiles(range(1, 101)) == {"p50": 50.0, "p95": 95.0, "p99": 99.0}
    assert S.percentiles([7.0]) == {"p50": 7.0, "p95": 7.0, "p99": 7.0}
    assert S.percentiles([]) == {"p50": None, "p95": None, "p99": None}
    assert S.percentiles([1, 1, 1, 1, 1, 1, 1, 1, 1, 100]) == {"p50": 1.0, "p95": 100.0, "p99": 100.0}


def test_histogram_counts_each_depth_in_order():
    assert S.histogram([2, 1, 2, 8, 2]) == {"1": 1, "2": 3, "8": 1}
    assert S.histogram([]) == {}


def test_fps_held_leaves_out_the_warm_up_and_sees_a_slowdown():
    slow_start = [i * 100.0 for i in range(20)]  # 2 s at 10 fps
    steady = [2000.0 + i * 1000 / 30 for i in range(1, 301)]  # then 10 s at 30 fps
    held = S.fps_held(slow_start + steady, warmup_ms=2000)
    assert held["fps"] == pytest.approx(30.0, abs=0.01) and held["frames"] == 300
    # Without a warm-up: every frame after the first one, over the whole 12 s.
    assert S.fps_held(slow_start + steady, warmup_ms=0)["fps"] == pytest.approx(319 / 12, abs=0.01)
    # Frames confirmed in bursts (several per tick) count the same.
    bursts = [t for k in range(100) for t in [k * 100.0] * 3]
    assert S.fps_held(bursts, warmup_ms=0)["fps"] == pytest.approx(297 / 9.9, abs=0.01)
    assert S.fps_held([1.0], 0)["fps"] is None and S.fps_held([0.0, 10.0], 50)["fps"] is None


def test_stalls_are_gaps_longer_than_the_threshold():
    first = [0, 33, 66, 300, 333, 366, 466, 500]
    out = S.stalls(first, 100)
    assert out["count"] == 1 and out["max_ms"] == 234 and out["total_ms"] == 234
    assert S.stalls(first, 99)["count"] == 2
    assert S.stalls([], 100)["count"] == 0


def test_tick_windows_turn_cumulative_counters_into_tick_weighted_percentiles():
    samples = [(8, 16.0), (16, 32.0), (17, 132.0), (17, 132.0), (25, 148.0)]  # one 100 ms tick
    windows = S.tick_windows(samples)
    assert windows == [(8, 2.0), (8, 2.0), (1, 100.0), (8, 2.0)]
    dist = S.tick_distribution(windows)
    assert dist["ticks"] == 25 and dist["windows"] == 4 and dist["single_tick_windows"] == 1
    assert dist["p50"] == 2.0 and dist["p95"] == 2.0 and dist["p99"] == 100.0


def test_seat_figures_combine_the_bundle_and_the_page():
    period = 1000 / 30
    frames = [{"global_frame": str(i), "first_ms": str(i * period + (400 if i >= 200 else 0)),
               "confirmed_ms": str(i * period + 50 + (400 if i >= 200 else 0))} for i in range(300)]
    bundle = {"meta": {"participant_local": {"seat": 1, "stats": {"frames_simulated": 310},
                                            "tick_intervals": {"median_ms": 33.3}}},
              "frames": frames, "rollbacks": [{"depth": "2"}, {"depth": "8"}]}
    # Status rows: [page ms, frame, confirmed, tick count, tick total ms, tick max]; warm-up is 3 s = 90 frames.
    # Ticks cost 50 ms up to frame 88, then 3 ms (cumulative totals).
    status_rows = [[i * 8 * period, i * 8, i * 8, i * 8, min(i * 8, 88) * 50.0 + max(0, i * 8 - 88) * 3.0, 50.0]
                   for i in range(1, 38)]
    page = {"status": status_rows, "long": [[10.0, 60.0], [5000.0, 80.0]]}
    part = lambda p50, mean: {"count": 300, "p50": p50, "mean_ms": mean}  # noqa: E731
    status = {"tick_cost_ms": {"count": 300, "mean": 4.0, "max": 50.0, "p50": 3.05, "p95": 3.1, "p99": 50.0},
              "outcome": "complete", "stalls": 1,
              "tick_parts_ms": {"ticks": 300, "env_step_per_frame_ms": 0.9, "clock_resolution_ms": 0.1,
                                "parts": {"env_step": part(0.9, 1.0), "session": part(0.5, 0.6),
                                          "convert": part(0.2, 0.25)}},
              "main_thread_ms": {"per_tick_mean_ms": 0.8, "per_frame": {"p50": 0.7, "p95": 1.5}}}
    page["main"] = {"message_ms": 150.0, "messages": 400, "raf_ms": 90.0, "rafs": 290}
    out = seat_figures(bundle, page, status, fps=30, warmup_s=3.0)
    assert out["seat"] == 1 and out["confirmed_frames"] == 300
    assert out["rollback_depth_histogram"] == {"2": 1, "8": 1} and out["resimulated_frames"] == 10
    assert out["stalls"]["count"] == 1 and out["stalls"]["max_ms"] == pytest.approx(433.3, abs=0.1)
    assert out["fps_held"] == pytest.approx(209 / ((299 * period + 400 - 3000) / 1000), abs=0.01)
    assert out["long_tasks"] == {"count": 1, "max_ms": 80.0, "total_ms": 80.0, "boot_count": 1}
    assert out["tick_ms"]["max"] == 50.0 and out["tick_ms"]["mean"] == 4.0
    # The percentiles are the worker's own, over every tick.
    assert (out["tick_ms"]["p50"], out["tick_ms"]["p95"], out["tick_ms"]["p99"]) == (3.05, 3.1, 50.0)
    assert out["tick_ms"]["ticks"] == 300 and "windows" not in out["tick_ms"]["method"]
    assert out["tick_parts_ms"]["p50"] == {"env_step": 0.9, "session": 0.5, "convert": 0.2}
    assert out["tick_parts_ms"]["mean"]["convert"] == 0.25 and out["tick_parts_ms"]["env_step_per_frame_ms"] == 0.9
    assert out["worker_overhead_ms"] == {"p50": pytest.approx(2.15), "mean": pytest.approx(3.0)}
    main_thread = out["main_thread_ms"]
    assert (main_thread["p50"], main_thread["p95"], main_thread["per_tick_mean"]) == (0.7, 1.5, 0.8)
    assert main_thread["recorded_per_tick_mean"] == pytest.approx(240 / 300)
    assert out["status_messages"] == len(status_rows)
    assert out["tick_ms_per_simulated_frame"] == pytest.approx(1200 / 310, abs=0.01)
    # A page that reports no parts (an older page): the figures say so instead of failing.
    bare = seat_figures(bundle, page | {"main": {}}, {"tick_cost_ms": {"count": 0}}, fps=30, warmup_s=3.0)
    assert bare["worker_overhead_ms"] == {"p50": None, "mean": None}
    assert bare["main_thread_ms"]["p50"] is None and bare["main_thread_ms"]["recorded_per_tick_mean"] is None
    # Steady part: frames 88 -> 296 advanced, 208 ticks at 3 ms each.
    assert out["steady_tick_ms_per_frame"] == pytest.approx(3.0, abs=0.01)


def test_seat_figures_say_which_input_delay_held_for_how_many_frames():
    from pyodide_runtime.host.benchmarks.study import _input_delay

    config = {"input_delay": 2, "adaptive_delay": True}
    changes = [{"frame": 40, "delay": 3, "rtt_ms": 95.0}, {"frame": 70, "delay": 4, "rtt_ms": 130.0},
               {"frame": 250, "delay": 3, "rtt_ms": 90.0}]
    out = _input_delay({"canonical": {"config": config}}, {"input_delay": 3, "input_delays": changes}, 300)
    assert out["adaptive"] and out["start"] == 2 and out["final"] == 3 and out["changes"] == 3
    assert out["frames_at"] == {"2": 40, "3": 30 + 50, "4": 180}
    assert sum(out["frames_at"].values()) == 300 and out["history"] == changes
    fixed = _input_delay({"canonical": {"config": {"input_delay": 2}}}, {}, 300)
    assert fixed == {"adaptive": False, "start": 2, "final": 2, "frames_at": {"2": 300}}


def test_without_a_study_bench_browser_runs_the_default_suite_as_before(monkeypatch, tmp_path):
    from types import SimpleNamespace

    from pyodide_runtime.host import assets
    from pyodide_runtime.host.benchmarks import browser

    seen = {}

    def fake_suite(workdir, assets_root, **kw):
        seen.update(kw)
        return {"play": [], "away": []}

    monkeypatch.setattr(browser, "bench_browser", fake_suite)
    monkeypatch.setattr(assets, "open_assets", lambda path: SimpleNamespace(root=tmp_path))
    out = tmp_path / "r.json"
    assert main(["bench", "browser", "--workdir", str(tmp_path), "--json", str(out)]) == 0
    assert seen["fps"] == (30, 60) and seen["seconds"] == 20.0 and seen["away"] == (10.0, 60.0)
    assert '"suite": "browser"' in out.read_text() and '"seconds": 20.0' in out.read_text()


def _heavy_rows(data: dict, adaptive: bool) -> list[str]:
    """The rows docs/performance.md shows for a heavy-env result file (the adaptive table adds the delays)."""
    rows = []
    for run in data["runs"]:
        assert run["identical"] is True and run["valid"] == [True, True]
        for i, s in enumerate(run["seats"]):
            t, st, lt = s["tick_ms"], s["stalls"], s["long_tasks"]
            depths = ", ".join(f"{k}: {v}" for k, v in s["rollback_depth_histogram"].items())
            stall = f"{st['count']} ({st['max_ms']:.1f} ms)" if st["count"] else "0"
            longs = f"{lt['count']} ({lt['max_ms']:.0f} ms)" if lt["count"] else "0"
            exports = " identical, valid |" if i == 0 else " |"
            delays = ""
            if adaptive:
                held = ", ".join(f"{k}: {v}" for k, v in s["input_delay"]["frames_at"].items())
                delays = f" {s['input_delay']['final']} ({held}) |"
            rows.append(f"| {run['rtt_ms']:g} ± {sum(run['jitter_ms']):g} | {s['seat']} | {s['fps_held']:.2f} | "
                        f"{t['p50']:.2f} / {t['p95']:.2f} / {t['p99']:.2f} / {t['max']:.1f} | "
                        f"{s['steady_tick_ms_per_frame']:.2f} | {s['rollbacks']} ({depths}) | "
                        f"{s['resimulated_per_s']:.2f} | {stall} | {longs} |{delays}{exports}")
    return rows


def test_the_heavy_env_tables_in_the_docs_are_the_result_files():
    import json

    root = Path(__file__).resolve().parents[1]
    text = (root / "docs" / "performance.md").read_text()
    section = text.split("## Heavy envs at real latency", 1)[1]
    for name, adaptive in (("browser-heavy.json", False), ("browser-heavy-adaptive.json", True)):
        data = json.loads((root / "benchmarks" / "results" / name).read_text())
        assert data["machine"]["load_1min"] is not None and data["machine_after"]["load_1min"] is not None
        assert all(s["input_delay"]["adaptive"] is adaptive for run in data["runs"] for s in run["seats"])
        for row in _heavy_rows(data, adaptive):
            assert row in section, row
        assert f"load {data['machine']['load_1min']:.2f} before" in section
    data = json.loads((root / "benchmarks" / "results" / "browser-heavy.json").read_text())
    f = data["step_floor"]["step_ms"]
    assert f"p50 {f['p50']} ms, p95 {f['p95']} ms, p99 {f['p99']} ms, max {f['max']} ms ({f['count']} steps" in section


PART_LABELS = {"session": "session (engine, without the env)", "env_step": "env step", "snapshot": "snapshots",
               "export": "export encoding", "checkpoint": "checkpoints", "render": "render payload",
               "bridge": "rest of the bridge (HUD, events, routing)", "convert": "JS↔Python conversions",
               "post": "posting to the main thread and transport", "status": "status"}


def _tick_part_rows(data: dict) -> list[str]:
    """The rows docs/performance.md shows for a study run's tick parts (one run, a column per seat)."""
    (run,) = data["runs"]
    seats = run["seats"]

    def cells(f) -> str:
        return " | ".join(f(x) for x in seats)

    rows = [f"| {label} | " + cells(lambda x, n=name: f"{x['tick_parts_ms']['p50'][n]:.2f} / "
                                                   f"{x['tick_parts_ms']['mean'][n]:.3f}") + " |"
            for name, label in PART_LABELS.items()]
    rows.append("| **worker tick** p50 / p95 / p99 | " + cells(
        lambda x: f"{x['tick_ms']['p50']:.2f} / {x['tick_ms']['p95']:.2f} / {x['tick_ms']['p99']:.2f}") + " |")
    rows.append("| **worker overhead above the env step** p50 / mean | " + cells(
        lambda x: f"{x['worker_overhead_ms']['p50']:.2f} / {x['worker_overhead_ms']['mean']:.3f}") + " |")
    rows.append("| **main thread per painted frame** p50 / p95 | " + cells(
        lambda x: f"{x['main_thread_ms']['p50']:.2f} / {x['main_thread_ms']['p95']:.2f}") + " |")
    return rows


def test_the_tick_parts_table_in_the_docs_is_the_result_file():
    import json

    root = Path(__file__).resolve().parents[1]
    data = json.loads((root / "benchmarks" / "results" / "browser-coin-chase.json").read_text())
    (run,) = data["runs"]
    assert run["identical"] is True and run["valid"] == [True, True]
    section = (root / "docs" / "performance.md").read_text().split("## The page's own cost per tick", 1)[1]
    section = section.split("\n## ", 1)[0]
    for row in _tick_part_rows(data):
        assert row in section, row
    assert f"load {data['machine']['load_1min']:.1f} before, {data['machine_after']['load_1min']:.1f} after" in section
