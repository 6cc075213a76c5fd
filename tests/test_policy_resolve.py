"""Resolving a policy against its model: sizes, names and types are checked with messages that say what was
expected and what was found; the resolved policy maps observations exactly and survives a JSON round trip."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from policy_models import linear, recurrent

from pyodide_runtime.policies import (
    PolicyError,
    PolicySpec,
    ResolvedPolicy,
    describe_model,
    from_tensor,
    map_observation,
    resolve_policy,
)

OBS = {"position": [2, 3], "facing": 4, "time_left": 10}  # sorted keys: facing, position, time_left -> 4 numbers


def spec(tmp_path: Path, model: Path, **table) -> PolicySpec:
    return PolicySpec.from_table("p", {"model": str(model), **table}, tmp_path)


def test_describe_model_lists_inputs_and_outputs(tmp_path):
    info = describe_model(linear(tmp_path / "m.onnx", np.ones((4, 3)), input_dims=["batch", 4]))
    assert [(t.name, t.dtype, t.dims) for t in info.inputs] == [("obs", "float32", (None, 4))]
    assert [(t.name, t.dtype, t.dims) for t in info.outputs] == [("logits", "float32", (1, 3))]
    assert info.opset == 17 and info.size == (tmp_path / "m.onnx").stat().st_size and len(info.sha256) == 64


def test_a_broken_model_file_is_a_clear_error(tmp_path):
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"\x00garbage, not protobuf\xff" * 10)
    with pytest.raises(PolicyError, match=r"bad\.onnx is not a valid ONNX model"):
        describe_model(bad)


def test_resolve_fills_in_names_dims_and_digest(tmp_path):
    model = linear(tmp_path / "m.onnx", np.ones((4, 3)), input_dims=[None, 4])
    resolved = resolve_policy(spec(tmp_path, model, mean=1.0, std=[1, 2, 4, 8]), 1, 3, OBS)
    assert (resolved.input_name, resolved.input_dtype, resolved.input_dims) == ("obs", "float32", (1, 4))
    assert (resolved.output_name, resolved.action_count, resolved.seat) == ("logits", 3, 1)
    assert resolved.model_sha256 == describe_model(model).sha256 and resolved.model_bytes == model.stat().st_size
    (feed,) = map_observation(resolved, OBS)
    assert feed["name"] == "obs" and feed["dtype"] == "float32" and feed["dims"] == [1, 4]
    # sorted keys facing, position, time_left -> [4, 2, 3, 10]; minus 1; divided by [1, 2, 4, 8]
    assert from_tensor(feed).tolist() == [[3.0, 0.5, 0.5, 1.125]]
    again = ResolvedPolicy.from_json(json.loads(json.dumps(resolved.to_json())))
    assert again == resolved


def test_keys_choose_and_order_the_observation(tmp_path):
    model = linear(tmp_path / "m.onnx", np.ones((3, 2)))
    resolved = resolve_policy(spec(tmp_path, model, keys=["time_left", "position"]), 0, 2, OBS)
    assert from_tensor(map_observation(resolved, OBS)[0]).tolist() == [[10.0, 2.0, 3.0]]
    array_model = linear(tmp_path / "a.onnx", np.ones((6, 2)))
    resolved = resolve_policy(spec(tmp_path, array_model), 0, 2, np.arange(6).reshape(2, 3))
    assert from_tensor(map_observation(resolved, np.arange(6).reshape(2, 3))[0]).tolist() == [[0, 1, 2, 3, 4, 5]]


def test_a_model_without_batch_dimension_gets_none_added(tmp_path):
    model = linear(tmp_path / "m.onnx", np.ones((4, 2)), input_dims=[4])
    resolved = resolve_policy(spec(tmp_path, model), 0, 2, OBS)
    assert resolved.input_dims == (4,)


def test_mismatched_sizes_say_both_numbers(tmp_path):
    model = linear(tmp_path / "m.onnx", np.ones((5, 3)))
    with pytest.raises(PolicyError, match=r"policies\.p: the observation maps to 4 numbers \(every key\) but model "
                                          r"input 'obs' takes obs float32 \[1, 5\]"):
        resolve_policy(spec(tmp_path, model), 0, 3, OBS)
    model = linear(tmp_path / "m4.onnx", np.ones((4, 3)))
    with pytest.raises(PolicyError, match=r"policies\.p\.output: model output logits float32 \[1, 3\] has 3 scores "
                                          r"but agent 'p' has 6 actions"):
        resolve_policy(spec(tmp_path, model), 0, 6, OBS)
    with pytest.raises(PolicyError, match=r"policies\.p\.mean: has 2 values but the observation maps to 4 numbers"):
        resolve_policy(spec(tmp_path, model, mean=[0, 1]), 0, 3, OBS)
    with pytest.raises(PolicyError, match=r"default_action: 3 is not an action of 'p' \(0\.\.2\)"):
        resolve_policy(spec(tmp_path, model, default_action=3), 0, 3, OBS)


def test_wrong_names_list_what_the_model_has(tmp_path):
    model = linear(tmp_path / "m.onnx", np.ones((4, 3)))
    with pytest.raises(PolicyError, match=r"policies\.p\.input: model m\.onnx has no input 'x'; its inputs: obs "
                                          r"float32 \[1, 4\]"):
        resolve_policy(spec(tmp_path, model, input="x"), 0, 3, OBS)
    with pytest.raises(PolicyError, match=r"policies\.p\.output: model m\.onnx has no output 'probs'; its outputs: "
                                          r"logits"):
        resolve_policy(spec(tmp_path, model, output="probs"), 0, 3, OBS)
    with pytest.raises(PolicyError, match=r"policies\.p\.recurrent: model m\.onnx has no input 'h'"):
        resolve_policy(spec(tmp_path, model, recurrent={"h": "h_out"}), 0, 3, OBS)
    rec = recurrent(tmp_path / "r.onnx", np.ones((4, 3)))
    with pytest.raises(PolicyError, match=r"policies\.p\.recurrent: model r\.onnx has no output 'state'"):
        resolve_policy(spec(tmp_path, rec, recurrent={"h_in": "state"}), 0, 3, OBS)
    with pytest.raises(PolicyError, match=r"model inputs \['h_in'\] get no value; name them in recurrent"):
        resolve_policy(spec(tmp_path, rec), 0, 3, OBS)


def test_dtype_errors_name_both_types(tmp_path):
    model = linear(tmp_path / "m.onnx", np.ones((4, 3)), input_type="int64")
    with pytest.raises(PolicyError, match=r"policies\.p\.dtype: model input 'obs' takes int64 but the policy feeds "
                                          r"float32; set dtype = \"int64\""):
        resolve_policy(spec(tmp_path, model), 0, 3, OBS)
    resolved = resolve_policy(spec(tmp_path, model, dtype="int64"), 0, 3, OBS)
    (feed,) = map_observation(resolved, OBS)
    assert feed["dtype"] == "int64" and from_tensor(feed).tolist() == [[4, 2, 3, 10]]
    int_scores = linear(tmp_path / "i.onnx", np.ones((4, 3)), output_type="int64")
    with pytest.raises(PolicyError, match=r"model output 'logits' is int64; action scores must be float32 or float64"):
        resolve_policy(spec(tmp_path, int_scores), 0, 3, OBS)


def test_text_in_the_observation_asks_for_a_hook(tmp_path):
    model = linear(tmp_path / "m.onnx", np.ones((4, 3)))
    with pytest.raises(PolicyError, match=r"observation\['holding'\] is str 'onion', not numbers; .*with a hook"):
        resolve_policy(spec(tmp_path, model), 0, 3, {"holding": "onion", "position": [1, 2]})
    with pytest.raises(PolicyError, match=r"observation has no key 'speed'"):
        resolve_policy(spec(tmp_path, model, keys=["speed"]), 0, 3, OBS)


def test_a_hook_builds_the_input(tmp_path):
    model = linear(tmp_path / "m.onnx", np.ones((30, 6)))
    from pyodide_runtime.examples.human_ai import make_env

    obs = make_env().reset(seed=0)[0]["cook_1"]
    resolved = resolve_policy(spec(tmp_path, model, hook="pyodide_runtime.examples.human_ai_onnx:features"), 1, 6,
                              obs)
    x = from_tensor(map_observation(resolved, obs)[0])
    assert x.shape == (1, 30) and x[0, :2].tolist() == list(map(float, obs["position"]))
    with pytest.raises(PolicyError, match=r"hook 'pyodide_runtime.examples.human_ai_onnx:nothing'"):
        resolve_policy(spec(tmp_path, model, hook="pyodide_runtime.examples.human_ai_onnx:nothing"), 1, 6, obs)


def test_weights_in_a_separate_file_are_refused_with_the_fix(tmp_path):
    """PyTorch's exporter keeps weights beside the model by default; the page fetches one file."""
    import onnx

    linear(tmp_path / "one.onnx", np.ones((3, 2), dtype=np.float32))
    model = onnx.load(str(tmp_path / "one.onnx"))
    onnx.save(model, str(tmp_path / "split.onnx"), save_as_external_data=True, all_tensors_to_one_file=True,
              location="split.onnx.data", size_threshold=0)
    assert (tmp_path / "split.onnx.data").is_file()
    with pytest.raises(PolicyError, match=r"separate file \(split.onnx.data\).*external_data=False"):
        describe_model(tmp_path / "split.onnx")
    assert [t.name for t in describe_model(tmp_path / "one.onnx").inputs] == ["obs"]
