"""The interpreter the participants run: real Pyodide 0.27.7 with our wheel, loaded from the lock file."""

from __future__ import annotations

import pytest
from pyodide_support import pyodide_assets, run_in_pyodide  # noqa: F401 - fixtures

pytestmark = pytest.mark.pyodide


def test_gymnasium_needs_the_compat_layer_and_then_steps(run_in_pyodide):
    out = run_in_pyodide("environment")
    result = out["result"]
    assert result["import_error_before_prepare"] is not None and "_multiprocessing" in result["import_error_before_prepare"]
    assert result["facts"]["platform"] == "emscripten"
    assert result["facts"]["pyodide"] == "0.27.7"
    assert result["facts"]["multiprocessing_stub"] is True
    assert result["facts"]["hash_seed_fixed"] is True
    assert result["reward"] == 200.0
    print(f"Pyodide boot {out['boot_ms']:.0f} ms, packages {out['packages_ms']:.0f} ms")


def test_set_order_is_stable_across_interpreters(run_in_pyodide):
    first = run_in_pyodide("environment")["result"]
    second = run_in_pyodide("environment")["result"]
    assert first["set_order"] == second["set_order"]
    assert first["hash_width_bits"] == 32, "wasm32: hashes differ from 64-bit CPython, so compare Pyodide with Pyodide"
