"""[policies.AGENT] tables are checked field by field, with messages naming the field and the fix."""

from __future__ import annotations

from pathlib import Path

import pytest

from pyodide_runtime.policies import PolicyError, PolicySpec, policies_from_study_file
from pyodide_runtime.policies.tensors import from_tensor, tensor_from_b64, tensor_to_b64, to_tensor

EXAMPLE = Path(__file__).resolve().parents[1] / "pyodide_runtime" / "examples" / "human_ai_onnx.toml"


@pytest.fixture
def model(tmp_path: Path) -> Path:
    path = tmp_path / "models" / "policy.onnx"
    path.parent.mkdir()
    path.write_bytes(b"not checked here")
    return path


def test_a_full_table_is_read_and_the_model_path_made_absolute(tmp_path, model):
    spec = PolicySpec.from_table("cook_1", {
        "model": "models/policy.onnx", "keys": ["position", "facing"], "dtype": "float64", "mean": [1, 2.5],
        "std": 2, "input": "obs", "output": "logits", "action": "sample", "temperature": 0.5,
        "recurrent": {"h_in": "h_out"}, "frame_skip": 3, "default_action": 2}, tmp_path)
    assert spec.model == model.resolve() and spec.model.is_absolute()
    assert spec.keys == ("position", "facing") and spec.dtype == "float64"
    assert spec.mean == (1.0, 2.5) and spec.std == 2.0
    assert (spec.action, spec.temperature, spec.frame_skip, spec.default_action) == ("sample", 0.5, 3, 2)
    assert dict(spec.recurrent) == {"h_in": "h_out"}


def test_defaults(tmp_path, model):
    spec = PolicySpec.from_table("a", {"model": str(model)}, tmp_path / "elsewhere")
    assert (spec.keys, spec.hook, spec.dtype, spec.mean, spec.std, spec.input, spec.output) == \
        (None, None, "float32", None, None, None, None)
    assert (spec.action, spec.temperature, spec.frame_skip, spec.default_action, dict(spec.recurrent)) == \
        ("argmax", 1.0, 1, 0, {})


@pytest.mark.parametrize(("table", "message"), [
    ({"model": "models/policy.onnx", "frameskip": 2},
     r"policies\.p\.frameskip: unknown key; did you mean 'frame_skip'"),
    ({"keys": ["x"]}, r"policies\.p\.model: required"),
    ({"model": "missing.onnx"}, r"policies\.p\.model: model file .*missing\.onnx not found"),
    ({"model": "models/policy.onnx", "frame_skip": 0}, r"policies\.p\.frame_skip: must be an integer >= 1 \(got 0\)"),
    ({"model": "models/policy.onnx", "frame_skip": 1.5}, r"frame_skip: must be an integer"),
    ({"model": "models/policy.onnx", "temperature": 0}, r"policies\.p\.temperature: must be a number > 0"),
    ({"model": "models/policy.onnx", "action": "greedy"}, r"policies\.p\.action: must be 'argmax' or 'sample'"),
    ({"model": "models/policy.onnx", "dtype": "float16"}, r"policies\.p\.dtype: must be one of float32"),
    ({"model": "models/policy.onnx", "keys": "position"}, r"policies\.p\.keys: must be a non-empty list"),
    ({"model": "models/policy.onnx", "keys": ["a", "a"]}, r"keys: lists a key twice"),
    ({"model": "models/policy.onnx", "keys": ["a"], "hook": "m:f"}, r"either keys or hook"),
    ({"model": "models/policy.onnx", "hook": "nocolon"}, r"policies\.p\.hook: must look like"),
    ({"model": "models/policy.onnx", "std": [1, 0]}, r"policies\.p\.std: every value must be > 0"),
    ({"model": "models/policy.onnx", "mean": "zero"}, r"policies\.p\.mean: must be a number or a non-empty list"),
    ({"model": "models/policy.onnx", "mean": 1, "dtype": "int64"}, r"mean and std need a float input"),
    ({"model": "models/policy.onnx", "recurrent": ["h"]}, r"policies\.p\.recurrent: must be a table"),
    ({"model": "models/policy.onnx", "default_action": -1}, r"policies\.p\.default_action: must be an integer >= 0"),
    ({"model": 3}, r"policies\.p\.model: must be a non-empty string"),
])
def test_bad_tables_name_the_field(tmp_path, model, table, message):
    with pytest.raises(PolicyError, match=message):
        PolicySpec.from_table("p", table, tmp_path)


def test_the_example_study_declares_its_partner():
    specs = policies_from_study_file(EXAMPLE)
    assert list(specs) == ["cook_1"]
    spec = specs["cook_1"]
    assert spec.model == EXAMPLE.with_suffix(".onnx") and spec.model.is_file()
    assert spec.hook == "pyodide_runtime.examples.human_ai_onnx:features"
    assert len(spec.mean) == len(spec.std) == 30


def test_study_file_errors_name_the_file(tmp_path):
    study = tmp_path / "study.toml"
    study.write_text('[policies.cook_1]\nmodel = "nowhere.onnx"\n')
    with pytest.raises(PolicyError, match=r"study\.toml: policies\.cook_1\.model: model file .* not found"):
        policies_from_study_file(study)
    study.write_text("[policies\n")
    with pytest.raises(PolicyError, match="not valid TOML"):
        policies_from_study_file(study)
    study.write_text("[session]\nplayers = 2\n")
    assert policies_from_study_file(study) == {}


@pytest.mark.parametrize("dtype", ["float32", "float64", "int32", "int64", "uint8", "bool"])
def test_wire_tensors_round_trip_little_endian(dtype):
    import numpy as np

    value = (np.arange(6).reshape(2, 3) % 2).astype(dtype)
    tensor = to_tensor("x", value)
    assert tensor["dtype"] == dtype and tensor["dims"] == [2, 3]
    assert tensor["data"] == value.astype(np.dtype(dtype).newbyteorder("<")).tobytes()
    back = from_tensor(tensor_from_b64(tensor_to_b64(tensor)))
    assert back.dtype == value.dtype and np.array_equal(back, value)
    with pytest.raises(PolicyError, match="bytes do not hold"):
        from_tensor({**tensor, "dims": [7]})
