"""The Pyodide compatibility layer for gymnasium."""

from __future__ import annotations

import sys

import pytest

from pyodide_runtime.envs.compat import prepare_gymnasium


def test_nothing_changes_where_multiprocessing_exists():
    real = sys.modules.get("_multiprocessing")
    assert prepare_gymnasium() is False
    assert sys.modules.get("_multiprocessing") is real


def test_a_stub_is_installed_where_multiprocessing_is_missing(monkeypatch):
    monkeypatch.setitem(sys.modules, "_multiprocessing", None)  # what a failing import looks like
    assert prepare_gymnasium() is True
    stub = sys.modules["_multiprocessing"]
    assert stub.SemLock.SEM_VALUE_MAX > 0
    assert callable(stub.sem_unlink)
    with pytest.raises(OSError, match="not available"):
        stub.SemLock(1, 1, 1, "x", False)
    assert prepare_gymnasium() is False, "installed once"
