"""Browser-test access to the automated participants (:mod:`pyodide_runtime.host.headless`)."""

from __future__ import annotations

from pyodide_runtime.host.headless import (  # noqa: F401  (re-exported for the tests)
    COIN_CHASE,
    Player,
    StudyServer,
    chromium_path,
    free_port,
    run_cli,
    wait_for,
)
