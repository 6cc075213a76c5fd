"""The frame-budget check: the deepest rollback a tick fits, judged only from figures measured in Pyodide."""

from __future__ import annotations

import math

import pytest

from pyodide_runtime.host import cli
from pyodide_runtime.host.checkenv import PASS, SKIP, WARN, CheckOptions, EnvTarget, run_checks
from pyodide_runtime.host.checkenv.budget import COMFORTABLE_DEPTH, check_frame_budget, frame_budget


def _pyodide(step_us: float, capture_us: float = 100.0, restore_us: float = 80.0) -> dict:
    return {"step_median_us": step_us, "capture_us": capture_us, "restore_us": restore_us}


@pytest.mark.parametrize("fps", [30, 60])
@pytest.mark.parametrize("step_us", [500.0, 5_000.0, 11_000.0, 40_000.0])
def test_the_depth_is_what_is_left_of_the_tick_after_the_restore_and_the_new_frame(fps, step_us):
    budget = frame_budget(step_us, 150.0, 90.0, fps)
    per_frame = step_us + 150.0
    left = 1e6 / fps - 90.0 - per_frame  # after the restore and the new frame
    assert budget["max_rollback_depth"] == math.floor(left / per_frame)
    # the depth it states fits, one frame more does not
    depth = budget["max_rollback_depth"]
    assert 90.0 + (depth + 1) * per_frame <= 1e6 / fps < 90.0 + (depth + 2) * per_frame


def test_a_heavy_env_in_pyodide_warns_with_the_depth_and_the_levers():
    result = check_frame_budget(None, _pyodide(11_000.0), fps=30)
    assert result.status == WARN
    assert result.details["max_rollback_depth"] < COMFORTABLE_DEPTH
    assert "a rollback of 1 frame" in result.message and "in Pyodide" in result.message
    assert "input_delay" in result.fix and "fps" in result.fix


def test_an_env_slower_than_a_frame_cannot_hold_the_rate():
    result = check_frame_budget(None, _pyodide(40_000.0), fps=30)
    assert result.status == WARN and "not even one frame fits" in result.message


def test_a_light_env_in_pyodide_passes_and_the_window_caps_the_depth():
    result = check_frame_budget({"step_us": 1.0, "capture_us": 1.0, "restore_us": 1.0}, _pyodide(50.0, 10.0, 10.0),
                                fps=60, window=6)
    assert result.status == PASS
    assert result.details["measured_in"] == "Pyodide"  # Pyodide's figures win over CPython's
    assert "the whole prediction window (6 frames)" in result.message


def test_cpython_figures_never_pass_but_can_warn():
    light = check_frame_budget({"step_us": 20.0, "capture_us": 5.0, "restore_us": 5.0}, None, fps=30)
    assert light.status == SKIP and "--pyodide" in light.message
    heavy = check_frame_budget({"step_us": 20_000.0, "capture_us": 50.0, "restore_us": 50.0}, None, fps=30)
    assert heavy.status == WARN and "in CPython" in heavy.message


def test_no_figures_is_said_and_not_judged():
    assert check_frame_budget(None, None, fps=30).status == SKIP


def test_run_checks_measures_the_step_and_judges_the_budget_at_the_given_rate():
    # at 100,000 fps a tick has 10 µs: no env fits, so the wiring from the cost check's step time is what warns
    options = CheckOptions(distances=(1,), sync_frames=40, rollout_frames=40, fps=100_000)
    report = run_checks(EnvTarget("pyodide_runtime.examples.coin_chase:make_env", {"players": 2}), options)
    cost = report.get("cost")
    assert cost.details["step_us"] > 0
    budget = report.get("frame-budget")
    assert budget.status == WARN and budget.details["fps"] == 100_000
    assert budget.details["measured_in"] == "CPython"
    assert budget.details["step_us"] == round(cost.details["step_us"], 1)


@pytest.mark.parametrize("fps", ["0", "500"])
def test_cli_refuses_a_frame_rate_out_of_range(fps, capsys):
    assert cli.main(["check-env", "pyodide_runtime.examples.coin_chase:make_env", "--fps", fps]) == 2
    assert f"--fps {fps}: must be between 1 and 240" in capsys.readouterr().err
