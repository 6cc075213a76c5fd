"""Roll back every frame at each distance and compare hashes: catches nondeterminism and hidden state.

Loads the env factory, verifies its snapshots at start-up (unless --no-verify), then runs the sync test at every
distance given. Exit status 0 when every run passed, 1 when one failed (the first mismatch is printed), 2 on a
usage error.

Example::

    pyodide-runtime synctest pyodide_runtime.examples.coin_chase:make_env --distance 1,4,8 --bot player_1=random
"""

from __future__ import annotations

import argparse


def configure(parser: argparse.ArgumentParser) -> None:
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.add_argument("env", help="env factory, 'package.module:function' or 'path/to/file.py:function'")
    parser.add_argument("--config", default=None, help="JSON object passed to the factory")
    parser.add_argument("--frames", type=int, default=600, help="frames per run (default %(default)s)")
    parser.add_argument("--distance", default="1,2,4,8", help="comma-separated rollback distances (default %(default)s)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-verify", action="store_true", help="skip the start-up snapshot verification")
    parser.add_argument("--bot", action="append", default=[], metavar="AGENT=BOT",
                        help="let a bot play AGENT: 'random', 'idle' or 'module:attr'; repeatable")


def run(args: argparse.Namespace) -> int:
    import json

    from pyodide_runtime.host.cli import CommandError
    from pyodide_runtime.envs.loading import load_game
    from pyodide_runtime.snapshot import SnapshotError
    from pyodide_runtime.host.synctest import run_sync_test

    bots = {}
    for item in args.bot:
        agent, sep, bot = item.partition("=")
        if not sep:
            raise CommandError(f"--bot {item!r}: expected AGENT=BOT")
        bots[agent] = bot
    try:
        distances = [int(d) for d in args.distance.split(",")]
    except ValueError:
        raise CommandError(f"--distance {args.distance!r}: expected comma-separated integers") from None
    try:
        config = json.loads(args.config) if args.config is not None else None
    except ValueError as exc:
        raise CommandError(f"--config is not valid JSON: {exc}") from None
    try:
        game = load_game(args.env, config, bots=bots or None, verify=not args.no_verify)
    except SnapshotError as exc:
        print(f"refused: {exc}")
        return 1
    except (ImportError, TypeError, ValueError) as exc:
        raise CommandError(f"cannot load env {args.env!r}: {exc}") from None
    passed = True
    for distance in distances:
        report = run_sync_test(game, frames=args.frames, distance=distance, seed=args.seed)
        print(report)
        passed = passed and report.passed
    return 0 if passed else 1
