"""``python -m pyodide_runtime.host.server``: the same as ``pyodide-runtime serve``."""

from __future__ import annotations

import argparse
import sys


def main(argv: list[str] | None = None) -> int:
    from pyodide_runtime.host.server.start import StartError, configure, start

    parser = argparse.ArgumentParser(prog="python -m pyodide_runtime.host.server",
                                     description="Serve a study; the same as `pyodide-runtime serve`.")
    configure(parser)
    args = parser.parse_args(argv)
    try:
        return start(args)
    except StartError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
