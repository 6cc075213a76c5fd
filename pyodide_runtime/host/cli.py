"""The ``pyodide-runtime`` command line.

Each subcommand lives in its own module under :mod:`pyodide_runtime.host.commands`. A command module defines
``configure(parser)`` to declare its arguments and ``run(args) -> int`` to do the work; heavy imports belong
inside ``run`` so that ``--help`` stays instant.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from pyodide_runtime import __version__

# name -> (module, one-line help). Order is the order shown in --help.
COMMANDS: dict[str, tuple[str, str]] = {
    "demo": ("pyodide_runtime.host.commands.demo", "see it work: server, two browser players, one session, identical exports"),
    "assets": ("pyodide_runtime.host.commands.assets", "fetch and verify the self-hosted Pyodide assets"),
    "serve": ("pyodide_runtime.host.commands.serve", "serve a study: page, assets, rooms, signaling, relay and uploads"),
    "simulate": ("pyodide_runtime.host.commands.simulate", "run peers in one process over a seeded simulated network"),
    "synctest": ("pyodide_runtime.host.commands.synctest", "roll back every frame and compare hashes: is the env rollback-safe?"),
    "check-env": ("pyodide_runtime.host.commands.check_env", "check an env for rollback and Pyodide fitness, with a fix per failure"),
    "check-policy": ("pyodide_runtime.host.commands.check_policy", "check a study's ONNX policies: fit, runtimes agree, speed, actions"),
    "compare": ("pyodide_runtime.host.commands.compare", "compare the canonical data of two exports"),
    "validate": ("pyodide_runtime.host.commands.validate", "check an export bundle's integrity and consistency"),
    "replay": ("pyodide_runtime.host.commands.replay", "replay a bundle in the browser, or render it to a video"),
    "verify": ("pyodide_runtime.host.commands.verify", "re-run a bundle's session and check every row and hash against it"),
    "bench": ("pyodide_runtime.host.commands.bench", "measure the engine against bare env.step, in CPython and Pyodide"),
}


class CommandError(Exception):
    """A user-facing failure: printed without a traceback, exit status 2."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="pyodide-runtime",
        description="Rollback netcode for two-player gymnasium experiments in the browser, "
        "with byte-identical research exports.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (module_name, help_text) in COMMANDS.items():
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name != module_name:
                raise
            continue  # a command that is not part of this build
        cmd = sub.add_parser(name, help=help_text, description=(module.__doc__ or help_text).strip())
        module.configure(cmd)
        cmd.set_defaults(_run=module.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "_run", None) is None:
        parser.print_help()
        return 2
    try:
        return int(args._run(args) or 0)
    except CommandError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
