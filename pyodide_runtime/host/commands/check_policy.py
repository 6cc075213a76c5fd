"""Check a study's ONNX policies before recruiting anyone: do they fit the env, run alike in the page, and act?

Loads the study's env and each [policies.AGENT] model, shows the model's inputs and outputs (names, types,
shapes) and how many numbers an observation maps to, then plays N frames: human seats press random keys from a
seeded generator, each policy decides on every due frame. Every decision runs in onnxruntime (CPython) and, when
Node and the fetched onnxruntime-web files are there, in onnxruntime-web (wasm) as in the page; the report
compares their actions and scores, times each runtime (median and p95), recomputes every decision from the
recorded observations and shows the action distribution. Exit status 0 when every check that ran passed
(skipped checks do not fail), 1 when one failed, 2 for a study or model that cannot be used.

Examples::

    pyodide-runtime check-policy my_study/study.toml
    pyodide-runtime check-policy --example human_ai_onnx --frames 600 --json report.json
    pyodide-runtime check-policy study.toml --agent cook_1 --seed 3 --no-node
"""

from __future__ import annotations

import argparse


def configure(parser: argparse.ArgumentParser) -> None:
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    source = parser.add_mutually_exclusive_group()
    source.add_argument("study", nargs="?", default=None, metavar="STUDY.toml",
                        help="a study file with [policies.AGENT] tables")
    source.add_argument("--example", metavar="NAME", help="check an example study shipped with the package")
    parser.add_argument("--agent", action="append", default=[], metavar="AGENT",
                        help="check only this agent's policy (repeatable; default: every policy)")
    parser.add_argument("--frames", type=int, default=300, help="frames to play (default %(default)s)")
    parser.add_argument("--seed", type=int, default=None,
                        help="seed of the env, the random human seats and sampling (default: session.seed)")
    parser.add_argument("--assets", default=None, metavar="DIR",
                        help="asset directory holding ort/ (default $PYODIDE_RUNTIME_ASSETS or the user cache)")
    parser.add_argument("--no-node", action="store_true", help="do not run onnxruntime-web in Node")
    parser.add_argument("--json", default=None, metavar="FILE", help="also write the report as JSON to FILE")
    parser.add_argument("--quiet", action="store_true", help="no progress lines on stderr")


def run(args: argparse.Namespace) -> int:
    import sys
    from pathlib import Path

    from pyodide_runtime.host.cli import CommandError

    try:
        from pyodide_runtime.host.checkpolicy import (
            CheckPolicyOptions,
            StudyError,
            load_policy_study,
            run_policy_checks,
        )
        from pyodide_runtime.policies import PolicyError
    except ImportError as exc:  # pragma: no cover - a broken installation
        raise CommandError(f"check-policy cannot start: {exc}") from None
    if args.frames < 1:
        raise CommandError("--frames must be at least 1")
    if args.example is not None:
        from pyodide_runtime.host.study_config import example_config

        try:
            path = example_config(args.example)
        except ValueError as exc:
            raise CommandError(f"--example: {exc}") from None
    elif args.study is not None:
        path = Path(args.study)
    else:
        raise CommandError("no study given: pass STUDY.toml or --example NAME")
    if args.json and not Path(args.json).resolve().parent.is_dir():
        raise CommandError(f"--json {args.json!r}: directory {Path(args.json).resolve().parent} does not exist")
    for module in ("onnx", "onnxruntime"):
        try:
            __import__(module)
        except ImportError:
            raise CommandError(f"check-policy needs {module}: pip install 'pyodide-runtime[ai]'") from None

    def progress(message: str) -> None:
        if not args.quiet:
            print(f"check-policy: {message} ...", file=sys.stderr, flush=True)

    options = CheckPolicyOptions(agents=tuple(args.agent), frames=args.frames, seed=args.seed,
                                 assets=Path(args.assets) if args.assets else None, node=not args.no_node)
    try:
        study = load_policy_study(path)
        report = run_policy_checks(study, options, progress)
    except (StudyError, PolicyError) as exc:
        raise CommandError(str(exc)) from None
    print(report.render())
    if args.json:
        Path(args.json).write_text(report.dumps() + "\n")
    return 0 if report.passed else 1
