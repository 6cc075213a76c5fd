"""ONNX AI partners in real Chromium: onnxruntime-web in the page's worker, through the real server.

The human-AI test plays the shipped ``human_ai_onnx`` study (shortened) in one browser; the three-seat test pairs
two browsers with an ONNX third agent under injected latency. Both recompute in CPython, with onnxruntime, the
model's choice for every observation the page decided on, and rebuild the policy seat's recorded inputs from its
decision log.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from players import play_to_the_end, run_cli

from pyodide_runtime.host.data import load
from pyodide_runtime.host.study_config import example_config
from pyodide_runtime.hosted import expected_inputs

pytestmark = pytest.mark.browser
MAX_STEPS = 150


def play(assets_dir: Path, tmp_path: Path, config: Path, urls: list[str], timeout: float = 150) -> tuple[list[Path], list[dict]]:
    bundles, statuses = play_to_the_end(assets_dir, tmp_path, config, urls, timeout)
    for s in statuses:
        assert s["phase"] == "ended" and s["outcome"] == "complete", s
        assert not s["errors"], s["errors"]
    validated = run_cli("validate", *map(str, bundles))
    assert validated.returncode == 0, validated.stdout + validated.stderr
    return bundles, statuses


def check_policy_seat(bundle_path: Path, model: Path, agent: str) -> dict[str, Any]:
    """The policy seat's inputs are those its decision log implies, and each decision is the model's argmax for
    the recorded observation (recomputed here with CPython onnxruntime). Returns the seat's report."""
    from pyodide_runtime.policies import OnnxRuntimeModel, ResolvedPolicy, map_observation

    bundle = load(str(bundle_path), backend="python", decode_json=True)
    meta = bundle.metadata
    (provenance,) = meta["canonical"]["policies"]
    (report,) = meta["participant_local"]["extra"]["policies"]
    assert provenance["agent"] == report["agent"] == agent and provenance["owner_seat"] == meta["participant_local"]["seat"]
    import hashlib

    assert provenance["model_sha256"] == hashlib.sha256(model.read_bytes()).hexdigest()
    rows = sorted((r for r in bundle.frames if r["agent"] == agent), key=lambda r: r["global_frame"])
    executed = [int(r["input"]) for r in rows]
    assert executed == expected_inputs(report["applied"], len(executed), provenance["default_action"])
    decisions = report["decisions"]
    assert len(decisions) > 20, report
    assert len({d["action"] for d in decisions}) > 1 and len(set(executed)) > 1, "the AI's actions vary"
    assert all(d["inference_ms"] is not None and d["inference_ms"] >= 0 for d in decisions)
    # The policy as the page had it: rebuilt from the study's own description, then run on the export's data.
    onnx_model = OnnxRuntimeModel(model)
    policy = ResolvedPolicy.from_json(report["policy"]) if "policy" in report else None
    assert policy is not None, "the owning page records the resolved policy it ran"
    for d in decisions:
        episode, t = d["episode"], d["frame_in_episode"]
        if t == 0:
            (obs,) = [r["observation"] for r in bundle.resets if r["episode"] == episode and r["agent"] == agent]
        else:
            (obs,) = [r["observation"] for r in bundle.frames
                      if r["episode"] == episode and r["frame"] == t - 1 and r["agent"] == agent]
        (logits,) = [t_ for t_ in onnx_model.run(map_observation(policy, obs)) if t_["name"] == policy.output_name]
        assert int(np.argmax(np.frombuffer(logits["data"], dtype=np.float32))) == d["action"], d
    return report


def test_human_ai_onnx_study_plays_to_completion_with_the_models_actions(assets_dir, tmp_path):
    source = example_config("human_ai_onnx")
    text = source.read_text()
    text, n_steps = re.subn(r"max_steps = \d+", f"max_steps = {MAX_STEPS}", text)
    text, n_episodes = re.subn(r"(?m)^episodes = \d+", "episodes = 2", text)
    assert n_steps == 1 and n_episodes == 1, "the example config no longer has max_steps / episodes"
    study_dir = tmp_path / "study"
    study_dir.mkdir()
    config = study_dir / "human_ai_onnx.toml"
    config.write_text("test_mode = true\n" + text)
    model_name = re.search(r'model = "([^"]+)"', text).group(1)
    shutil.copy(source.parent / model_name, study_dir / model_name)
    (bundle,), (status,) = play(assets_dir, tmp_path, config, ["participant=H1&autopilot=random&seed=3"])
    assert status["seat"] == 0 and status["transport"] == "solo"
    assert status["confirmed_frames"] == 2 * MAX_STEPS
    verified = run_cli("verify", str(bundle))
    assert verified.returncode == 0, verified.stdout + verified.stderr
    report = check_policy_seat(bundle, study_dir / model_name, "cook_1")
    assert report["failures"] == []


def test_two_browsers_and_an_onnx_third_agent_under_latency_export_identical_data(assets_dir, tmp_path):
    from pyodide_runtime.envs.loading import load_game
    from pyodide_runtime.host.testing.onnx_models import mlp_policy

    env_config = {"players": 3, "max_steps": MAX_STEPS}
    game = load_game("pyodide_runtime.examples.coin_chase:make_env", env_config)
    obs = game.reset(1).observations["player_2"]
    keys = ("position", "coins", "others", "time_left")  # the partners' moves and the clock keep it changing
    n_in = sum(np.asarray(obs[k], dtype=np.float32).size for k in keys)
    model = mlp_policy(tmp_path / "third.onnx", n_in, game.input_count(2), hidden=(32,), seed=7)
    config = tmp_path / "three.toml"
    config.write_text(f"""test_mode = true
title = "Two people and an AI"
[env]
spec = "pyodide_runtime.examples.coin_chase:make_env"
config = {{ players = 3, max_steps = {MAX_STEPS} }}
[session]
players = 3
fps = 30
input_delay = 2
episodes = 1
seed = 1
[policies.player_2]
model = "third.onnx"
keys = {list(keys)!r}
std = 4.0
""".replace("'", '"'))
    net = "latency_ms=60&jitter_ms=15"  # each side delays its outgoing packets: about 120 ms RTT
    bundles, statuses = play(assets_dir, tmp_path, config,
                             [f"participant=A&autopilot=random&seed=1&{net}", f"participant=B&autopilot=random&seed=2&{net}"])
    assert sorted(s["seat"] for s in statuses) == [0, 1]
    assert sum(s["rollbacks"] for s in statuses) > 0, "the latency caused rollbacks"
    compared = run_cli("compare", *map(str, bundles))
    assert compared.returncode == 0, compared.stdout + compared.stderr
    owner = next(b for b, s in zip(bundles, statuses) if s["seat"] == 0)
    other = next(b for b, s in zip(bundles, statuses) if s["seat"] == 1)
    check_policy_seat(owner, model, "player_2")
    assert load(str(other), backend="python").metadata["participant_local"]["extra"]["policies"] == []
