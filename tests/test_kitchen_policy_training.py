"""scripts/train_kitchen_policy.py learns the scripted cook well beyond guessing its most common action, and
writes a small ONNX model whose actions follow the observation."""

from __future__ import annotations

import re
import subprocess
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import onnxruntime as ort

from pyodide_runtime.examples.human_ai import Partner, make_env
from pyodide_runtime.policies import PolicySpec, policies_from_study_file
from pyodide_runtime.policies.observation import normalize, observation_features

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "scripts" / "train_kitchen_policy.py"
STUDY = REPO / "pyodide_runtime" / "examples" / "human_ai_onnx.toml"


def scripted_play(frames: int, seed: int) -> tuple[list[dict], list[int]]:
    """cook_1's observations and the scripted cook's own choices on them, both cooks scripted with noise."""
    env = make_env({"cook_time": 40, "orders": 2, "order_time": 900, "max_steps": 600})
    teacher, noisy = Partner(epsilon=0.0), Partner(epsilon=0.2)
    rng = np.random.default_rng(seed)
    obs, _ = env.reset(seed=seed)
    observations, labels = [], []
    for t in range(frames):
        observations.append(obs["cook_1"])
        labels.append(teacher.act(obs["cook_1"], rng))
        obs, _, _, truncated, _ = env.step({a: noisy.act(obs[a], rng) for a in ("cook_0", "cook_1")})
        if any(truncated.values()):
            obs, _ = env.reset(seed=seed + t)
    return observations, labels


def test_training_beats_the_majority_class_and_exports_a_model_that_follows_the_observation(tmp_path):
    out = tmp_path / "policy.onnx"
    proc = subprocess.run([sys.executable, str(SCRIPT), "--samples", "5000", "--hidden", "48", "--epochs", "30",
                           "--out", str(out)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "collecting 5000 frames" in proc.stdout and "epoch 30/30" in proc.stdout
    match = re.search(r"held-out accuracy: (\d\.\d+)", proc.stdout)
    assert match, proc.stdout
    accuracy = float(match.group(1))

    observations, labels = scripted_play(3000, seed=11)  # fresh play, not the script's
    majority = Counter(labels).most_common(1)[0][1] / len(labels)
    assert accuracy > majority + 0.3, (accuracy, majority)

    assert out.stat().st_size < 100_000
    session = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    (inp,), (outp,) = session.get_inputs(), session.get_outputs()
    assert (inp.name, inp.shape, inp.type) == ("obs", [1, 30], "tensor(float)")
    assert (outp.name, outp.shape) == ("logits", [1, 6])
    table = policies_from_study_file(STUDY)["cook_1"]
    spec = PolicySpec.from_table("cook_1", {"model": str(out), "hook": table.hook, "mean": list(table.mean),
                                            "std": list(table.std)}, tmp_path)
    x = np.stack([normalize(observation_features(o, None, spec.hook), spec.mean, spec.std)
                  for o in observations]).astype(np.float32)
    predicted = np.array([int(session.run(None, {"obs": row[None]})[0].argmax()) for row in x])
    # its actions vary with the observation and mostly agree with the scripted cook on unseen play
    assert len(set(predicted.tolist())) >= 4
    assert (predicted == np.asarray(labels)).mean() > majority + 0.2


def test_the_shipped_model_is_small_and_fits_the_example():
    model = STUDY.with_suffix(".onnx")
    assert 5_000 < model.stat().st_size < 100_000
    session = ort.InferenceSession(str(model), providers=["CPUExecutionProvider"])
    assert [i.name for i in session.get_inputs()] == ["obs"]
    assert [o.name for o in session.get_outputs()] == ["logits"]
