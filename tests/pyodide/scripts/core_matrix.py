# Inside Pyodide: the rollback core's scenario matrix and the sync test, as in CPython.
from pyodide_runtime import pyodide_compat

pyodide_compat.prepare()
from pyodide_runtime.envs.loading import load_game
from pyodide_runtime.host.synctest import run_sync_test
from pyodide_runtime.host.testing.matrix import EXAMPLE_ENV, run_matrix

matrix = run_matrix(params["seed"])
sync = {}
for distance in (1, 4, 8):
    report = run_sync_test(load_game(EXAMPLE_ENV, {"players": 2, "max_steps": 120}), frames=240, distance=distance, seed=3)
    sync[str(distance)] = report.passed
result = {"matrix": matrix, "sync": sync}
