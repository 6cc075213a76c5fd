"""Shared fixtures for the rollback core tests.

The small game lives in :mod:`pyodide_runtime.testing.games` so test modules can import it directly.
"""

from __future__ import annotations

import pytest

from pyodide_runtime.testing.games import TinyGridGame, tiny_grid_factory

COIN_CHASE = "pyodide_runtime.envs.examples.coin_chase:make_env"


@pytest.fixture
def tiny_game():
    return TinyGridGame


@pytest.fixture
def make_tiny():
    return tiny_grid_factory
