"""What the rollback layer pulls in at import time, and which way the bots and env modules depend on each other.

The page imports ``pyodide_runtime.sync.timeline`` (through the session) before any env exists: it needs only
``SnapshotError`` from :mod:`pyodide_runtime.snapshot`, so neither numpy nor the start-up snapshot verification
(:mod:`pyodide_runtime.envs.snapshot_check`) may come with it.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "pyodide_runtime"


def modules_after_importing(module: str) -> set[str]:
    """The names in ``sys.modules`` after importing ``module`` in a fresh interpreter."""
    code = f"import json, sys; import {module}; print(json.dumps(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=PACKAGE.parent)
    return set(json.loads(out.stdout))


def test_the_timeline_imports_neither_numpy_nor_snapshot_verification():
    loaded = modules_after_importing("pyodide_runtime.sync.timeline")
    assert "pyodide_runtime.sync.timeline" in loaded and "pyodide_runtime.snapshot" in loaded
    assert "numpy" not in loaded
    assert "gymnasium" not in loaded
    assert "pyodide_runtime.envs.snapshot_check" not in loaded


def test_the_snapshot_strategies_import_numpy_when_first_used():
    from pyodide_runtime.snapshot import GlobalRngState, choose_snapshotter

    class Env:
        def __init__(self) -> None:
            self.position = [1, 2]

    env = Env()
    snapshotter = choose_snapshotter(env, "attributes")
    state = snapshotter.capture(env)
    env.position.append(3)
    assert snapshotter.restore(env, state).position == [1, 2]
    rng = GlobalRngState(python=True, numpy=True)
    saved = rng.capture()
    assert saved[1] is not None
    rng.restore(saved)


def _imports(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


def test_bots_do_not_import_the_env_layer():
    """The env adapters import bots (to resolve and seed them); bots never import back, not even in a function."""
    assert not any(name.startswith("pyodide_runtime.envs") for name in _imports(PACKAGE / "bots.py"))
    assert "pyodide_runtime.bots" in _imports(PACKAGE / "envs" / "adapter.py")
    assert not any(name.startswith(("pyodide_runtime.envs", "pyodide_runtime.bots"))
                   for name in _imports(PACKAGE / "specs.py"))


def test_bots_load_without_the_env_layer():
    loaded = modules_after_importing("pyodide_runtime.bots")
    assert not any(name.startswith("pyodide_runtime.envs") for name in loaded)
