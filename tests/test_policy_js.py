"""ONNX models run by onnxruntime-web's wasm backend under Node (js_bridge/policy_node.mjs, which uses the page's
policy.mjs) give the same outputs as numpy and CPython onnxruntime, for every wire dtype; errors come back as lines.

Uses the real onnxruntime-web from the asset directory's ort/ folder (`pyodide-runtime assets fetch`)."""

from __future__ import annotations

import base64
import hashlib
import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import onnxruntime
import pytest
from onnx import TensorProto, helper, numpy_helper

from pyodide_runtime.host.assets import default_assets_dir
from pyodide_runtime.host.ort_assets import ORT_ENTRY
from server_support import run_node_module

REPO = Path(__file__).resolve().parent.parent
RUNNER = REPO / "js_bridge" / "policy_node.mjs"
TOL = dict(rtol=1e-5, atol=1e-5)
NP_DTYPES = {"float32": np.float32, "float64": np.float64, "int32": np.int32, "int64": np.int64, "uint8": np.uint8,
             "bool": np.bool_}


@pytest.fixture(scope="module")
def ort_dir() -> Path:
    folder = default_assets_dir() / "ort"
    if not (folder / ORT_ENTRY).is_file():
        pytest.fail(f"onnxruntime-web is not in {folder}: run `pyodide-runtime assets fetch` (without --no-ort), "
                    "with PYODIDE_RUNTIME_ASSETS pointing at the asset directory")
    if not shutil.which("node"):
        pytest.fail("node is not installed; the page's JavaScript tests need it")
    return folder


# ------------------------------------------------------------------------------------------------------- models


def _save(graph: onnx.GraphProto, path: Path) -> Path:
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, path)
    return path


def _weights(rng: np.random.Generator) -> dict[str, np.ndarray]:
    return {"W1": rng.normal(size=(6, 16)).astype(np.float32), "b1": rng.normal(size=16).astype(np.float32),
            "W2": rng.normal(size=(16, 4)).astype(np.float32), "b2": rng.normal(size=4).astype(np.float32)}


def mlp(path: Path, w: dict[str, np.ndarray]) -> Path:
    """obs float32 [N, 6] -> relu(obs W1 + b1) W2 + b2 = logits [N, 4]."""
    nodes = [helper.make_node("Gemm", ["obs", "W1", "b1"], ["h"]), helper.make_node("Relu", ["h"], ["r"]),
             helper.make_node("Gemm", ["r", "W2", "b2"], ["logits"])]
    graph = helper.make_graph(nodes, "mlp", [helper.make_tensor_value_info("obs", TensorProto.FLOAT, ["N", 6])],
                              [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", 4])],
                              [numpy_helper.from_array(v, k) for k, v in w.items()])
    return _save(graph, path)


def recurrent(path: Path, w: dict[str, np.ndarray]) -> Path:
    """obs [1, 3], h_in [1, 5] -> h_out = tanh(obs Wx + h_in Wh + b), logits = h_out Wo [1, 2]."""
    nodes = [helper.make_node("MatMul", ["obs", "Wx"], ["a"]), helper.make_node("MatMul", ["h_in", "Wh"], ["c"]),
             helper.make_node("Add", ["a", "c"], ["s"]), helper.make_node("Add", ["s", "b"], ["t"]),
             helper.make_node("Tanh", ["t"], ["h_out"]), helper.make_node("MatMul", ["h_out", "Wo"], ["logits"])]
    graph = helper.make_graph(
        nodes, "rnn",
        [helper.make_tensor_value_info("obs", TensorProto.FLOAT, [1, 3]),
         helper.make_tensor_value_info("h_in", TensorProto.FLOAT, [1, 5])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [1, 2]),
         helper.make_tensor_value_info("h_out", TensorProto.FLOAT, [1, 5])],
        [numpy_helper.from_array(v, k) for k, v in w.items()])
    return _save(graph, path)


def dtypes_model(path: Path, emb: np.ndarray) -> Path:
    """One input per wire dtype, each with an output computed from it (int64 both ways: Gather and ArgMax)."""
    t = TensorProto
    nodes = [
        helper.make_node("Gather", ["emb", "idx"], ["g"]),                    # int64 indices -> float32 rows
        helper.make_node("Identity", ["g"], ["rows"]),
        helper.make_node("ArgMax", ["rows"], ["best"], axis=-1, keepdims=0),  # -> int64
        helper.make_node("Mul", ["f64", "f64"], ["f64_sq"]),
        helper.make_node("Add", ["i32", "i32"], ["i32_twice"]),
        helper.make_node("Identity", ["u8"], ["u8_same"]),
        helper.make_node("Not", ["flag"], ["flag_not"]),
    ]
    inputs = [("idx", t.INT64, [1, 3]), ("f64", t.DOUBLE, [2, 2]), ("i32", t.INT32, [3]), ("u8", t.UINT8, [4]),
              ("flag", t.BOOL, [2, 3])]
    outputs = [("rows", t.FLOAT, [1, 3, emb.shape[1]]), ("best", t.INT64, [1, 3]), ("f64_sq", t.DOUBLE, [2, 2]),
               ("i32_twice", t.INT32, [3]), ("u8_same", t.UINT8, [4]), ("flag_not", t.BOOL, [2, 3])]
    graph = helper.make_graph(nodes, "dtypes", [helper.make_tensor_value_info(*i) for i in inputs],
                              [helper.make_tensor_value_info(*o) for o in outputs],
                              [numpy_helper.from_array(emb, "emb")])
    return _save(graph, path)


# ------------------------------------------------------------------------------------------------- the runner


def wire(name: str, array: np.ndarray) -> dict[str, Any]:
    """A tensor as a JSON line carries it."""
    array = np.ascontiguousarray(array)
    return {"name": name, "dtype": array.dtype.name, "dims": list(array.shape),
            "data_b64": base64.b64encode(array.astype(array.dtype.newbyteorder("<")).tobytes()).decode()}


def unwire(tensor: dict[str, Any]) -> np.ndarray:
    data = base64.b64decode(tensor["data_b64"])
    return np.frombuffer(data, dtype=np.dtype(NP_DTYPES[tensor["dtype"]]).newbyteorder("<")).reshape(tensor["dims"])


def run_node(ort_dir: Path, model: Path, lines: list[Any], *args: str) -> tuple[int, list[dict[str, Any]], str]:
    """Feed ``lines`` (objects, or raw strings) to the runner; its exit status, answer lines and stderr."""
    text = "".join((line if isinstance(line, str) else json.dumps(line)) + "\n" for line in lines)
    proc = subprocess.run(["node", str(RUNNER), "--ort", str(ort_dir), "--model", str(model), *args], input=text,
                          capture_output=True, text=True, timeout=120, cwd=REPO)
    answers = [json.loads(line) for line in proc.stdout.splitlines()]
    return proc.returncode, answers, proc.stderr


def cpython(model: Path, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
    session = onnxruntime.InferenceSession(str(model), providers=["CPUExecutionProvider"])
    return session.run(None, feeds)


# -------------------------------------------------------------------------------------------------------- tests


def test_mlp_matches_numpy_and_cpython_onnxruntime(ort_dir: Path, tmp_path: Path):
    rng = np.random.default_rng(1)
    w = _weights(rng)
    model = mlp(tmp_path / "mlp.onnx", w)
    batches = [rng.normal(size=(1, 6)).astype(np.float32), rng.normal(size=(3, 6)).astype(np.float32) * 10]
    code, answers, stderr = run_node(ort_dir, model, [{"feeds": [wire("obs", x)]} for x in batches])
    assert code == 0, stderr
    assert answers[0] == {"ready": True, "inputs": ["obs"], "outputs": ["logits"]}
    for x, answer in zip(batches, answers[1:], strict=True):
        (out,) = answer["outputs"]
        assert out["name"] == "logits" and out["dtype"] == "float32" and out["dims"] == [len(x), 4]
        assert isinstance(answer["ms"], float | int) and answer["ms"] >= 0
        got = unwire(out)
        expected = np.maximum(x @ w["W1"] + w["b1"], 0) @ w["W2"] + w["b2"]
        np.testing.assert_allclose(got, expected, **TOL)
        np.testing.assert_allclose(got, cpython(model, {"obs": x})[0], **TOL)


def test_recurrent_state_fed_back_matches_over_an_episode(ort_dir: Path, tmp_path: Path):
    """Each step needs the previous step's h_out, so the runner is driven one line at a time."""
    rng = np.random.default_rng(2)
    w = {"Wx": rng.normal(size=(3, 5)).astype(np.float32), "Wh": rng.normal(size=(5, 5)).astype(np.float32),
         "b": rng.normal(size=5).astype(np.float32), "Wo": rng.normal(size=(5, 2)).astype(np.float32)}
    model = recurrent(tmp_path / "rnn.onnx", w)
    observations = [rng.normal(size=(1, 3)).astype(np.float32) for _ in range(6)]
    proc = subprocess.Popen(["node", str(RUNNER), "--ort", str(ort_dir), "--model", str(model)], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO)
    try:
        ready = json.loads(proc.stdout.readline())
        assert ready == {"ready": True, "inputs": ["obs", "h_in"], "outputs": ["logits", "h_out"]}
        h_js = h_np = h_cp = np.zeros((1, 5), np.float32)
        for obs in observations:
            proc.stdin.write(json.dumps({"feeds": [wire("obs", obs), wire("h_in", h_js)]}) + "\n")
            proc.stdin.flush()
            answer = json.loads(proc.stdout.readline())
            assert "error" not in answer, answer
            outputs = {o["name"]: unwire(o) for o in answer["outputs"]}
            h_js = outputs["h_out"]
            h_np = np.tanh(obs @ w["Wx"] + h_np @ w["Wh"] + w["b"])
            logits_cp, h_cp = cpython(model, {"obs": obs, "h_in": h_cp})
            np.testing.assert_allclose(h_js, h_np, **TOL)
            np.testing.assert_allclose(outputs["logits"], h_np @ w["Wo"], **TOL)
            np.testing.assert_allclose(h_js, h_cp, **TOL)
            np.testing.assert_allclose(outputs["logits"], logits_cp, **TOL)
        proc.stdin.close()
        assert proc.wait(timeout=60) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.stdout.close()
        proc.stderr.close()


def test_every_wire_dtype_round_trips(ort_dir: Path, tmp_path: Path):
    rng = np.random.default_rng(3)
    emb = rng.normal(size=(10, 4)).astype(np.float32)
    model = dtypes_model(tmp_path / "dtypes.onnx", emb)
    feeds = {
        "idx": np.array([[9, 0, 2**33 % 10]], np.int64),
        "f64": np.array([[1e-300, -2.5], [3.0, 1e150]], np.float64),
        "i32": np.array([-(2**30), 7, 2**29], np.int32),
        "u8": np.array([0, 1, 128, 255], np.uint8),
        "flag": np.array([[True, False, True], [False, False, True]]),
    }
    code, answers, stderr = run_node(ort_dir, model, [{"feeds": [wire(k, v) for k, v in feeds.items()]}])
    assert code == 0, stderr
    outputs = answers[1]["outputs"]
    assert [(o["name"], o["dtype"]) for o in outputs] == [
        ("rows", "float32"), ("best", "int64"), ("f64_sq", "float64"), ("i32_twice", "int32"), ("u8_same", "uint8"),
        ("flag_not", "bool")]
    got = {o["name"]: unwire(o) for o in outputs}
    expected = dict(zip([o["name"] for o in outputs], cpython(model, feeds), strict=True))
    for name, value in expected.items():
        assert got[name].dtype == value.dtype and got[name].shape == value.shape, name
        np.testing.assert_array_equal(got[name], value)
    np.testing.assert_array_equal(got["rows"], emb[feeds["idx"]])
    np.testing.assert_array_equal(got["best"], emb[feeds["idx"]].argmax(-1))
    np.testing.assert_array_equal(got["flag_not"], ~feeds["flag"])


def test_int64_observation_input(ort_dir: Path, tmp_path: Path):
    """A model whose main input is int64 (e.g. a grid of cell codes) gets exact values, including large ones."""
    t = TensorProto
    nodes = [helper.make_node("Cast", ["cells"], ["f"], to=t.FLOAT), helper.make_node("MatMul", ["f", "W"], ["logits"]),
             helper.make_node("Identity", ["cells"], ["echo"])]
    w = np.arange(12, dtype=np.float32).reshape(4, 3) / 7
    graph = helper.make_graph(nodes, "int64", [helper.make_tensor_value_info("cells", t.INT64, [1, 4])],
                              [helper.make_tensor_value_info("logits", t.FLOAT, [1, 3]),
                               helper.make_tensor_value_info("echo", t.INT64, [1, 4])],
                              [numpy_helper.from_array(w, "W")])
    model = _save(graph, tmp_path / "int64.onnx")
    cells = np.array([[3, -1, 0, 2**53 + 1]], np.int64)
    code, answers, stderr = run_node(ort_dir, model, [{"feeds": [wire("cells", cells)]}])
    assert code == 0, stderr
    logits, echo = (unwire(o) for o in answers[1]["outputs"])
    np.testing.assert_array_equal(echo, cells)
    np.testing.assert_allclose(logits, cpython(model, {"cells": cells})[0], **TOL)


def test_errors_are_lines_and_the_runner_goes_on(ort_dir: Path, tmp_path: Path):
    model = mlp(tmp_path / "mlp.onnx", _weights(np.random.default_rng(4)))
    good = {"feeds": [wire("obs", np.ones((1, 6), np.float32))]}
    short = {"feeds": [{**wire("obs", np.ones((1, 6), np.float32)), "dims": [1, 7]}]}
    lines = ["not json", {"nofeeds": 1}, {"feeds": [wire("other", np.ones((1, 6), np.float32))]}, short,
             {"feeds": [{**wire("obs", np.ones((1, 6), np.float32)), "dtype": "float16"}]},
             {"feeds": [wire("obs", np.ones((1, 6), np.float64))]}, good]
    code, answers, stderr = run_node(ort_dir, model, lines)
    assert code == 0, stderr
    errors = [a.get("error", "") for a in answers[1:-1]]
    assert "not JSON" in errors[0]
    assert '{"feeds": [...]}' in errors[1]
    assert 'no input "other"' in errors[2] and "obs" in errors[2]
    assert "24 bytes" in errors[3] and "needs 28" in errors[3]
    assert "float16 is not one of" in errors[4]
    assert "data type" in errors[5], "a float64 feed for a float32 input is refused by the runtime"
    assert "outputs" in answers[-1]


def test_a_bad_model_path_or_file_is_an_error_line(ort_dir: Path, tmp_path: Path):
    code, answers, _ = run_node(ort_dir, tmp_path / "missing.onnx", [])
    assert code == 1 and len(answers) == 1
    assert "missing.onnx" in answers[0]["error"] and "cannot be read" in answers[0]["error"]
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"not a model")
    code, answers, _ = run_node(ort_dir, junk, [])
    assert code == 1 and "cannot be loaded" in answers[0]["error"]


def test_the_model_sha256_is_checked(ort_dir: Path, tmp_path: Path):
    model = mlp(tmp_path / "mlp.onnx", _weights(np.random.default_rng(5)))
    digest = hashlib.sha256(model.read_bytes()).hexdigest()
    code, answers, _ = run_node(ort_dir, model, [], "--sha256", digest)
    assert code == 0 and answers[0]["ready"] is True
    code, answers, _ = run_node(ort_dir, model, [], "--sha256", "0" * 64)
    assert code == 1 and digest in answers[0]["error"] and "0" * 64 in answers[0]["error"]


def test_missing_runtime_files_are_an_error_line(tmp_path: Path):
    code, answers, _ = run_node(tmp_path, tmp_path / "m.onnx", [])
    assert code == 1 and "pyodide-runtime assets fetch" in answers[0]["error"]


FETCH_SCRIPT = """
import http from "node:http";
import { readFileSync } from "node:fs";
import { pathToFileURL } from "node:url";
import { PolicyModel, fetchModel, loadOrt } from "./js_bridge/policy.mjs";

const [modelPath, sha256, assetsDir] = process.argv.slice(1);
const bytes = readFileSync(modelPath);
const server = http.createServer((req, res) => {
  if (req.url === "/policy.onnx") res.end(bytes);
  else { res.statusCode = 404; res.end("not found"); }
});
await new Promise((r) => server.listen(0, "127.0.0.1", r));
const base = `http://127.0.0.1:${server.address().port}/`;
const attempt = async (url, sha) => {
  try { return { ok: (await fetchModel(url, sha)).length }; } catch (err) { return { error: err.message }; }
};
const out = {
  http: await attempt(base + "policy.onnx", sha256),
  upper: await attempt(base + "policy.onnx", sha256.toUpperCase()),
  mismatch: await attempt(base + "policy.onnx", "ab".repeat(32)),
  missing: await attempt(base + "nothing.onnx", sha256),
  data: await attempt("data:application/octet-stream;base64," + bytes.toString("base64"), sha256),
  dataMismatch: await attempt("data:application/octet-stream;base64,AAAA", sha256),
};
server.close();
// loadOrt takes the assets URL (the folder holding ort/), as the page's worker does
const ort = await loadOrt(pathToFileURL(assetsDir).href + "/");
const model = await PolicyModel.create(ort, new Uint8Array(bytes));
const outputs = await model.run([{ name: "obs", dtype: "float32", dims: [1, 6], data: new Uint8Array(24) }]);
out.loaded = {
  threads: ort.env.wasm.numThreads,
  inputs: model.inputNames,
  outputs: outputs.map((o) => [o.name, o.dtype, o.dims, o.data.length]),
};
await model.release();
console.log(JSON.stringify(out));
process.exit(0);
"""


def test_fetch_model_checks_the_sha256_and_load_ort_takes_the_assets_url(ort_dir: Path, tmp_path: Path):
    model = mlp(tmp_path / "mlp.onnx", _weights(np.random.default_rng(6)))
    size = model.stat().st_size
    digest = hashlib.sha256(model.read_bytes()).hexdigest()
    out = run_node_module(FETCH_SCRIPT, str(model), digest, str(ort_dir.parent))
    assert out["http"] == {"ok": size} and out["upper"] == {"ok": size} and out["data"] == {"ok": size}
    for key in ("mismatch", "dataMismatch"):
        message = out[key]["error"]
        assert message.startswith("model ") and "sha256" in message and "expected" in message, message
    assert digest in out["mismatch"]["error"] and "ab" * 32 in out["mismatch"]["error"]
    assert "HTTP 404" in out["missing"]["error"] and "nothing.onnx" in out["missing"]["error"]
    assert out["loaded"] == {"threads": 1, "inputs": ["obs"], "outputs": [["logits", "float32", [1, 4], 16]]}


PAGE = """<!doctype html><html><body><script type="module">
import { PolicyModel, fetchModel, loadOrt } from "/js_bridge/policy.mjs";
const { assetsURL, modelURL, sha256 } = await (await fetch("/check.json")).json();
const run = async () => {
  const ort = await loadOrt(assetsURL);
  const model = await PolicyModel.create(ort, await fetchModel(modelURL, sha256));
  const data = new Uint8Array(new Float32Array([1, 2, 3, 4, 5, 6]).buffer);
  const [out] = await model.run([{ name: "obs", dtype: "float32", dims: [1, 6], data }]);
  return Array.from(new Float32Array(out.data.buffer));
};
const worker = new Worker("/policy_worker.mjs", { type: "module" });
const inWorker = new Promise((resolve) => (worker.onmessage = (e) => resolve(e.data)));
worker.postMessage({ assetsURL, modelURL, sha256 });
let onPage;
try { onPage = { logits: await run() }; } catch (err) { onPage = { error: String(err.message || err) }; }
window.result = { onPage, inWorker: await inWorker };
</script></body></html>
"""

WORKER = """import { PolicyModel, fetchModel, loadOrt } from "/js_bridge/policy.mjs";
onmessage = async ({ data: { assetsURL, modelURL, sha256 } }) => {
  try {
    const ort = await loadOrt(assetsURL);
    const model = await PolicyModel.create(ort, await fetchModel(modelURL, sha256));
    const data = new Uint8Array(new Float32Array([1, 2, 3, 4, 5, 6]).buffer);
    const [out] = await model.run([{ name: "obs", dtype: "float32", dims: [1, 6], data }]);
    let mismatch = null;
    try { await fetchModel(modelURL, "0".repeat(64)); } catch (err) { mismatch = err.message; }
    postMessage({ logits: Array.from(new Float32Array(out.data.buffer)), mismatch,
                  isolated: self.crossOriginIsolated });
  } catch (err) {
    postMessage({ error: String(err.message || err) });
  }
};
"""


@pytest.mark.browser
def test_chromium_runs_the_model_in_a_module_worker_and_on_the_page(ort_dir: Path, tmp_path: Path):
    """The server's asset routes, MIME types and page Content-Security-Policy let onnxruntime-web load and run."""
    import asyncio

    from aiohttp import web
    from aiohttp.test_utils import TestServer
    from playwright.async_api import async_playwright

    from pyodide_runtime.host.assets import open_assets
    from pyodide_runtime.host.headless import CHROMIUM_FLAGS, chromium_path
    from pyodide_runtime.host.server.files import FileRoutes

    try:
        chromium = chromium_path()
    except RuntimeError as exc:
        pytest.fail(str(exc))
    w = _weights(np.random.default_rng(7))
    static = tmp_path / "static"
    static.mkdir()
    model = mlp(static / "policy.onnx", w)
    (static / "index.html").write_text(PAGE)
    (static / "policy_worker.mjs").write_text(WORKER)
    routes = FileRoutes(static, REPO / "js_bridge", open_assets(ort_dir.parent), None)
    (static / "check.json").write_text(json.dumps({
        "assetsURL": routes.assets_url, "modelURL": "/policy.onnx",
        "sha256": hashlib.sha256(model.read_bytes()).hexdigest()}))
    app = web.Application()
    routes.add_routes(app)

    async def scenario() -> dict[str, Any]:
        async with TestServer(app, host="127.0.0.1") as server, async_playwright() as pw:
            browser = await pw.chromium.launch(executable_path=chromium, args=list(CHROMIUM_FLAGS))
            try:
                page = await browser.new_page()
                problems: list[str] = []
                page.on("console", lambda m: m.type == "error" and problems.append(m.text))
                await page.goto(str(server.make_url("/")))
                await page.wait_for_function("() => window.result !== undefined", timeout=90_000)
                return {**await page.evaluate("() => window.result"), "problems": problems}
            finally:
                await browser.close()

    result = asyncio.run(scenario())
    expected = np.maximum(np.arange(1, 7, dtype=np.float32)[None] @ w["W1"] + w["b1"], 0) @ w["W2"] + w["b2"]
    assert "error" not in result["inWorker"], result
    assert "error" not in result["onPage"], result
    np.testing.assert_allclose(result["inWorker"]["logits"], expected[0], **TOL)
    np.testing.assert_allclose(result["onPage"]["logits"], expected[0], **TOL)
    assert result["inWorker"]["isolated"] is False  # one thread: no cross-origin isolation needed
    assert "sha256" in result["inWorker"]["mismatch"] and "expected" in result["inWorker"]["mismatch"]
    assert not [p for p in result["problems"] if "Content Security Policy" in p], result["problems"]
