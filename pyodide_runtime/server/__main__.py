"""``python -m pyodide_runtime.server``: the same as ``pyodide-runtime serve``."""

from __future__ import annotations

import argparse
import sys


def main(argv: list[str] | None = None) -> int:
    from pyodide_runtime.cli import CommandError
    from pyodide_runtime.commands import serve

    parser = argparse.ArgumentParser(prog="python -m pyodide_runtime.server", description=serve.__doc__)
    serve.configure(parser)
    args = parser.parse_args(argv)
    try:
        return serve.run(args)
    except CommandError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
