"""A policy seat inside real Pyodide: the page's Python side of an AI partner gives CPython's export, bit for bit.

The model is a stand-in whose scores are exact integer arithmetic on the feeds' bytes
(:mod:`pyodide_runtime.host.testing.policy_play`), so any difference comes from the observation mapping (the
example's hook, mean and std), the runner, the hosted seat's session or the routing, as the page runs them.
"""

from __future__ import annotations

import pytest
from pyodide_support import pyodide_assets, run_in_pyodide  # noqa: F401 - fixtures

from pyodide_runtime.host.server.study import load_study, resolve_policies
from pyodide_runtime.host.study_config import example_config
from pyodide_runtime.host.testing.policy_play import play_with_stand_in_model

pytestmark = pytest.mark.pyodide
FRAMES = 150


def short_human_ai_onnx() -> dict:
    study = resolve_policies(load_study(None, example_config("human_ai_onnx"), "human_ai_onnx")).describe()
    study["config"]["session"]["episodes"] = 2
    study["config"]["env_config"]["max_steps"] = FRAMES
    return study


def test_a_policy_seat_plays_identically_inside_pyodide(run_in_pyodide):
    study = short_human_ai_onnx()
    native = play_with_stand_in_model(study)
    assert native["outcome"] == "complete" and native["confirmed_frames"] == 2 * FRAMES
    assert {"frames.csv", "resets.csv"} <= set(native["canonical_tables"])
    (seat,) = native["policies"]
    assert seat["seat"] == 1 and not seat["failures"]
    assert len(seat["decisions"]) > FRAMES and len({d["action"] for d in seat["decisions"]}) > 2
    assert {d["episode"] for d in seat["decisions"]} == {0, 1}, "the runner was reset for the second episode"
    inside = run_in_pyodide("policy_play", study=study, timeout=600)["result"]
    assert inside == native
