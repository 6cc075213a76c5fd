"""Make the Pyodide interpreter ready for gymnasium and for deterministic sessions.

Call :func:`prepare` once, before importing a researcher's env. It is a no-op in CPython where nothing is missing.

Why it exists: ``import gymnasium`` imports ``gymnasium.vector.async_vector_env``, which imports
``multiprocessing.synchronize``, which needs the C module ``_multiprocessing``. Pyodide does not ship it (there
are no processes in a browser tab), so the import fails. A stub with the names that module-level code touches
(``SemLock``, ``SEM_VALUE_MAX``, ``sem_unlink``) lets the import succeed; any real use of a semaphore raises.
"""

from __future__ import annotations

import sys
import types

__all__ = ["prepare", "install_multiprocessing_stub", "hash_seed_is_fixed", "is_pyodide"]


def is_pyodide() -> bool:
    """True inside Pyodide (Emscripten)."""
    return sys.platform == "emscripten"


class _UnavailableSemLock:
    """Stands in for ``_multiprocessing.SemLock``; constructing one raises, because browsers have no processes."""

    SEM_VALUE_MAX = 2**31 - 1

    def __init__(self, *args: object, **kwargs: object) -> None:
        raise OSError("multiprocessing semaphores are not available in the browser (Pyodide)")


def install_multiprocessing_stub(*, force: bool = False) -> bool:
    """Put a stub ``_multiprocessing`` in ``sys.modules`` if the real one cannot be imported.

    Returns True if the stub was installed. ``force`` installs it even when the real module exists (tests only).
    """
    if not force:
        try:
            import _multiprocessing  # noqa: F401
        except ImportError:
            pass
        else:
            return False
    stub = types.ModuleType("_multiprocessing")
    stub.__doc__ = "Stub installed by pyodide_runtime.pyodide_compat: no processes in the browser."
    stub.SemLock = _UnavailableSemLock  # type: ignore[attr-defined]
    stub.sem_unlink = _sem_unlink  # type: ignore[attr-defined]
    stub.flags = {}  # type: ignore[attr-defined]
    sys.modules["_multiprocessing"] = stub
    return True


def _sem_unlink(name: str) -> None:
    raise OSError("multiprocessing semaphores are not available in the browser (Pyodide)")


def hash_seed_is_fixed() -> bool:
    """True when string hashing is deterministic (``PYTHONHASHSEED`` set to a number), so set order is stable."""
    return sys.flags.hash_randomization == 0


def prepare(*, require_fixed_hash_seed: bool | None = None) -> dict[str, object]:
    """Install what Pyodide lacks and check the interpreter is fit for lockstep simulation.

    ``require_fixed_hash_seed`` defaults to True in Pyodide: the page must load it with ``PYTHONHASHSEED=0``,
    otherwise iteration order over sets of strings differs between the two participants' tabs.
    Returns facts about the interpreter for the export's provenance.
    """
    if require_fixed_hash_seed is None:
        require_fixed_hash_seed = is_pyodide()
    if require_fixed_hash_seed and not hash_seed_is_fixed():
        raise RuntimeError(
            "string hashing is randomised in this interpreter; load Pyodide with env: {PYTHONHASHSEED: '0'} "
            "so that both participants iterate sets in the same order"
        )
    stubbed = install_multiprocessing_stub()
    return {
        "python": sys.version.split()[0],
        "platform": sys.platform,
        "pyodide": _pyodide_version(),
        "multiprocessing_stub": stubbed,
        "hash_seed_fixed": hash_seed_is_fixed(),
    }


def _pyodide_version() -> str | None:
    if not is_pyodide():
        return None
    try:
        import pyodide  # type: ignore[import-not-found]

        return str(pyodide.__version__)
    except (ImportError, AttributeError):
        return None
