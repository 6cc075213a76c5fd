"""Count the engine's instructions per peer-frame with callgrind, for before/after comparisons on a noisy machine.

    python -m pyodide_runtime.host.benchmarks.instructions [--short 200] [--long 1000]

Runs a two-peer Coin Chase session on a perfect simulated network twice under ``valgrind --tool=callgrind`` (a
short and a long one) and divides the difference in instructions by the extra peer-frames, so interpreter start-up
and imports cancel out. The figure covers everything a peer-frame costs in the harness: the engine, the env step,
the simulated network. Needs valgrind (``apt-get install valgrind``); ``OPENBLAS_NUM_THREADS=1`` keeps numpy's idle
BLAS threads out of the count.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

SPEC = "pyodide_runtime.examples.coin_chase:make_env"


def run_session(frames: int) -> None:
    """One two-peer session of ``frames`` frames (what callgrind measures)."""
    from pyodide_runtime.config import SessionConfig
    from pyodide_runtime.envs.loading import load_game
    from pyodide_runtime.host.testing.harness import run_peers

    config = SessionConfig(episodes=1, seed=3, input_delay=2, max_prediction=8)
    result = run_peers(lambda seat: load_game(SPEC, {"players": 2, "max_steps": frames, "target_score": 10**9}),
                       config, seed=3)
    if not result.identical() or len(result.peers[0].records) != frames:
        raise SystemExit("the measured session did not complete identically")


def count(frames: int) -> int:
    """Instructions callgrind counts for a whole interpreter running :func:`run_session` (``frames``)."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "callgrind.out"
        env = {**os.environ, "OPENBLAS_NUM_THREADS": "1", "PYTHONHASHSEED": "0"}
        code = f"from pyodide_runtime.host.benchmarks.instructions import run_session; run_session({frames})"
        proc = subprocess.run(["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", sys.executable, "-c",
                               code], capture_output=True, text=True, env=env)
        if proc.returncode != 0:
            raise SystemExit(f"valgrind failed: {proc.stderr.strip().splitlines()[-1:]}")
        match = re.search(r"^(?:summary|totals): (\d+)", out.read_text(), re.M)
        if match is None:
            raise SystemExit("no instruction total in callgrind's output")
        return int(match.group(1))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pyodide_runtime.host.benchmarks.instructions",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--short", type=int, default=200, help="frames of the short session (default %(default)s)")
    parser.add_argument("--long", type=int, default=1000, help="frames of the long session (default %(default)s)")
    args = parser.parse_args(argv)
    if not 0 < args.short < args.long:
        parser.error("need 0 < --short < --long")
    if shutil.which("valgrind") is None:
        parser.error("valgrind is not installed (apt-get install valgrind)")
    print(f"callgrind: {args.short} and {args.long} frames, two peers…", file=sys.stderr)
    short, long = count(args.short), count(args.long)
    per = (long - short) / (2 * (args.long - args.short))
    print(f"{per:,.0f} instructions per peer-frame ({short:,} and {long:,} in all)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
