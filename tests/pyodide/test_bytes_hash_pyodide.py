"""The "bytes" hash mode inside real Pyodide: the same records give the same chain as in CPython."""

from __future__ import annotations

import pytest
from pyodide_support import SCRIPTS, pyodide_assets, run_in_pyodide  # noqa: F401 - fixtures

pytestmark = pytest.mark.pyodide
PARAMS = {"seed": 5, "every": 4, "frames": 30}


def test_bytes_chain_is_identical_in_pyodide_and_cpython(run_in_pyodide):
    inside = run_in_pyodide("bytes_hash", **PARAMS)["result"]
    native: dict = {"params": dict(PARAMS)}
    exec(compile((SCRIPTS / "bytes_hash.py").read_text(), "bytes_hash.py", "exec"), native)
    here = native["result"]
    assert len(inside["chain"]) == PARAMS["frames"] and len(set(inside["chain"])) == PARAMS["frames"]
    assert inside["single"] == here["single"]
    assert inside["layout"] == here["layout"]
    assert inside["chain"] == here["chain"]
