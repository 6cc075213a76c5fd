"""Re-run a session from its export bundle and check every canonical row and hash against the re-run.

`validate` shows a bundle is intact; `verify` shows its rows are what the declared env, config and seeds produce
from the recorded inputs. The env is rebuilt from the bundle's metadata; an env whose id, version or source hash
differs from the recorded one is refused unless --force. --engine cpython (default) is fast; --engine pyodide
re-runs inside the participants' Pyodide build under Node, where floats are bit-identical to the browser's.

Exit status: 0 verified, 1 diverged (the first divergent frame, column and both values are named),
2 when the bundle cannot be verified (unreadable, no metadata, env not loadable, a refused env version).

Example::

    pyodide-runtime verify runs/a/simulate_seed0_peer0_seat0.zip
    pyodide-runtime verify data/study/s1/seat0/final-1a2b.zip --env ~/my_study/env.py:make_env --engine pyodide
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any


def configure(parser: argparse.ArgumentParser) -> None:
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.add_argument("bundle", help="bundle (.zip or extracted directory), complete, partial or recovered")
    parser.add_argument("--env", default=None, metavar="SPEC",
                        help="env factory to load instead of the recorded one ('module:function' or "
                             "'file.py:function'), e.g. where the recorded file path is from another machine")
    parser.add_argument("--engine", choices=("cpython", "pyodide"), default="cpython",
                        help="cpython (fast, default) or pyodide (the page's build under Node: decides floats)")
    parser.add_argument("--force", action="store_true",
                        help="verify against an env whose id, version or source hash differs from the recorded one")
    parser.add_argument("--bot", action="append", default=[], metavar="AGENT=SPEC",
                        help="policy of a bot agent whose recorded name cannot be resolved; repeatable")
    parser.add_argument("--source", default=None, metavar="DIR",
                        help="the study's env folder ([env] source), for an env recorded as 'module:function' "
                             "inside it (CPython engine)")
    parser.add_argument("--assets", default=None, help="self-hosted Pyodide assets (for --engine pyodide)")
    parser.add_argument("--format", choices=("text", "json"), default="text", help="output format (default text)")


def _bots(items: list[str]) -> dict[str, str]:
    from pyodide_runtime.host.cli import CommandError

    bots = {}
    for item in items:
        agent, sep, spec = item.partition("=")
        if not sep or not agent or not spec:
            raise CommandError(f"--bot {item!r}: expected AGENT=module:Class")
        bots[agent] = spec
    return bots


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from pyodide_runtime.host.cli import CommandError
    from pyodide_runtime.host.verify import VerifyError, verify

    bots = _bots(args.bot)
    if args.source is not None:
        from pyodide_runtime.host.checkenv.target import EnvTarget

        folder = Path(args.source)
        if not folder.is_dir():
            raise CommandError(f"--source {args.source!r}: no such directory")
        if args.engine != "cpython":
            raise CommandError("--source works with the CPython engine (the Pyodide engine loads packed wheels only)")
        EnvTarget("", source=folder).importable()  # the folder's modules import as the page's wheel made them
    try:
        result = verify(args.bundle, env=args.env, bots=bots, force=args.force, engine=args.engine,
                        assets=Path(args.assets) if args.assets else None)
    except VerifyError as exc:
        if args.format == "json":
            print(json.dumps({"source": args.bundle, "engine": args.engine, "status": "unusable", "verified": False,
                              "error": str(exc), "exit_code": 2}, indent=2, ensure_ascii=False))
            print(f"error: {exc}", file=sys.stderr)
            return 2
        raise CommandError(str(exc)) from None
    if args.format == "json":
        print(json.dumps({**result.to_dict(), "exit_code": result.exit_code}, indent=2, ensure_ascii=False))
    else:
        print("\n".join(report_lines(result)))
    return result.exit_code


def report_lines(result: Any) -> list[str]:
    """The text report of a :class:`~pyodide_runtime.host.verify.VerifyResult`."""
    runtime = result.runtime or {}
    interp = (f"Pyodide {runtime.get('pyodide')}, Python {runtime.get('python')}" if result.engine == "pyodide"
              else f"CPython {runtime.get('python')}")
    lines = [f"{result.source}: engine {result.engine} ({interp})"]
    env = result.env or {}
    source_hash = str(env.get("loaded_source_hash") or "-")[:16]
    lines.append(f"env            {env.get('spec')} ({env.get('env_id')} {env.get('env_version')}, source "
                 f"{source_hash})")
    lines.append(f"bundle         {result.bundle_status}, {result.frames} confirmed frames"
                 + (f", {result.tail_frames} unconfirmed tail frames (not verified)" if result.tail_frames else ""))
    for note in result.notes:
        lines.append(f"note           {note}")
    if result.ok:
        lines.append(f"VERIFIED       every canonical cell and every state hash equals the re-run's "
                     f"({result.frames} frames, {result.episodes} episode(s), {result.resets} reset row(s))")
        return lines
    d = result.divergence
    lines.append(f"DIVERGED       first at {d.describe()}")
    lines.append(f"               {result.differing_cells} canonical cell(s) differ in all")
    if result.float_only:
        if result.engine == "cpython":
            lines.append("               float difference in the last bits; verify with --engine pyodide to decide")
        else:
            lines.append("               only float values differ, but in the participants' own build: a real "
                         "divergence")
    return lines
