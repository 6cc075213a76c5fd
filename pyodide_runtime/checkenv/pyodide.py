"""Pyodide compatibility: every module the env brings in must be pure Python or provided by Pyodide 0.27.7, and
(with ``--pyodide``) the env must import and step inside real Pyodide under Node."""

from __future__ import annotations

import json
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pyodide_runtime.checkenv.report import FAIL, PASS, SKIP, WARN, CheckResult
from pyodide_runtime.checkenv.target import EnvTarget

__all__ = ["PyodideCatalog", "load_catalog", "check_modules", "check_in_pyodide"]

#: C modules of the CPython standard library that Pyodide does not build (no terminal, GUI or dbm in a browser).
_MISSING_C_STDLIB = frozenset(
    {"_tkinter", "_curses", "_curses_panel", "readline", "_dbm", "_gdbm", "nis", "spwd", "ossaudiodev", "_posixshmem"}
)


def _norm(name: str) -> str:
    return name.lower().replace("_", "-").replace(".", "-")


@dataclass(frozen=True)
class PyodideCatalog:
    """What Pyodide provides: packages and their import names from the lock file, and the bundled stdlib."""

    version: str
    packages: frozenset[str]  #: normalised package names
    imports: frozenset[str]  #: top-level import names those packages provide
    stdlib: frozenset[str] = field(default_factory=frozenset)  #: top-level names in python_stdlib.zip (may be empty)

    def provides_dist(self, dist: str, module: str) -> bool:
        return _norm(dist) in self.packages or module in self.imports

    def has_stdlib(self, module: str, compiled: bool) -> bool:
        if module in self.imports:  # unvendored stdlib modules (ssl, sqlite3, lzma, ...) are lock packages
            return True
        if compiled or not self.stdlib:
            return module not in _MISSING_C_STDLIB
        return module in self.stdlib


def load_catalog(assets: Path | None = None) -> PyodideCatalog | None:
    """Read the asset directory's official lock (else its own lock) and stdlib zip; ``None`` when absent."""
    from pyodide_runtime.assets import LOCK_NAME, OFFICIAL_LOCK_NAME, default_assets_dir

    root = Path(assets) if assets is not None else default_assets_dir()
    lock_path = next((root / n for n in (OFFICIAL_LOCK_NAME, LOCK_NAME) if (root / n).is_file()), None)
    if lock_path is None:
        return None
    lock = json.loads(lock_path.read_text())
    packages = lock.get("packages", {})
    names = frozenset(_norm(n) for n in packages)
    imports = frozenset(i for p in packages.values() for i in p.get("imports", []))
    stdlib: frozenset[str] = frozenset()
    zip_path = root / "python_stdlib.zip"
    if zip_path.is_file():
        with zipfile.ZipFile(zip_path) as archive:
            tops = {n.split("/")[0] for n in archive.namelist()}
        stdlib = frozenset(n.removesuffix(".py") for n in tops)
    return PyodideCatalog(str(lock.get("info", {}).get("version", "?")), names, imports, stdlib)


def check_modules(modules: list[dict[str, Any]] | None, catalog: PyodideCatalog | None) -> CheckResult:
    """Classify each module the env imported (beyond the runtime's own) against Pyodide's catalog."""
    if modules is None:
        return CheckResult("pyodide-modules", SKIP, "not run: the seeded rollout crashed, so no module list")
    if catalog is None:
        return CheckResult("pyodide-modules", SKIP, "no Pyodide lock file found, so provided packages are unknown",
                           fix="run `pyodide-runtime assets fetch` (or pass --assets DIR / set PYODIDE_RUNTIME_ASSETS)")
    missing, extra, provided, fine = [], [], [], []
    for m in modules:
        name = m["module"]
        if m["kind"] == "stdlib":
            if catalog.has_stdlib(name, m.get("compiled", False)):
                fine.append(name)
            else:
                missing.append(f"{name} (standard library module not in Pyodide {catalog.version})")
        elif m["kind"] == "dist" and catalog.provides_dist(m["dist"], name):
            provided.append(f"{name} ({m['dist']})")
        elif m.get("pure"):
            if m["kind"] == "dist":
                extra.append(f"{name} ({m['dist']})")
            else:
                fine.append(name)
        else:
            what = ", ".join(m.get("compiled_files") or m.get("tags") or ["compiled"])
            owner = f"distribution {m['dist']} {m.get('version', '')}".strip() if m["kind"] == "dist" else "local module"
            missing.append(f"{name} ({owner}: {what}; not provided by Pyodide {catalog.version})")
    details = {"modules": modules, "missing": missing, "not_in_pyodide_but_pure": extra, "provided_by_pyodide": provided}
    if missing:
        return CheckResult("pyodide-modules", FAIL, f"cannot run in Pyodide: {'; '.join(missing)}",
                           fix=f"replace it with pure Python or with a package Pyodide {catalog.version} provides "
                           "(the packages listed in the assets' pyodide-lock.official.json)",
                           details=details)
    summary = f"{len(modules)} module(s) beyond the runtime's own (numpy, gymnasium)"
    if extra:
        return CheckResult("pyodide-modules", WARN,
                           f"{summary}; pure-Python dependencies not bundled with Pyodide: {', '.join(extra)}",
                           fix="ship these as py3-none-any wheels with the study's assets", details=details)
    parts = [f"Pyodide packages: {', '.join(provided)}" if provided else "", f"stdlib/local: {len(fine)}"]
    return CheckResult("pyodide-modules", PASS,
                       f"{summary}, all available in Pyodide {catalog.version} ({'; '.join(p for p in parts if p)})",
                       details=details)


_PYODIDE_SCRIPT = """
import os, random, sys, time
from pyodide_runtime.pyodide_compat import prepare
facts = prepare()
spec = params["spec"]
for rel, text in params["files"].items():
    path = os.path.join("/home/pyodide/check_env", rel)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as fh:
        fh.write(text)
if params["files"]:
    sys.path.insert(0, "/home/pyodide/check_env")
if params["file_spec"]:
    spec = "/home/pyodide/check_env/" + params["file_spec"]
from pyodide_runtime.envs.loading import load_game
from pyodide_runtime.snapshot import field_digests
game = load_game(spec, params["config"], bots=params["bots"] or None)
rng = random.Random(params["seed"])
counts = [game.input_count(s) for s in range(len(game.seats))]
game.reset(params["seed"])
start = time.perf_counter()
digests = []
for _ in range(params["frames"]):
    r = game.step([rng.randrange(c) for c in counts])
    digests.append(field_digests(r)["observations"][:16])
    if r.episode_over:
        game.reset(params["seed"])
elapsed = time.perf_counter() - start
result = {"frames": len(digests), "step_us": elapsed / max(1, len(digests)) * 1e6,
          "snapshot_method": game.snapshot_method, "python": facts["python"], "pyodide": facts["pyodide"]}
"""


def _files_to_copy(target: EnvTarget) -> tuple[dict[str, str], str | None]:
    """Source files Pyodide needs besides the wheel: a file spec's file, or a local package's ``.py`` files."""
    file = target.file
    if file is not None:
        attr = target.spec.rpartition(":")[2]
        return {file.name: file.read_text()}, f"{file.name}:{attr}"
    import importlib

    top = target.spec.rpartition(":")[0].split(".")[0]
    if top == "pyodide_runtime":
        return {}, None
    module = importlib.import_module(top)
    path = Path(getattr(module, "__file__", "") or "")
    if path.name == "__init__.py":
        root = path.parent
        return {str(Path(top) / p.relative_to(root)): p.read_text() for p in root.rglob("*.py")}, None
    return ({path.name: path.read_text()}, None) if path.suffix == ".py" else ({}, None)


def check_in_pyodide(target: EnvTarget, seed: int, frames: int = 60, assets: Path | None = None) -> CheckResult:
    """Import the env inside real Pyodide (under Node), verify its snapshots and step it a few frames."""
    from pyodide_runtime.assets import AssetError
    from pyodide_runtime.pyodide_host import PyodideHostError, run_in_pyodide

    files, file_spec = _files_to_copy(target)
    params = {"spec": target.spec, "config": dict(target.config) if target.config is not None else None,
              "bots": dict(target.bots), "seed": seed, "frames": frames, "files": files, "file_spec": file_spec}
    try:
        run = run_in_pyodide(_PYODIDE_SCRIPT, params, assets=assets, timeout=300)
    except AssetError as exc:
        return CheckResult("pyodide-run", FAIL, f"no Pyodide assets: {exc}",
                           fix="run `pyodide-runtime assets fetch` or pass --assets DIR")
    except PyodideHostError as exc:
        last = str(exc).strip().splitlines()[-1] if str(exc).strip() else "no output"
        return CheckResult("pyodide-run", FAIL, f"the env failed inside Pyodide: {last}",
                           fix="see the traceback in details; typical causes are a dependency Pyodide lacks or an "
                           "import of a module browsers do not have", details={"traceback": str(exc)[-4000:]})
    out = run.result
    return CheckResult("pyodide-run", PASS,
                       f"imported, verified ({out['snapshot_method']} snapshots) and stepped {out['frames']} frames in "
                       f"Pyodide {out['pyodide']} (Python {out['python']}), {out['step_us']:.0f} µs per frame with hashing",
                       details={**out, "boot_ms": run.boot_ms, "packages_ms": run.packages_ms})
