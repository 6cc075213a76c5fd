"""The Pyodide compatibility layer, exercised in CPython (the real-Pyodide check is in tests/pyodide/)."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from pyodide_runtime import pyodide_compat


def _run(code: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True,
                          env={**env, "PATH": "/usr/bin:/bin"}, timeout=120)


def test_stub_makes_gymnasium_importable_when_multiprocessing_is_missing():
    # Recreate Pyodide's situation in a fresh CPython: `_multiprocessing` cannot be imported.
    code = """
        import sys
        sys.modules["_multiprocessing"] = None  # makes `import _multiprocessing` raise ImportError
        try:
            import gymnasium
        except ImportError as exc:
            print("before:", type(exc).__name__)
        for name in [m for m in sys.modules if m.startswith(("gymnasium", "multiprocessing"))]:
            del sys.modules[name]
        del sys.modules["_multiprocessing"]
        sys.modules["_multiprocessing"] = None
        from pyodide_runtime import pyodide_compat
        print("stubbed:", pyodide_compat.install_multiprocessing_stub())
        import gymnasium
        env = gymnasium.make("CartPole-v1")
        env.reset(seed=0)
        print("stepped:", env.step(0)[1])
    """
    proc = _run(code)
    assert proc.returncode == 0, proc.stderr
    assert "before: ModuleNotFoundError" in proc.stdout
    assert "stubbed: True" in proc.stdout
    assert "stepped: 1.0" in proc.stdout


def test_stub_is_not_installed_when_the_real_module_exists():
    assert pyodide_compat.install_multiprocessing_stub() is False
    import _multiprocessing

    assert "Stub installed" not in (_multiprocessing.__doc__ or "")


def test_stub_is_installed_once_where_the_module_is_missing(monkeypatch):
    monkeypatch.setitem(sys.modules, "_multiprocessing", None)  # what a failing import looks like
    assert pyodide_compat.install_multiprocessing_stub() is True
    assert "Stub installed" in sys.modules["_multiprocessing"].__doc__
    assert pyodide_compat.install_multiprocessing_stub() is False, "a second call keeps the stub"


def test_stub_semaphores_refuse_to_work(monkeypatch):
    monkeypatch.delitem(sys.modules, "_multiprocessing", raising=False)
    assert pyodide_compat.install_multiprocessing_stub(force=True) is True
    stub = sys.modules["_multiprocessing"]
    assert stub.SemLock.SEM_VALUE_MAX > 0
    with pytest.raises(OSError, match="not available in the browser"):
        stub.SemLock(1, 1, 1, "x", False)
    with pytest.raises(OSError):
        stub.sem_unlink("x")


def test_prepare_requires_fixed_hash_seed_when_asked():
    proc = _run("from pyodide_runtime import pyodide_compat; pyodide_compat.prepare(require_fixed_hash_seed=True)",
                PYTHONHASHSEED="random")
    assert proc.returncode != 0 and "PYTHONHASHSEED" in proc.stderr
    proc = _run("from pyodide_runtime import pyodide_compat; print(pyodide_compat.prepare(require_fixed_hash_seed=True))",
                PYTHONHASHSEED="0")
    assert proc.returncode == 0, proc.stderr
    assert "'hash_seed_fixed': True" in proc.stdout


def test_fixed_hash_seed_gives_the_same_set_order_in_separate_interpreters():
    code = "print(list({'apple', 'banana', 'cherry', 'date', 'elderberry', 'fig', 'grape'}))"
    fixed = {_run(code, PYTHONHASHSEED="0").stdout for _ in range(3)}
    assert len(fixed) == 1
    randomised = {_run(code, PYTHONHASHSEED=str(seed)).stdout for seed in range(1, 9)}
    assert len(randomised) > 1, "different hash seeds must be able to change set order, or this test proves nothing"
