"""Which modules an env pulls in, and where each comes from: the standard library, the env's own files, or an
installed distribution (pure Python or compiled, judged from its wheel tags and the files its RECORD lists).

Runs where the env was loaded (the rollout subprocess), so the env's own ``sys.path`` changes are seen.
"""

from __future__ import annotations

import sys
from importlib import metadata
from pathlib import Path
from typing import Any

__all__ = ["top_level_modules", "describe_modules", "COMPILED_SUFFIXES"]

COMPILED_SUFFIXES = (".so", ".pyd", ".dylib", ".dll")


def top_level_modules(names: set[str] | None = None) -> set[str]:
    """Top-level names of the modules in ``names`` (default: all of ``sys.modules``), without private aliases."""
    names = set(sys.modules) if names is None else names
    return {_real_name(n).split(".")[0] for n in names
            if n and not n.startswith("pyodide_runtime_user_env_") and _imported(n)}


def _imported(key: str) -> bool:
    """Whether the entry came from an import: Cython's shared-type holders (``_cython_3_3_1``) are modules made at
    run time by an extension, with no spec, file or loader, so there is nothing the page would have to import."""
    module = sys.modules.get(key)
    if module is None:
        return True
    return any(getattr(module, attr, None) is not None for attr in ("__spec__", "__file__", "__loader__"))


def _real_name(key: str) -> str:
    """The module's own name: some extension modules are also registered under an alias (Cython's shared
    ``_cyutility`` is ``scipy._cyutility``), which is not a module of its own."""
    name = getattr(sys.modules.get(key), "__name__", key)
    return name if isinstance(name, str) and name else key


def _dist_facts(dist: metadata.Distribution) -> dict[str, Any]:
    tags: list[str] = []
    wheel = dist.read_text("WHEEL")
    if wheel:
        tags = [line.split(":", 1)[1].strip() for line in wheel.splitlines() if line.startswith("Tag:")]
    compiled = [str(f) for f in (dist.files or []) if str(f).endswith(COMPILED_SUFFIXES)]
    pure_tags = all(t.split("-")[1:] == ["none", "any"] for t in tags) if tags else True
    return {
        "dist": dist.metadata["Name"],
        "version": dist.version,
        "tags": tags,
        "compiled_files": compiled[:5],
        "pure": pure_tags and not compiled,
    }


def describe_modules(names: set[str]) -> list[dict[str, Any]]:
    """For each top-level module name: its kind (``stdlib``, ``local`` or ``dist``), file and distribution facts."""
    owners = metadata.packages_distributions()
    stdlib = set(sys.stdlib_module_names)
    out = []
    for name in sorted(names):
        module = sys.modules.get(name)
        path = getattr(module, "__file__", None)
        entry: dict[str, Any] = {"module": name, "file": path}
        if name in stdlib or name in sys.builtin_module_names:
            entry["kind"] = "stdlib"
            entry["compiled"] = path is None or path.endswith(COMPILED_SUFFIXES)
        elif name in owners:
            entry["kind"] = "dist"
            try:
                entry.update(_dist_facts(metadata.distribution(owners[name][0])))
            except metadata.PackageNotFoundError:
                entry.update({"dist": owners[name][0], "pure": False, "tags": [], "compiled_files": []})
        else:
            entry["kind"] = "local"
            files = [path] if path else []
            if path and Path(path).name.startswith("__init__."):
                files = [str(p) for p in Path(path).parent.rglob("*")]
            entry["compiled_files"] = [f for f in files if f.endswith(COMPILED_SUFFIXES)][:5]
            entry["pure"] = not entry["compiled_files"]
        out.append(entry)
    return out
