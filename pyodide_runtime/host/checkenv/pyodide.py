"""Pyodide compatibility: every module the env brings in must be pure Python or provided by Pyodide 0.27.7, and
(with ``--pyodide``) the env must import and step inside real Pyodide under Node."""

from __future__ import annotations

import json
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pyodide_runtime.host.checkenv.report import FAIL, PASS, SKIP, WARN, CheckResult
from pyodide_runtime.host.checkenv.target import EnvTarget

__all__ = ["PyodideCatalog", "PageModules", "load_catalog", "page_modules", "lock_closure", "directory_modules",
           "check_modules", "check_in_pyodide"]

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
    from pyodide_runtime.host.assets import LOCK_NAME, OFFICIAL_LOCK_NAME, default_assets_dir

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


@dataclass(frozen=True)
class PageModules:
    """What the participant page can import: the closure of the packages it loads in its lock, Pyodide's standard
    library, and the env's own file or directory. Built from the same lock file the page loads."""

    version: str
    importable: frozenset[str]  #: top-level import names of every package the page loads (dependencies included)
    loaded: tuple[str, ...]  #: the lock names the page loads (the closure)
    catalog: PyodideCatalog  #: everything Pyodide's official lock offers, for advice
    env_file: Path | None = None  #: a file spec's file: the page gets this one file
    source: Path | None = None  #: the study's env directory: the page gets its modules and data in a wheel
    local: frozenset[str] = frozenset()  #: top-level names the env directory provides


def lock_closure(lock: dict, roots: list[str]) -> list[str]:
    """Names ``loadPackage(roots)`` installs from ``lock``: the roots and their ``depends``, transitively."""
    packages = lock.get("packages", {})
    seen: dict[str, None] = {}
    stack = [_norm(r) for r in roots]
    names = {_norm(n): n for n in packages}
    while stack:
        name = names.get(stack.pop(0))
        if name is None or name in seen:
            continue
        seen[name] = None
        stack.extend(_norm(d) for d in packages[name].get("depends", []))
    return list(seen)


def directory_modules(source: Path) -> frozenset[str]:
    """Top-level import names a packed env directory provides (see ``checkenv.target.source_search_path``)."""
    source = Path(source)
    if (source / "__init__.py").is_file():
        return frozenset({source.name})
    names = {p.stem for p in source.glob("*.py")}
    names |= {p.name for p in source.iterdir() if p.is_dir() and (p / "__init__.py").is_file()}
    return frozenset(n for n in names if n.isidentifier())


def page_modules(target: EnvTarget, assets: Path | None = None, study_packages: Any = None) -> PageModules | None:
    """What the page will be able to import for ``target``; ``None`` when no assets are there to tell.

    ``study_packages`` is the :class:`pyodide_runtime.host.packages.StudyPackages` prepared for the target's packages and
    env directory (as ``serve`` prepares them); without it, the page loads the runtime's own lock only.
    """
    from pyodide_runtime.host.assets import LOCK_NAME, default_assets_dir

    catalog = load_catalog(assets)
    root = Path(assets) if assets is not None else default_assets_dir()
    if catalog is None or not (root / LOCK_NAME).is_file():
        return None
    if study_packages is not None:
        lock, roots = study_packages.lock(), ["pyodide-runtime", *study_packages.load_names]
    else:
        lock, roots = json.loads((root / LOCK_NAME).read_text()), ["pyodide-runtime"]
    loaded = lock_closure(lock, roots)
    imports = frozenset(i for n in loaded for i in lock["packages"][n].get("imports", []))
    local = directory_modules(target.source) if target.source is not None else frozenset()
    return PageModules(catalog.version, imports | local, tuple(loaded), catalog, target.file, target.source, local)


def _advice_for_dist(m: dict[str, Any], catalog: PyodideCatalog) -> tuple[str, str | None]:
    """(why the page lacks it, the ``env.packages`` entry that would provide it, or ``None`` when none can)."""
    name, dist = m["module"], m["dist"]
    official = next((n for n in catalog.packages if n == _norm(dist)), None)
    if official is not None or name in catalog.imports:
        return f"{name} ({dist}: provided by Pyodide {catalog.version}, but the study does not load it)", _norm(dist)
    if m.get("pure"):
        version = m.get("version")
        requirement = f"{dist}=={version}" if version else dist
        return f"{name} ({dist} {version or ''}: pure Python, not among the study's packages)".replace(" :", ":"), \
            requirement
    what = ", ".join(m.get("compiled_files") or m.get("tags") or ["compiled"])
    return f"{name} (distribution {dist} {m.get('version', '')}: {what}; not provided by Pyodide " \
           f"{catalog.version})".replace("  ", " "), None


def check_modules(modules: list[dict[str, Any]] | None, page: PageModules | None) -> CheckResult:
    """Each module the env imported (beyond the runtime's own) must be importable by the page, judged from the lock
    the page loads. A missing one fails, with the ``env.packages`` line or ``env.source`` setting that fixes it."""
    if modules is None:
        return CheckResult("pyodide-modules", SKIP, "not run: the seeded rollout crashed, so no module list")
    if page is None:
        return CheckResult("pyodide-modules", SKIP, "no Pyodide lock file found, so what the page loads is unknown",
                           fix="run `pyodide-runtime assets fetch` (or pass --assets DIR / set PYODIDE_RUNTIME_ASSETS)")
    catalog = page.catalog
    missing: list[str] = []
    add: list[str] = []
    need_source: list[str] = []
    provided, fine = [], []
    for m in modules:
        name = m["module"]
        if m["kind"] == "stdlib":
            if catalog.has_stdlib(name, m.get("compiled", False)):
                if name in catalog.imports and name not in page.importable and name not in catalog.stdlib:
                    missing.append(f"{name} (an optional standard library module Pyodide ships as a package)")
                    add.append(name)
                else:
                    fine.append(name)
            else:
                missing.append(f"{name} (standard library module not in Pyodide {catalog.version})")
        elif name in page.importable:
            (fine if name in page.local else provided).append(name)
        elif m["kind"] == "dist":
            why, requirement = _advice_for_dist(m, catalog)
            missing.append(why)
            if requirement:
                add.append(requirement)
        else:
            compiled = m.get("compiled_files") or []
            file = m.get("file") or ""
            if compiled:
                missing.append(f"{name} (local module with compiled files: {', '.join(compiled)})")
                continue
            # A package directory is packed as that package; a plain module's directory holds it at top level.
            folder = Path(file).parent
            sibling = page.env_file is not None and folder == page.env_file.parent
            missing.append(f"{name} (a local module{' beside ' + page.env_file.name if sibling else ''} at {file}; "
                           "the page does not get it)")
            need_source.append(str(folder))
    details = {"modules": modules, "missing": missing, "packages_to_add": add, "loaded": list(page.loaded),
               "provided": provided}
    if missing:
        fixes = []
        if add:
            fixes.append("add to the study config: [env] packages = [" + ", ".join(f'"{r}"' for r in add) + "]")
        if need_source:
            folder = sorted(set(need_source))[0]
            fixes.append(f"serve the env's folder: [env] source = \"{folder}\" with spec = \"module:function\" inside "
                         "it (a file spec gives the page that one file only)")
        if len(missing) > len(add) + len(need_source):  # compiled or absent from Pyodide: no config line helps
            fixes.append("replace compiled dependencies with pure Python or with a package Pyodide "
                         f"{catalog.version} provides (listed in the assets' pyodide-lock.official.json)")
        return CheckResult("pyodide-modules", FAIL, f"the page cannot import: {'; '.join(missing)}",
                           fix="; ".join(fixes), details=details)
    summary = f"{len(modules)} module(s) beyond the runtime's own (numpy, gymnasium)"
    parts = [f"from the study's packages: {', '.join(sorted(provided))}" if provided else "",
             f"stdlib/local: {len(fine)}"]
    return CheckResult("pyodide-modules", PASS,
                       f"{summary}, all importable by the page in Pyodide {catalog.version} "
                       f"({'; '.join(p for p in parts if p)})", details=details)


_PYODIDE_SCRIPT = """
import os, random, sys, time
from pyodide_runtime.pyodide_compat import prepare
facts = prepare()
spec = params["spec"]
if params["file"]:
    # As the page does: the env file is written into the working directory and loaded by its relative name.
    with open(params["file"]["name"], "w") as fh:
        fh.write(params["file"]["text"])
from pyodide_runtime.envs.loading import load_game
from pyodide_runtime.envs.snapshot_check import field_digests
game = load_game(spec, params["config"], bots=params["bots"] or None)
rng = random.Random(params["seed"])
counts = [game.input_count(s) for s in range(len(game.seats))]
game.reset(params["seed"])
start = time.perf_counter()
digests, steps = [], []
for _ in range(params["frames"]):
    inputs = [rng.randrange(c) for c in counts]
    t0 = time.perf_counter()
    r = game.step(inputs)
    steps.append(time.perf_counter() - t0)
    digests.append(field_digests(r)["observations"][:16])
    if r.episode_over:
        game.reset(params["seed"])
elapsed = time.perf_counter() - start
captures, restores = [], []
for _ in range(31):
    t0 = time.perf_counter()
    state = game.get_state()
    t1 = time.perf_counter()
    game.set_state(state)
    captures.append(t1 - t0)
    restores.append(time.perf_counter() - t1)
median = lambda xs: sorted(xs)[len(xs) // 2] * 1e6
result = {"frames": len(digests), "step_us": elapsed / max(1, len(digests)) * 1e6,
          "step_median_us": median(steps), "capture_us": median(captures), "restore_us": median(restores),
          "snapshot_method": game.snapshot_method, "python": facts["python"], "pyodide": facts["pyodide"]}
"""


def check_in_pyodide(target: EnvTarget, seed: int, frames: int = 60, assets: Path | None = None,
                     study_packages: Any = None) -> CheckResult:
    """Load the env inside real Pyodide (under Node) exactly as the page does, verify its snapshots and step it.

    The same lock and packages as the page: the study's lock when it has packages or an env directory (whose
    wheel is installed, not copied), else the runtime's own; a file spec's one file written beside it.
    """
    from pyodide_runtime.host.assets import AssetError
    from pyodide_runtime.host.pyodide_host import PyodideHostError, run_in_pyodide

    spec, file = target.spec, None
    if target.file is not None:
        function = target.spec.rpartition(":")[2]
        spec, file = f"{target.file.name}:{function}", {"name": target.file.name, "text": target.file.read_text()}
    params = {"spec": spec, "config": dict(target.config) if target.config is not None else None,
              "bots": dict(target.bots), "seed": seed, "frames": frames, "file": file}
    packages: tuple[str, ...] = ("pyodide-runtime",)
    lock = None
    if study_packages is not None:
        packages = ("pyodide-runtime", *study_packages.load_names)
        lock = study_packages.lock_path
    try:
        run = run_in_pyodide(_PYODIDE_SCRIPT, params, assets=assets, timeout=300, packages=packages, lock=lock)
    except AssetError as exc:
        return CheckResult("pyodide-run", FAIL, f"no Pyodide assets: {exc}",
                           fix="run `pyodide-runtime assets fetch` or pass --assets DIR")
    except PyodideHostError as exc:
        last = str(exc).strip().splitlines()[-1] if str(exc).strip() else "no output"
        return CheckResult("pyodide-run", FAIL, f"the env failed inside Pyodide: {last}",
                           fix="see the traceback in details; typical causes are a dependency the study does not "
                           "load (add it to [env] packages), a module beside a single env file (use [env] source), "
                           "or an import of a module browsers do not have", details={"traceback": str(exc)[-4000:]})
    out = run.result
    loaded = f" with {', '.join(study_packages.load_names)}" if study_packages is not None else ""
    return CheckResult("pyodide-run", PASS,
                       f"imported{loaded}, verified ({out['snapshot_method']} snapshots) and stepped {out['frames']} "
                       f"frames in Pyodide {out['pyodide']} (Python {out['python']}), {out['step_us']:.0f} µs per "
                       "frame with hashing", details={**out, "boot_ms": run.boot_ms, "packages_ms": run.packages_ms})
