"""check-policy on the example study and on broken ones: the report's contents, exit codes and clear errors.

onnxruntime-web runs in Node in the real check; here a stand-in ``node`` on PATH (a Python program speaking the
runner's JSON-lines protocol through onnxruntime) exercises the comparison, including a runtime that disagrees.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import sys
import tomllib
from pathlib import Path

import pytest

from pyodide_runtime.host.checkpolicy import CheckPolicyOptions, load_policy_study, run_policy_checks
from pyodide_runtime.host.cli import main

EXAMPLES = Path(__file__).resolve().parents[1] / "pyodide_runtime" / "examples"
EXAMPLE_MODEL = EXAMPLES / "human_ai_onnx.onnx"

FAKE_RUNNER = r'''
import base64, json, sys, time
import numpy as np
import onnxruntime as ort
args = dict(zip(sys.argv[2::2], sys.argv[3::2]))
shift = float(__import__("os").environ.get("FAKE_ORT_SHIFT", "0"))
session = ort.InferenceSession(args["--model"], providers=["CPUExecutionProvider"])
names = [o.name for o in session.get_outputs()]
print(json.dumps({"ready": True, "inputs": [i.name for i in session.get_inputs()], "outputs": names}), flush=True)
for line in sys.stdin:
    feeds = {f["name"]: np.frombuffer(base64.b64decode(f["data_b64"]), dtype=f["dtype"]).reshape(f["dims"])
             for f in json.loads(line)["feeds"]}
    start = time.perf_counter()
    values = session.run(names, feeds)
    ms = (time.perf_counter() - start) * 1000
    if shift:
        values[0] = values[0] + shift * np.arange(values[0].size, dtype=values[0].dtype).reshape(values[0].shape)
    out = [{"name": n, "dtype": v.dtype.name, "dims": list(v.shape),
            "data_b64": base64.b64encode(np.ascontiguousarray(v).tobytes()).decode()} for n, v in zip(names, values)]
    print(json.dumps({"outputs": out, "ms": ms}), flush=True)
'''


@pytest.fixture
def fake_node(tmp_path: Path, monkeypatch) -> Path:
    """A ``node`` on PATH that runs the stand-in runner; returns an assets dir with a non-empty ``ort/``."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    script = tmp_path / "fake_runner.py"
    script.write_text(FAKE_RUNNER)
    node = bin_dir / "node"
    node.write_text(f"#!/bin/sh\nexec {sys.executable} {script} \"$@\"\n")
    node.chmod(node.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}")
    assets = tmp_path / "assets"
    (assets / "ort").mkdir(parents=True)
    (assets / "ort" / "ort.wasm.min.mjs").write_text("// stand-in\n")
    return assets


def write_study(tmp_path: Path, policy: str, players: int = 2) -> Path:
    text = (EXAMPLES / "human_ai_onnx.toml").read_text()
    head = text.split("[policies.cook_1]")[0].replace("players = 2 ", f"players = {players} ")
    study = tmp_path / "study.toml"
    study.write_text(head + "[policies.cook_1]\n" + policy)
    return study


def example_policy(**changes: str) -> str:
    table = tomllib.loads((EXAMPLES / "human_ai_onnx.toml").read_text())["policies"]["cook_1"]
    table["model"] = str(EXAMPLE_MODEL)
    table.update(changes)
    return "".join(f"{k} = {json.dumps(v)}\n" for k, v in table.items())


def test_the_example_passes_and_reports_the_model(tmp_path, capsys, fake_node):
    empty = tmp_path / "no-ort"
    empty.mkdir()
    report_file = tmp_path / "report.json"
    code = main(["check-policy", "--example", "human_ai_onnx", "--frames", "90", "--assets", str(empty),
                 "--json", str(report_file)])
    out, err = capsys.readouterr()
    assert code == 0, out + err
    assert "input   obs float32 [1, 30]" in out and "output  logits float32 [1, 6]" in out
    assert "observation -> 30 numbers (hook pyodide_runtime.examples.human_ai_onnx:features, then (x - mean) / std)" \
        in out
    assert "PASS     cook_1 onnxruntime      90 decisions; median " in out and "p95" in out
    assert "PASS     cook_1 recompute" in out
    # no ORT files: the page's runtime is SKIPPED, with the reason and what to do, never PASS
    assert f"SKIPPED  cook_1 onnxruntime-web  not checked: no onnxruntime-web files in {empty / 'ort'}" in out
    assert "to do: run `pyodide-runtime assets fetch`" in out
    assert "SKIPPED  cook_1 agreement" in out
    assert "frame 90/90" in err  # progress on stderr
    report = json.loads(report_file.read_text())
    actions = report["agents"][0]["details"]["actions"]
    assert sum(actions.values()) == 90 and sum(1 for n in actions.values() if n) >= 3  # the model's actions vary
    assert report["counts"] == {"pass": 4, "fail": 0, "warn": 0, "skip": 2}


def test_both_runtimes_are_compared_and_timed(tmp_path, fake_node):
    study = load_policy_study(EXAMPLES / "human_ai_onnx.toml")
    runner_file = tmp_path / "policy_node.mjs"
    runner_file.write_text("// the stand-in node ignores it\n")
    options = CheckPolicyOptions(frames=40, seed=3, assets=fake_node, runner=runner_file)
    report = run_policy_checks(study, options)
    text = report.render()
    assert report.passed, text
    assert report.get("cook_1 onnxruntime-web").status == "pass"
    assert "40 decisions; median" in report.get("cook_1 onnxruntime-web").message
    agreement = report.get("cook_1 agreement")
    assert agreement.status == "pass" and "same action in all 40 decisions" in agreement.message
    assert agreement.details["max_abs_score_difference"] == 0.0


def test_a_runtime_that_disagrees_fails_the_agreement_check(tmp_path, fake_node, monkeypatch):
    monkeypatch.setenv("FAKE_ORT_SHIFT", "5.0")  # pushes the scores towards the last action
    runner_file = tmp_path / "policy_node.mjs"
    runner_file.write_text("//\n")
    report = run_policy_checks(load_policy_study(EXAMPLES / "human_ai_onnx.toml"),
                               CheckPolicyOptions(frames=30, seed=3, assets=fake_node, runner=runner_file))
    agreement = report.get("cook_1 agreement")
    assert not report.passed and agreement.status == "fail"
    assert "actions differ in" in agreement.message and "max abs score difference 25" in agreement.message


def test_a_broken_model_is_a_clear_failure(tmp_path, capsys):
    broken = tmp_path / "broken.onnx"
    broken.write_bytes(EXAMPLE_MODEL.read_bytes()[:500])
    study = write_study(tmp_path, example_policy(model="broken.onnx"))
    code = main(["check-policy", str(study), "--frames", "10", "--no-node"])
    out, err = capsys.readouterr()
    assert code == 1
    assert "FAIL     cook_1 model" in out and "broken.onnx is not a valid ONNX model" in out
    assert "Traceback" not in out + err


def test_a_model_of_the_wrong_size_names_both_sizes(tmp_path, capsys):
    sys.path.insert(0, str(Path(__file__).parent))
    from policy_models import linear

    import numpy as np

    linear(tmp_path / "small.onnx", np.ones((12, 6)))
    study = write_study(tmp_path, example_policy(model="small.onnx"))
    code = main(["check-policy", str(study), "--frames", "10", "--no-node"])
    out = capsys.readouterr().out
    assert code == 1
    assert "the observation maps to 30 numbers" in out and "takes obs float32 [1, 12]" in out


@pytest.mark.parametrize(("policy", "players", "message"), [
    ('model = "policy.onnx"\n', 2, "policies.cook_1.model: model file"),
    (None, 2, "policies.cook_1.frame_skip: must be an integer >= 1 (got 0)"),
    (None, 1, "session.players is 1 but the env has 2 seat(s) (cook_0, cook_1)"),
])
def test_bad_studies_are_errors_without_traceback(tmp_path, capsys, policy, players, message):
    policy = policy or example_policy(frame_skip=0 if players == 2 else 1)
    code = main(["check-policy", str(write_study(tmp_path, policy, players)), "--no-node"])
    err = capsys.readouterr().err
    assert code == 2 and "\nerror: " in "\n" + err and message in err and "Traceback" not in err


def test_unknown_agent_and_missing_study(tmp_path, capsys):
    assert main(["check-policy", "--example", "human_ai_onnx", "--agent", "cook_0", "--no-node"]) == 2
    assert "--agent 'cook_0': the study has no [policies.cook_0]; policies: cook_1" in capsys.readouterr().err
    assert main(["check-policy", str(tmp_path / "none.toml")]) == 2
    assert "no such study file" in capsys.readouterr().err
    assert main(["check-policy", "--example", "human_ai"]) == 2
    assert "no [policies.AGENT] table" in capsys.readouterr().err


def test_node_missing_is_skipped_with_advice(tmp_path, monkeypatch):
    monkeypatch.setattr(shutil, "which", lambda name, *a, **k: None)
    report = run_policy_checks(load_policy_study(EXAMPLES / "human_ai_onnx.toml"), CheckPolicyOptions(frames=5))
    result = report.get("cook_1 onnxruntime-web")
    assert result.status == "skip" and "node is not on PATH" in result.message and "Node.js" in result.fix
    assert report.passed


def test_onnxruntime_web_agrees_on_the_example():
    """With Node, the runner and the fetched ORT files (the test setup has them), the page's runtime really runs
    and agrees."""
    from pyodide_runtime.host.assets import default_assets_dir
    from pyodide_runtime.host.checkpolicy.checks import _default_runner
    from pyodide_runtime.host.checkpolicy.node import node_unavailable

    reason = node_unavailable(default_assets_dir() / "ort", _default_runner())
    if reason is not None:
        pytest.fail(f"the page's runtime cannot run here: {reason[0]}; {reason[1]}")
    report = run_policy_checks(load_policy_study(EXAMPLES / "human_ai_onnx.toml"), CheckPolicyOptions(frames=60))
    assert report.passed, report.render()
    assert report.get("cook_1 onnxruntime-web").status == "pass"
    agreement = report.get("cook_1 agreement")
    assert agreement.status == "pass" and agreement.details["compared"] == 60
    assert agreement.details["max_abs_score_difference"] < 1e-3
