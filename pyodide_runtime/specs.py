"""Resolve a spec, ``"package.module:attr"`` or ``"path/to/file.py:attr"``, to the object it names.

Env factories (:func:`pyodide_runtime.envs.loading.load_game`) and bots given by name
(:func:`pyodide_runtime.bots.resolve_bot`) are both named this way. A file spec loads that one file as a module
under a stable name registered in ``sys.modules``, so the classes it defines can be pickled.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import os
import sys
from collections.abc import Callable
from typing import Any

__all__ = ["load_factory", "EnvLoadError"]


class EnvLoadError(ImportError):
    """A factory spec could not be resolved (missing file, module or attribute, or an import that failed)."""


def load_factory(spec: str) -> Callable[..., Any]:
    """Resolve ``"module:function"`` or ``"path/to/file.py:function"`` to the callable it names."""
    target, sep, attr = spec.rpartition(":")
    if not sep or not target or not attr:
        raise ValueError(f"env spec {spec!r} must look like 'package.module:function' or 'path/to/file.py:function'")
    module = _load_module(target)
    obj: Any = module
    for part in attr.split("."):
        if not hasattr(obj, part):
            names = sorted(n for n, v in vars(module).items() if callable(v) and not n.startswith("_"))
            raise EnvLoadError(f"{target} has no attribute {attr!r}; callables it defines: {', '.join(names) or '-'}")
        obj = getattr(obj, part)
    if not callable(obj):
        raise TypeError(f"{spec} is a {type(obj).__name__}, not a callable factory")
    return obj


def _load_module(target: str) -> Any:
    if target.endswith(".py") or "/" in target or os.sep in target:
        path = os.path.abspath(target)
        if not os.path.isfile(path):
            raise EnvLoadError(f"env file not found: {target}")
        # A stable module name per file, registered in sys.modules, so the env's classes can be pickled.
        name = "pyodide_runtime_user_env_" + hashlib.sha256(path.encode()).hexdigest()[:12]
        if name in sys.modules:
            return sys.modules[name]
        module_spec = importlib.util.spec_from_file_location(name, path)
        if module_spec is None or module_spec.loader is None:
            raise EnvLoadError(f"cannot load {target} as a Python module")
        module = importlib.util.module_from_spec(module_spec)
        sys.modules[name] = module
        try:
            module_spec.loader.exec_module(module)
        except Exception as exc:
            del sys.modules[name]
            raise EnvLoadError(f"importing {target} failed: {type(exc).__name__}: {exc}{_sibling_hint(exc, path)}") \
                from exc
        return module
    try:
        return importlib.import_module(target)
    except ModuleNotFoundError as exc:
        if exc.name and target.startswith(exc.name):
            raise EnvLoadError(f"no module named {target!r} (is it installed, or did you mean a file path?)") from exc
        raise EnvLoadError(f"importing {target} failed: {type(exc).__name__}: {exc}") from exc
    except Exception as exc:
        raise EnvLoadError(f"importing {target} failed: {type(exc).__name__}: {exc}") from exc


def _sibling_hint(exc: BaseException, path: str) -> str:
    """Advice when a single env file imports a module that sits beside it: a file spec is that one file only."""
    missing = getattr(exc, "name", None) if isinstance(exc, ModuleNotFoundError) else None
    if not missing:
        return ""
    folder = os.path.dirname(path)
    top = missing.split(".")[0]
    if not (os.path.isfile(os.path.join(folder, top + ".py")) or os.path.isdir(os.path.join(folder, top))):
        return ""
    return (f" ({top} sits beside {os.path.basename(path)}, but a file spec loads that one file only; serve the "
            f"folder instead: [env] source = \"{folder}\" and spec = "
            f"\"{os.path.splitext(os.path.basename(path))[0]}:<function>\")")
