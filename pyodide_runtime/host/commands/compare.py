"""Compare the canonical data of two exports (bundles or canonical CSV files).

Exit status: 0 identical, 1 different, 2 when an input cannot be compared (unreadable, truncated, or not in the
export schema). Only canonical files and columns take part, as the export schema declares them; the first
differences are listed with their episode, frame, agent and column, then the number of differences per column.
"""

from __future__ import annotations

import argparse


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("a", help="first bundle (.zip or extracted directory) or canonical CSV")
    parser.add_argument("b", help="second bundle or canonical CSV")
    parser.add_argument("--format", choices=("text", "json"), default="text", help="output format (default text)")
    parser.add_argument("--max-differences", type=int, default=20, metavar="N",
                        help="differences to list in detail (default %(default)s)")
    parser.add_argument("--prefix", action="store_true",
                        help="compare only the frames both exports confirmed (for sessions that ended partial)")
    parser.add_argument("--no-metadata", action="store_true", help="skip the canonical part of metadata.json")


def run(args: argparse.Namespace) -> int:
    from pyodide_runtime.host.cli import CommandError
    from pyodide_runtime.host.compare import CompareError, as_json, compare, stderr_progress

    if args.max_differences < 0:
        raise CommandError("--max-differences must be non-negative")
    try:
        result = compare(
            args.a, args.b, prefix=args.prefix, metadata=not args.no_metadata,
            max_differences=args.max_differences, progress=stderr_progress(),
        )
    except CompareError as exc:
        raise CommandError(str(exc)) from None
    print(as_json(result) if args.format == "json" else result.report())
    return 0 if result.identical else 1
