"""``check-env``: is an env fit for rollback and for Pyodide? One check per module group, one report.

Example::

    from pyodide_runtime.host.checkenv import EnvTarget, run_checks

    report = run_checks(EnvTarget("pyodide_runtime.examples.coin_chase:make_env"))
    print(report.render())

Modules: :mod:`.api` (gymnasium/PettingZoo API and our adapter), :mod:`.rollback` (snapshot fidelity, sync test,
hidden state), :mod:`.instrument` (global generators, entropy and clocks in reset/step), :mod:`.determinism`
(fresh processes, hash seeds), :mod:`.cost` (snapshot size and time), :mod:`.pyodide` (module availability, a run
in real Pyodide), :mod:`.report` (results) and :mod:`.runner` (order and progress).
"""

from __future__ import annotations

from pyodide_runtime.host.checkenv.report import FAIL, PASS, SKIP, WARN, CheckResult, Report
from pyodide_runtime.host.checkenv.runner import CheckOptions, run_checks
from pyodide_runtime.host.checkenv.target import EnvTarget

__all__ = ["EnvTarget", "CheckOptions", "run_checks", "Report", "CheckResult", "PASS", "FAIL", "WARN", "SKIP"]
