"""Validate an export bundle: manifest hashes, schema, codebook, provenance and internal consistency,
including the state-hash chain recomputed from the exported rows.

Exit status: 0 valid, 1 invalid (the problems are listed), 2 when the bundle cannot be read.
"""

from __future__ import annotations

import argparse
import json


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("bundle", nargs="+", help="bundle (.zip or extracted directory)")
    parser.add_argument("--format", choices=("text", "json"), default="text", help="output format (default text)")


def run(args: argparse.Namespace) -> int:
    from pyodide_runtime.host.cli import CommandError
    from pyodide_runtime.export.bundle import BundleError
    from pyodide_runtime.host.validate import validate

    results = []
    for source in args.bundle:
        try:
            results.append(validate(source))
        except BundleError as exc:
            raise CommandError(str(exc)) from None
    if args.format == "json":
        out = [r.to_dict() for r in results]
        print(json.dumps(out[0] if len(out) == 1 else out, indent=2, ensure_ascii=False))
    else:
        for r in results:
            if r.ok:
                summary = ", ".join(f"{k} {v}" for k, v in r.summary.items())
                print(f"{r.source}: valid ({summary})")
            else:
                print(f"{r.source}: INVALID, {len(r.problems)} problem(s)")
                for p in r.problems:
                    print(f"  - {p}")
    return 0 if all(r.ok for r in results) else 1
