"""Run Python inside real Pyodide under Node (the npm package with the self-hosted assets).

Node is the faster of the two Pyodide hosts for testing the core: no browser process, the same wasm build, the
same floats (see the README, 'Test layers'). Test modules import the fixtures from here explicitly.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

SCRIPTS = Path(__file__).with_name("scripts")


@pytest.fixture(scope="session")
def pyodide_assets() -> Path:
    from pyodide_runtime.host.assets import AssetError, open_assets

    env = os.environ.get("PYODIDE_RUNTIME_ASSETS")
    try:
        return open_assets(Path(env) if env else None).root
    except AssetError as exc:
        pytest.fail(f"Pyodide tests need the self-hosted assets: {exc}")


@pytest.fixture(scope="session")
def run_in_pyodide(pyodide_assets: Path):
    """``run_in_pyodide(script_name, **params) -> dict`` runs ``scripts/<name>.py`` in a fresh Pyodide.

    Returns ``{"result": ..., "boot_ms": ..., "packages_ms": ...}``.
    """
    from pyodide_runtime.host.pyodide_host import run_in_pyodide as host_run

    def run(script: str, timeout: float = 300, **params) -> dict:
        out = host_run((SCRIPTS / f"{script}.py").read_text(), params, assets=pyodide_assets, timeout=timeout)
        return {"result": out.result, "boot_ms": out.boot_ms, "packages_ms": out.packages_ms}

    return run
