"""Show the whole product working on this machine, with no configuration.

Starts the study server with the bundled Coin Chase example, opens two headless Chromium players on autopilot
(player A behind injected latency, and away mid-episode: its game tab hidden behind another tab and frozen for a
few seconds), plays one short session, collects both browsers' downloaded export bundles into --out, and checks
them with compare and validate. Prints progress while it works and a summary at the end.

Exit status: 0 when both exports are identical, valid and complete; 1 when not (or when the session failed:
consoles, status dumps and screenshots are saved in --out); 2 when something the demo needs is missing.
Needs: pip install 'pyodide-runtime[demo]', Debian's chromium, and the assets (pyodide-runtime assets fetch).

Example::

    pyodide-runtime demo --out out/demo --latency-ms 120 --jitter-ms 30 --loss 0.05
    pyodide-runtime demo --headed        # you play seat A in your own browser; player B is automated
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any


def configure(parser: argparse.ArgumentParser) -> None:
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.add_argument("--out", type=Path, default=Path("out/demo"), metavar="DIR",
                        help="where the downloaded bundles (and any failure evidence) go (default %(default)s)")
    parser.add_argument("--episodes", type=int, metavar="N", help="episodes in the session (default 2, or the "
                        "example's own)")
    parser.add_argument("--fps", type=int, metavar="N", help="frames per second (default 30, or the example's own)")
    parser.add_argument("--episode-seconds", type=float, metavar="S",
                        help="length of an episode (default 10, or the example's own)")
    parser.add_argument("--latency-ms", type=float, default=80.0, metavar="MS",
                        help="one-way delay on player A's packets (default %(default)s)")
    parser.add_argument("--jitter-ms", type=float, default=20.0, metavar="MS",
                        help="± jitter on that delay (default %(default)s)")
    parser.add_argument("--loss", type=float, default=0.0, metavar="P",
                        help="packet loss probability for player A (default 0)")
    parser.add_argument("--no-away", action="store_true", help="player A stays on the game tab")
    parser.add_argument("--seed", type=int, default=1, help="seed of the autopilots and network conditions "
                        "(default %(default)s)")
    parser.add_argument("--assets", type=Path, metavar="DIR",
                        help="self-hosted Pyodide assets (default: $PYODIDE_RUNTIME_ASSETS or the user cache)")
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--config", type=Path, metavar="FILE",
                        help="a 2-player study config passed to `serve --config` instead of the built-in one "
                        "(it must set test_mode = true; its env, else Coin Chase)")
    source.add_argument("--example", metavar="NAME",
                        help="play an example study shipped with the package (" + ", ".join(_examples()) + ")")
    parser.add_argument("--timeout", type=float, metavar="S",
                        help="give up after this long (default: 90 s plus twice the playing time, at least "
                        "180 s; 900 s with --headed)")
    parser.add_argument("--headed", action="store_true",
                        help="you play seat A in your own browser (the link is printed); only B is automated")
    parser.add_argument("--open", action="store_true", help="like --headed, and open the link in your browser")
    parser.add_argument("--json", type=Path, metavar="FILE", help="also write the summary as JSON to FILE")
    _one_line_errors(parser)


def _examples() -> list[str]:
    try:
        from pyodide_runtime.host.study_config import list_examples
    except ImportError:
        return []
    return list_examples()


def _one_line_errors(parser: argparse.ArgumentParser) -> None:
    """Usage errors as one line (``error: ...``, exit 2) rather than the full usage text."""
    original = parser.parse_known_args

    def error(message: str) -> None:
        parser.exit(2, f"error: {message} (see pyodide-runtime demo --help)\n")

    def parse_known_args(args: Any = None, namespace: Any = None) -> Any:
        namespace, extras = original(args, namespace)
        if extras:
            error(f"unrecognized arguments: {' '.join(extras)}")
        return namespace, extras

    parser.error = error  # type: ignore[method-assign]
    parser.parse_known_args = parse_known_args  # type: ignore[method-assign]


def _options(args: argparse.Namespace) -> Any:
    from pyodide_runtime.host.cli import CommandError
    from pyodide_runtime.host.demo import DemoOptions

    if args.config is not None:
        given = [f for f in ("episodes", "fps", "episode_seconds") if getattr(args, f) is not None]
        if given:
            flags = ", ".join("--" + f.replace("_", "-") for f in given)
            raise CommandError(f"{flags} shape the built-in study; with --config set them in {args.config}")
        if not args.config.is_file():
            raise CommandError(f"--config {args.config}: no such file")
    options = DemoOptions(
        out=args.out, episodes=args.episodes, fps=args.fps, episode_seconds=args.episode_seconds,
        latency_ms=args.latency_ms, jitter_ms=args.jitter_ms, loss=args.loss, away=not args.no_away,
        seed=args.seed, assets=args.assets, config=args.config, example=args.example,
        headed=args.headed or args.open, timeout=args.timeout,
    )
    checks = [
        (args.episodes is None or 1 <= args.episodes <= 1000, "--episodes must be between 1 and 1000"),
        (args.fps is None or 1 <= args.fps <= 240, "--fps must be between 1 and 240"),
        (args.episode_seconds is None or 0.5 <= args.episode_seconds <= 3600,
         "--episode-seconds must be between 0.5 and 3600"),
        (0 <= options.latency_ms <= 10_000 and 0 <= options.jitter_ms <= options.latency_ms,
         "--latency-ms must be 0..10000 and --jitter-ms between 0 and --latency-ms"),
        (0 <= options.loss < 1, "--loss must be a probability in [0, 1)"),
        (args.timeout is None or args.timeout > 0, "--timeout must be positive"),
    ]
    for ok, message in checks:
        if not ok:
            raise CommandError(message)
    return options


def run(args: argparse.Namespace) -> int:
    import signal

    from pyodide_runtime.host.cli import CommandError
    from pyodide_runtime.host.demo import DemoSetupError, run_demo

    options = _options(args)

    def say(line: str) -> None:
        print(line, flush=True)

    def on_url(url: str) -> None:
        if args.open:
            import webbrowser

            webbrowser.open(url)

    def interrupt(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, interrupt)  # stop the server and browsers on `kill` too, not only Ctrl-C
    try:
        result = run_demo(options, say=say, on_url=on_url)
    except DemoSetupError as exc:
        raise CommandError(str(exc)) from None
    say(result.summary())
    if not result.ok and result.compare_report and result.identical is False:
        print(result.compare_report, file=sys.stderr)
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result.to_dict(), indent=2))
    return 0 if result.ok else 1
