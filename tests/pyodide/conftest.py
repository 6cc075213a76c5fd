"""Run Python inside real Pyodide under Node (the npm package with the self-hosted assets).

Node is the faster of the two Pyodide hosts for testing the core: no browser process, the same wasm build, the
same floats (see the README, 'Test layers').
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

RUNNER = Path(__file__).with_name("run.mjs")
SCRIPTS = Path(__file__).with_name("scripts")


@pytest.fixture(scope="session")
def pyodide_assets() -> Path:
    from pyodide_runtime.assets import AssetError, open_assets

    env = os.environ.get("PYODIDE_RUNTIME_ASSETS")
    try:
        return open_assets(Path(env) if env else None).root
    except AssetError as exc:
        pytest.fail(f"Pyodide tests need the self-hosted assets: {exc}")


@pytest.fixture(scope="session")
def run_in_pyodide(pyodide_assets: Path):
    """``run_in_pyodide(script_name, **params) -> dict``: run ``scripts/<name>.py`` in Pyodide, return ``result``."""
    node = shutil.which("node")
    if node is None:
        pytest.fail("Node.js is needed to run the core inside Pyodide")

    def run(script: str, timeout: float = 300, **params) -> dict:
        env = {**os.environ, "PYODIDE_TEST_PARAMS": json.dumps(params)}
        proc = subprocess.run([node, str(RUNNER), str(pyodide_assets), str(SCRIPTS / f"{script}.py")],
                              capture_output=True, text=True, timeout=timeout, env=env)
        assert proc.returncode == 0, f"Pyodide run of {script} failed:\n{proc.stderr[-4000:]}"
        return json.loads(proc.stdout.strip().splitlines()[-1])

    return run
