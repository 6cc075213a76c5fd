"""The browser core (everything in ``pyodide_runtime`` outside ``host/``) never imports a host module.

The participant's page loads the core; ``pyodide_runtime.host`` holds what runs on the researcher's machine (the
command line, server, assets, checks, replay, benchmarks). Two checks: a static one over every import statement,
including imports inside functions, and a dynamic one that imports every core module with ``host`` made
unimportable.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "pyodide_runtime"
REPO = PACKAGE.parent
#: The participant page's scripts: what they ask Python to import must be core too.
PAGE_SCRIPTS = ("js_bridge/worker.mjs", "js_bridge/loader.mjs", "js_bridge/main.mjs")


def core_modules() -> list[str]:
    names = []
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(PACKAGE.parent).with_suffix("")
        parts = rel.parts
        if parts[1] == "host" or parts[-1] == "__main__":  # __main__ is the command line's entry point
            continue
        names.append(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
    return names


def imported_names(path: Path, module: str) -> list[tuple[int, str]]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join([*anchor, base] if base else anchor)
            found.append((node.lineno, base))
            found += [(node.lineno, f"{base}.{alias.name}") for alias in node.names]
    return found


def test_the_core_is_most_of_the_package_and_host_is_separate():
    modules = core_modules()
    assert "pyodide_runtime.bridge" in modules and "pyodide_runtime.sync.timeline" in modules
    assert not any(m == "pyodide_runtime.host" or m.startswith("pyodide_runtime.host.") for m in modules)
    assert (PACKAGE / "host" / "cli.py").is_file() and (PACKAGE / "host" / "server").is_dir()


def test_no_core_module_imports_a_host_module():
    offences = []
    for module in core_modules():
        rel = Path(*module.split("."))
        path = REPO / (str(rel) + ".py")
        if not path.is_file():
            path = REPO / rel / "__init__.py"
        for line, name in imported_names(path, module):
            if name == "pyodide_runtime.host" or name.startswith("pyodide_runtime.host."):
                offences.append(f"{path.relative_to(REPO)}:{line} imports {name}")
    assert offences == []


def test_every_core_module_imports_with_the_host_package_unavailable():
    code = (
        "import sys, importlib\n"
        "sys.modules['pyodide_runtime.host'] = None\n"  # any import of it now raises ImportError
        f"for name in {core_modules()!r}:\n"
        "    importlib.import_module(name)\n"
        "print('ok', len(sys.modules))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.startswith("ok")


def test_the_participant_page_asks_python_only_for_core_modules():
    for script in PAGE_SCRIPTS:
        text = (REPO / script).read_text(encoding="utf-8")
        assert "pyodide_runtime.host" not in text, script
        assert "pyodide_runtime" in text or script == "js_bridge/main.mjs"


def test_the_core_layers_import_each_other_without_a_cycle():
    """Between the core's top-level units (``session``, ``sync``, ``envs``, ``bots``, ``specs``...), imports only
    go one way, so the layers can be read bottom-up."""
    unit = lambda name: name.split(".")[1]  # noqa: E731 - pyodide_runtime.<unit>...
    graph: dict[str, set[str]] = {}
    for module in core_modules():
        if module.count(".") == 0:
            continue
        rel = Path(*module.split("."))
        path = REPO / (str(rel) + ".py")
        if not path.is_file():
            path = REPO / rel / "__init__.py"
        for _line, name in imported_names(path, module):
            if name.startswith("pyodide_runtime.") and name.count(".") >= 1:
                target = unit(name)
                if target != unit(module) and ((PACKAGE / target).is_dir() or (PACKAGE / f"{target}.py").is_file()):
                    graph.setdefault(unit(module), set()).add(target)
    assert graph["session"] >= {"sync", "protocol"} and "session" not in graph.get("sync", set())

    def cycle_from(start: str) -> list[str] | None:
        stack = [(start, [start])]
        while stack:
            node, path = stack.pop()
            for nxt in sorted(graph.get(node, ())):
                if nxt == start:
                    return [*path, start]
                if nxt not in path:
                    stack.append((nxt, [*path, nxt]))
        return None

    assert [c for c in map(cycle_from, sorted(graph)) if c] == []
