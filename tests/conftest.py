"""Shared test settings.

Property tests run whole multi-peer sessions per example, so per-example time varies with machine load: the
profile below drops Hypothesis's per-example deadline instead of letting a busy machine fail a correct test.
The small game used by the rollback tests lives in :mod:`pyodide_runtime.host.testing.games`.
"""

from __future__ import annotations

from hypothesis import HealthCheck, settings

settings.register_profile("pyodide_runtime", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("pyodide_runtime")
