"""Benchmarks, measured side by side and reported as medians and ratios.

`bench core` measures the rollback engine against a bare ``env.step`` loop on the same env, in CPython and
(unless --no-pyodide) inside real Pyodide under Node with the self-hosted assets. It prints a table and, with
--json, writes every figure to a file.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path
from typing import Any

COLUMNS = (
    ("env", "env"), ("snapshot_method", "snapshot"), ("bare_step_us", "bare µs"), ("game_step_us", "adapter µs"),
    ("engine_frame_us", "engine µs"), ("engine_ratio", "engine/bare"), ("engine_ratio_retained", "engine/kept"), ("resim_frame_us", "resim µs"),
    ("resim_rate", "resim rate"), ("fast_forward_fps", "ff fps"), ("fast_forward_rate", "ff rate"),
)


def configure(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="suite", metavar="SUITE", required=True)
    core = sub.add_parser("core", help="engine vs bare env.step, resimulation and fast-forward rates")
    core.add_argument("--frames", type=int, default=600, help="frames per measurement (default %(default)s)")
    core.add_argument("--repeats", type=int, default=5, help="repeats; figures are medians (default %(default)s)")
    core.add_argument("--no-pyodide", action="store_true", help="CPython only (skip the run inside Pyodide)")
    core.add_argument("--assets", type=Path, help="asset directory for the Pyodide run")
    core.add_argument("--json", type=Path, metavar="FILE", help="also write the results as JSON")
    from pyodide_runtime.host.benchmarks import browser, mug, scale

    for suite in (scale, browser, mug):  # each adds its parser and sets ``bench_run``
        suite.add_parser(sub)
    from pyodide_runtime.host.benchmarks import fuzz, load, soak

    for reliability in (fuzz, load, soak):  # each adds its parser and sets ``bench_run``
        reliability.add_parser(sub)


def run(args: argparse.Namespace) -> int:
    from pyodide_runtime.host.cli import CommandError

    if getattr(args, "bench_run", None) is not None:
        return args.bench_run(args)
    if args.frames < 100 or args.repeats < 1:
        raise CommandError("--frames must be at least 100 and --repeats at least 1")
    from pyodide_runtime.host.benchmarks.core import bench_core

    results: dict[str, Any] = {"machine": _machine(), "suite": "core", "frames": args.frames, "repeats": args.repeats}
    t0 = time.perf_counter()
    print(f"bench core: CPython {platform.python_version()}, {args.repeats} repeats of {args.frames} frames…", file=sys.stderr)
    results["cpython"] = bench_core(args.frames, args.repeats)
    print(f"  done in {time.perf_counter() - t0:.0f} s", file=sys.stderr)
    if not args.no_pyodide:
        from pyodide_runtime.host.assets import AssetError
        from pyodide_runtime.host.pyodide_host import PyodideHostError, run_in_pyodide

        print("bench core: inside Pyodide under Node…", file=sys.stderr)
        t0 = time.perf_counter()
        code = (
            "from pyodide_runtime import pyodide_compat\npyodide_compat.prepare()\n"
            "from pyodide_runtime.host.benchmarks.core import bench_core\n"
            "result = bench_core(params['frames'], params['repeats'])\n"
        )
        try:
            out = run_in_pyodide(code, {"frames": args.frames, "repeats": args.repeats}, assets=args.assets, timeout=3600)
        except (AssetError, PyodideHostError) as exc:
            raise CommandError(f"the Pyodide run failed: {exc}\n(use --no-pyodide for CPython only)") from exc
        results["pyodide"] = out.result
        results["pyodide_boot_ms"] = round(out.boot_ms)
        results["pyodide_packages_ms"] = round(out.packages_ms)
        print(f"  done in {time.perf_counter() - t0:.0f} s", file=sys.stderr)
        results["pyodide_vs_cpython_bare_step"] = [
            round(p["bare_step_us"] / c["bare_step_us"], 2) for p, c in zip(results["pyodide"], results["cpython"])
        ]
    _print_table(results)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(results, indent=1))
        print(f"wrote {args.json}", file=sys.stderr)
    return 0


def _machine() -> dict[str, Any]:
    import os

    return {"python": platform.python_version(), "platform": platform.platform(), "cpus": os.cpu_count(),
            "processor": platform.processor() or platform.machine(), "load_1min": os.getloadavg()[0]}


def _print_table(results: dict[str, Any]) -> None:
    for interp in ("cpython", "pyodide"):
        rows = results.get(interp)
        if not rows:
            continue
        print(f"\n{interp} (medians of {results['repeats']} × {results['frames']} frames)")
        header = [title for _, title in COLUMNS]
        table = [[_fmt(row.get(key)) for key, _ in COLUMNS] for row in rows]
        widths = [max(len(h), *(len(r[i]) for r in table)) for i, h in enumerate(header)]
        print("  ".join(h.ljust(w) for h, w in zip(header, widths)))
        for r in table:
            print("  ".join(c.ljust(w) for c, w in zip(r, widths)))


def _fmt(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.2f}" if value < 100 else f"{value:.0f}"
    return str(value)
