"""Run a policy model in Node with onnxruntime-web (the page's runtime) through ``js_bridge/policy_node.mjs``."""

from __future__ import annotations

import json
import queue
import shutil
import subprocess
import threading
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from pyodide_runtime.policies.tensors import tensor_from_b64, tensor_to_b64

__all__ = ["NodeModel", "NodeError", "node_unavailable", "RUNNER_NAME"]

RUNNER_NAME = "policy_node.mjs"


class NodeError(RuntimeError):
    """The Node runner failed or answered with an error."""


def node_unavailable(ort_dir: Path, runner: Path | None) -> tuple[str, str] | None:
    """Why the Node check cannot run, and what to do: ``(reason, fix)``; ``None`` when it can."""
    if shutil.which("node") is None:
        return ("node is not on PATH", "install Node.js 18 or newer to check the model in the page's runtime")
    if not ort_dir.is_dir() or not any(ort_dir.iterdir()):
        return (f"no onnxruntime-web files in {ort_dir}",
                "run `pyodide-runtime assets fetch` (or pass --assets DIR / set PYODIDE_RUNTIME_ASSETS)")
    if runner is None or not runner.is_file():
        return (f"the Node runner {RUNNER_NAME} is not part of this installation",
                "reinstall pyodide-runtime (the runner ships in its js_bridge)")
    return None


class NodeModel:
    """One Node process running a model with onnxruntime-web (wasm); ``run(feeds) -> (outputs, ms)``."""

    def __init__(self, runner: Path, ort_dir: Path, model: Path, timeout: float = 60.0) -> None:
        self.timeout = timeout
        self.process = subprocess.Popen(
            ["node", str(runner), "--ort", str(ort_dir), "--model", str(model)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, bufsize=1)
        self._lines: queue.Queue[str | None] = queue.Queue()
        self._stderr: list[str] = []
        threading.Thread(target=self._pump, args=(self.process.stdout, self._lines), daemon=True).start()
        threading.Thread(target=self._drain, daemon=True).start()
        ready = self._read()
        if not ready.get("ready"):
            self.close()
            raise NodeError(f"the Node runner did not start: {ready.get('error') or ready}")
        self.input_names = list(ready.get("inputs") or [])
        self.output_names = list(ready.get("outputs") or [])

    @staticmethod
    def _pump(stream: Any, lines: queue.Queue) -> None:
        for line in stream:
            lines.put(line)
        lines.put(None)

    def _drain(self) -> None:
        for line in self.process.stderr:
            self._stderr.append(line.rstrip())
            del self._stderr[:-20]

    def _read(self) -> dict[str, Any]:
        deadline = time.monotonic() + self.timeout
        while True:
            try:
                line = self._lines.get(timeout=max(0.01, deadline - time.monotonic()))
            except queue.Empty:
                raise NodeError(f"the Node runner gave no answer within {self.timeout:.0f} s") from None
            if line is None:
                self.process.wait(timeout=5)
                tail = " | ".join(self._stderr[-5:])
                raise NodeError(f"the Node runner exited (status {self.process.returncode})"
                                + (f": {tail}" if tail else ""))
            line = line.strip()
            if not line:
                continue
            try:
                message = json.loads(line)
            except ValueError:
                continue  # a stray log line
            if isinstance(message, dict):
                return message

    def run(self, feeds: Sequence[Mapping[str, Any]]) -> tuple[list[dict[str, Any]], float | None]:
        """The model's outputs (wire tensors) and the runner's inference time in ms."""
        request = json.dumps({"feeds": [tensor_to_b64(t) for t in feeds]})
        try:
            assert self.process.stdin is not None
            self.process.stdin.write(request + "\n")
            self.process.stdin.flush()
        except (BrokenPipeError, OSError) as exc:
            raise NodeError(f"the Node runner is gone ({exc})") from None
        answer = self._read()
        if "error" in answer:
            raise NodeError(f"onnxruntime-web: {answer['error']}")
        outputs = [tensor_from_b64(t) for t in answer.get("outputs") or []]
        ms = answer.get("ms")
        return outputs, float(ms) if isinstance(ms, (int, float)) else None

    def close(self) -> None:
        """End the Node process."""
        if self.process.poll() is None:
            try:
                assert self.process.stdin is not None
                self.process.stdin.close()
                self.process.wait(timeout=5)
            except (OSError, subprocess.TimeoutExpired):
                self.process.kill()
                self.process.wait()

    def __enter__(self) -> NodeModel:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
