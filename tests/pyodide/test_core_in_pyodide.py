"""The rollback core inside real Pyodide: same scenarios, same faults, and the same canonical bytes as CPython."""

from __future__ import annotations

import pytest
from pyodide_support import pyodide_assets, run_in_pyodide  # noqa: F401 - fixtures

from pyodide_runtime.host.testing.matrix import SCENARIOS, run_matrix

pytestmark = pytest.mark.pyodide
SEED = 11


@pytest.fixture(scope="module")
def pyodide_matrix(run_in_pyodide):
    return run_in_pyodide("core_matrix", seed=SEED, timeout=900)["result"]


def test_every_scenario_keeps_parity_inside_pyodide_and_the_faults_happened(pyodide_matrix):
    matrix = pyodide_matrix["matrix"]
    assert set(matrix) == set(SCENARIOS)
    for name, run in matrix.items():
        assert run["identical"], name
        assert run["digests"][0] == run["digests"][1], name
        assert run["outcomes"] == ["complete", "complete"], name
        assert run["frames"][0] == 180, name
    assert matrix["baseline"]["rollbacks"] == 0
    for name in ("latency", "loss-reorder-duplicate", "deep-rollback"):
        assert matrix[name]["rollbacks"] > 0, name
    assert matrix["loss-reorder-duplicate"]["lost"] > 0
    assert matrix["frozen-tab"]["fast_forward_frames"] > 0


def test_pyodide_and_cpython_confirm_byte_identical_records(pyodide_matrix):
    native = run_matrix(SEED)
    for name, run in pyodide_matrix["matrix"].items():
        assert run["digests"] == native[name]["digests"], f"{name}: Pyodide and CPython exports differ"
        assert run["frames"] == native[name]["frames"], name


def test_sync_test_passes_inside_pyodide_at_several_distances(pyodide_matrix):
    assert pyodide_matrix["sync"] == {"1": True, "4": True, "8": True}
