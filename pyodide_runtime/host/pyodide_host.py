"""Run Python code inside real Pyodide from the host, under Node.js, with the self-hosted assets.

Used by benchmarks, `check-env` and the test suite to run the very interpreter participants run (same wasm build,
same floats) without a browser. Needs ``node`` on PATH and an asset directory made by ``assets fetch``.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["PyodideRun", "PyodideHostError", "run_in_pyodide", "node_runner_path"]


class PyodideHostError(RuntimeError):
    """Pyodide could not be started, or the code raised inside it (the message holds the Python traceback)."""


@dataclass(frozen=True)
class PyodideRun:
    """The outcome of one run: the script's ``result`` and the interpreter start-up timings in ms."""

    result: Any
    boot_ms: float
    packages_ms: float


def node_runner_path() -> Path:
    """The Node script that loads Pyodide (shipped with the bridge files)."""
    here = Path(__file__).resolve().parents[1]
    for candidate in (here / "_web" / "js_bridge", here.parent / "js_bridge"):  # wheel, then source checkout
        if (candidate / "node_runner.mjs").is_file():
            return candidate / "node_runner.mjs"
    raise PyodideHostError("node_runner.mjs is missing from this installation of pyodide_runtime")


def run_in_pyodide(
    code: str,
    params: dict[str, Any] | None = None,
    *,
    assets: Path | None = None,
    packages: Sequence[str] = ("pyodide-runtime",),
    timeout: float = 600.0,
    lock: Path | None = None,
) -> PyodideRun:
    """Run ``code`` in a fresh Pyodide; it sees ``params`` (a dict) and returns data by assigning ``result``.

    ``packages`` are loaded from ``lock`` (default: the asset root's ``pyodide-lock.json``), e.g. a study lock
    from :func:`pyodide_runtime.host.packages.prepare_study_packages`; its file names resolve against the asset root.
    ``result`` must be JSON-able after Pyodide's conversion (dicts, lists, numbers, strings).
    """
    from pyodide_runtime.host.assets import open_assets

    root = open_assets(assets).root
    if lock is not None and not Path(lock).is_file():
        raise PyodideHostError(f"lock file {lock} does not exist")
    node = shutil.which("node")
    if node is None:
        raise PyodideHostError("Node.js is not installed (apt-get install nodejs); it runs Pyodide outside the browser")
    with tempfile.NamedTemporaryFile("w", suffix=".py", delete=False) as fh:
        fh.write(code)
        script = fh.name
    try:
        env = {**os.environ, "PYODIDE_TEST_PARAMS": json.dumps(params or {})}
        env.pop("PYODIDE_LOCK_FILE", None)
        if lock is not None:
            env["PYODIDE_LOCK_FILE"] = str(Path(lock).resolve())
        try:
            proc = subprocess.run(
                [node, str(node_runner_path()), str(root), script, *packages],
                capture_output=True, text=True, timeout=timeout, env=env,
            )
        except subprocess.TimeoutExpired as exc:
            raise PyodideHostError(f"Pyodide run exceeded {timeout:.0f} s") from exc
    finally:
        os.unlink(script)
    if proc.returncode != 0:
        raise PyodideHostError(proc.stderr.strip()[-4000:] or f"node exited with {proc.returncode}")
    last = proc.stdout.strip().splitlines()[-1]
    out = json.loads(last)
    return PyodideRun(result=out["result"], boot_ms=out["boot_ms"], packages_ms=out["packages_ms"])
