"""Check an env before recruiting anyone: is it fit for rollback and for Pyodide?

Runs gymnasium's or PettingZoo's own API checker and our adapter, the start-up snapshot verification, a sync test
at several distances, a restore into a fresh env (hidden state), watches reset/step for global generators,
entropy and clock reads, compares seeded rollouts across fresh processes and string-hash seeds, measures snapshot
size and cost, and checks that every module the env imports exists in Pyodide 0.27.7. One line per check, with a
fix for each failure. Exit status 0 when every check passed (warnings allowed), 1 when one failed, 2 on a usage
error. Progress goes to stderr; --json FILE writes the machine-readable report.

With ``--study study.toml`` the env, its config, bots, ``[env] packages`` and ``[env] source`` come from the study
config, and the module check and ``--pyodide`` use the very lock and packages ``serve`` prepares for the page.

Examples::

    pyodide-runtime check-env my_study/env.py:make_env --config study_env.json --bot player_1=random --json report.json
    pyodide-runtime check-env --study study.toml --pyodide
    pyodide-runtime check-env my_env.game:make_env --source my_env/ --package pettingzoo==1.27.0
"""

from __future__ import annotations

import argparse


def configure(parser: argparse.ArgumentParser) -> None:
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.add_argument("env", nargs="?", default=None,
                        help="env factory, 'package.module:function' or 'path/to/file.py:function' "
                             "(default: env.spec of --study)")
    parser.add_argument("--study", default=None, metavar="TOML",
                        help="a study config: env spec, config, bots, packages and source as serve uses them")
    parser.add_argument("--package", action="append", default=[], metavar="REQ",
                        help="a requirement the page loads with the runtime, as in [env] packages; repeatable")
    parser.add_argument("--source", default=None, metavar="DIR",
                        help="the env's local directory, packed into a wheel for the page, as [env] source")
    parser.add_argument("--config", default=None, help="JSON object passed to the factory, or a .json file holding it")
    parser.add_argument("--bot", action="append", default=[], metavar="AGENT=BOT",
                        help="let a bot play AGENT: 'random', 'idle' or 'module:attr'; repeatable")
    parser.add_argument("--distance", default="1,4,8", help="comma-separated sync test distances (default %(default)s)")
    parser.add_argument("--frames", type=int, default=300, help="frames per sync test run (default %(default)s)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--fps", type=int, default=None,
                        help="frame rate the frame-budget check judges against (default: the study's, else 30)")
    parser.add_argument("--pyodide", action="store_true",
                        help="also import and step the env inside real Pyodide under Node (needs the assets)")
    parser.add_argument("--assets", default=None, metavar="DIR",
                        help="Pyodide asset directory (default $PYODIDE_RUNTIME_ASSETS or the user cache)")
    parser.add_argument("--json", default=None, metavar="FILE", help="also write the report as JSON to FILE")
    parser.add_argument("--quiet", action="store_true", help="no progress lines on stderr")


def _config(text: str | None) -> dict | None:
    import json
    from pathlib import Path

    from pyodide_runtime.host.cli import CommandError

    if text is None:
        return None
    source, path = "--config", Path(text)
    if not text.lstrip().startswith(("{", "[")) and path.is_file():
        source, text = f"--config file {path}", path.read_text()
    try:
        value = json.loads(text)
    except ValueError as exc:
        raise CommandError(f"{source} is neither valid JSON ({exc}) nor an existing file") from None
    if not isinstance(value, dict):
        raise CommandError(f"{source} must hold a JSON object, got {type(value).__name__}")
    return value


def run(args: argparse.Namespace) -> int:
    import sys
    from pathlib import Path

    from pyodide_runtime.config import SessionConfig
    from pyodide_runtime.host.checkenv import CheckOptions, EnvTarget, run_checks
    from pyodide_runtime.host.cli import CommandError

    bots = {}
    for item in args.bot:
        agent, sep, bot = item.partition("=")
        if not sep or not agent or not bot:
            raise CommandError(f"--bot {item!r}: expected AGENT=BOT")
        bots[agent] = bot
    try:
        distances = tuple(int(d) for d in args.distance.split(","))
    except ValueError:
        raise CommandError(f"--distance {args.distance!r}: expected comma-separated integers") from None
    if not distances or min(distances) < 1 or args.frames < 1:
        raise CommandError("--distance values and --frames must be at least 1")
    spec, config, packages, source = args.env, _config(args.config), tuple(args.package), None
    exclude: tuple[str, ...] = ()
    study_fps = None
    window = SessionConfig().max_prediction
    if args.study is not None:
        from pyodide_runtime.host.study_config import StudyConfigError, load_study_config

        try:
            study = load_study_config(Path(args.study))
        except StudyConfigError as exc:
            raise CommandError(f"--study {exc}") from None
        spec = spec or study.env_spec
        config = config if config is not None else study.page.get("env_config")
        bots = {**(study.page.get("bots") or {}), **bots}
        packages = (*study.packages, *packages)
        source = study.env_source
        exclude = study.exclude
        study_fps = (study.page.get("session") or {}).get("fps")
        window = (study.page.get("session") or {}).get("max_prediction", window)
    if args.source is not None:
        source = Path(args.source).resolve()
        if not source.is_dir():
            raise CommandError(f"--source {args.source!r}: no such directory")
    if spec is None:
        raise CommandError("no env given: pass SPEC or --study with env.spec")
    fps = args.fps if args.fps is not None else int(study_fps or 30)
    if not 1 <= fps <= 240:
        raise CommandError(f"--fps {fps}: must be between 1 and 240")
    target = EnvTarget(spec, config, bots, source, packages, exclude)
    if target.file is not None:  # absolute, so fresh processes find it whatever their directory
        target = EnvTarget(f"{target.file}:{spec.rpartition(':')[2]}", config, bots, source, packages, exclude)
    try:
        target.make_env()
    except (ImportError, ValueError) as exc:
        raise CommandError(f"cannot load env {spec!r}: {exc}") from None
    except TypeError as exc:
        raise CommandError(f"cannot build env {spec!r}: {exc}") from None
    if args.json:
        json_path = Path(args.json)
        if not json_path.parent.is_dir():
            raise CommandError(f"--json {args.json!r}: directory {json_path.parent} does not exist")

    def progress(message: str) -> None:
        if not args.quiet:
            print(f"check-env: {message} ...", file=sys.stderr, flush=True)

    options = CheckOptions(distances=distances, sync_frames=args.frames, seed=args.seed, pyodide=args.pyodide,
                           assets=Path(args.assets) if args.assets else None, fps=fps,
                           window=int(window))
    report = run_checks(target, options, progress)
    print(report.render())
    if args.json:
        Path(args.json).write_text(report.dumps() + "\n")
    return 0 if report.passed else 1
