"""Make gymnasium importable inside Pyodide.

``import gymnasium`` imports ``gymnasium.vector.async_vector_env``, which imports ``multiprocessing.synchronize``,
which needs the C module ``_multiprocessing``. Pyodide does not ship it, so the import fails. Nothing here uses
processes, so a stub with the names ``multiprocessing.synchronize`` touches at import time is enough. On CPython
the real module exists and nothing is changed.
"""

from __future__ import annotations

import sys
import types

__all__ = ["prepare_gymnasium"]


class _SemLockStub:
    """Placeholder for ``_multiprocessing.SemLock``; creating one means real multiprocessing was attempted."""

    SEM_VALUE_MAX = 2**31 - 1

    def __init__(self, *args: object, **kwargs: object) -> None:
        raise OSError("multiprocessing is not available in this Python (Pyodide)")


def _sem_unlink(name: str) -> None:
    raise OSError("multiprocessing is not available in this Python (Pyodide)")


def prepare_gymnasium() -> bool:
    """Install the ``_multiprocessing`` stub when the real module is missing. Returns whether it was installed."""
    if sys.modules.get("_multiprocessing") is not None:
        return False
    try:
        import _multiprocessing  # noqa: F401
    except ImportError:
        stub = types.ModuleType("_multiprocessing")
        stub.SemLock = _SemLockStub  # type: ignore[attr-defined]
        stub.sem_unlink = _sem_unlink  # type: ignore[attr-defined]
        stub.flags = {}  # type: ignore[attr-defined]
        sys.modules["_multiprocessing"] = stub
        return True
    return False
