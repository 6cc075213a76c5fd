"""Replay an export bundle: re-simulate its confirmed inputs with the study's own env and renderer.

Without --video/--gif, serve a replay page (open the printed URL): the bundle is re-simulated in the browser, in
Pyodide, with play/pause, speed, frame stepping, a scrubber by episode and frame, each seat's input, and markers
for rollbacks, away spans, fast-forwards, desyncs and stalls. With --video or --gif, render the frames here and
write a video file instead. Either way every re-simulated observation is compared with the recorded one.

The bundle records its env factory, config and bot names. An env given as a file is not in the bundle: pass it
with --env (and the study config with --config, or --example, when the study has packages or Python bots).
Examples::

    pyodide-runtime replay out/demo/coin_chase_58f79ae804aba1e5_A_seat0.zip
    pyodide-runtime replay pilot_P01_seat0.zip --env my_study/env.py:make_env --port 8010
    pyodide-runtime replay pilot_P01_seat0.zip --config study.toml --video pilot.mp4
    pyodide-runtime replay session.zip --gif session.gif --start 0 --end 300
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def configure(parser: argparse.ArgumentParser) -> None:
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.add_argument("bundle", type=Path, help="export bundle (.zip or extracted directory)")
    parser.add_argument("--env", metavar="SPEC",
                        help="env factory, 'package.module:function' or 'path/to/file.py:function' "
                             "(default: the one the bundle records)")
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--config", type=Path, metavar="FILE",
                        help="the study config (for [env] packages or source, and [bots])")
    source.add_argument("--example", metavar="NAME", help="the bundle comes from this example study")
    parser.add_argument("--video", type=Path, metavar="OUT", help="write an MP4 (or .webm, .mkv) video and exit")
    parser.add_argument("--gif", type=Path, metavar="OUT", help="write an animated GIF and exit")
    parser.add_argument("--start", type=int, default=0, metavar="FRAME", help="first global frame of the video")
    parser.add_argument("--end", type=int, default=None, metavar="FRAME",
                        help="global frame after the last one of the video (default: all)")
    parser.add_argument("--fps", type=float, default=None, help="video frame rate (default: the session's)")
    parser.add_argument("--scale", type=int, default=None,
                        help="whole-pixel scale of the video's frames (default: 1 for draw lists; RGB frames as "
                             "the page scales them)")
    parser.add_argument("--snapshot-every", type=int, default=30, metavar="K",
                        help="keep a snapshot every K frames for scrubbing (default %(default)s)")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default %(default)s)")
    parser.add_argument("--port", type=int, default=8010, help="port; 0 picks a free one (default %(default)s)")
    parser.add_argument("--assets", type=Path, metavar="DIR",
                        help="self-hosted Pyodide assets (default: $PYODIDE_RUNTIME_ASSETS or the user cache)")
    parser.add_argument("--mirror", action="append", default=[], metavar="PATH",
                        help="where [env] packages may also be found (as for serve); repeatable")


def run(args: argparse.Namespace) -> int:
    from pyodide_runtime.host.cli import CommandError
    from pyodide_runtime.export.bundle import BundleError, open_bundle
    from pyodide_runtime.host.replay.core import Replay, ReplayError
    from pyodide_runtime.host.replay.target import resolve_target

    config_path = args.config
    if args.example is not None:
        from pyodide_runtime.host.study_config import example_config

        try:
            config_path = example_config(args.example)
        except ValueError as exc:
            raise CommandError(f"--example: {exc}") from None
    try:
        files = open_bundle(args.bundle)
    except BundleError as exc:
        raise CommandError(str(exc)) from None
    try:
        import json

        recorded = json.loads(files["metadata.json"])["canonical"].get("env") or {}
        target = resolve_target(recorded, args.env, config_path)
        target.importable()
        replay = Replay(files, spec=target.spec, bots=target.bots, snapshot_every=args.snapshot_every)
    except (ReplayError, KeyError, ValueError, ImportError, TypeError) as exc:
        raise CommandError(f"cannot replay {args.bundle}: {exc}") from None
    if replay.source_matches is False:
        print(f"warning: the env's source differs from the one the bundle was played with "
              f"({replay.describe.get('source_hash', '')[:12]}...); frames may not match", file=sys.stderr)
    if args.video is not None or args.gif is not None:
        return _export(replay, args)
    return _serve(replay, target, args)


def _export(replay: object, args: argparse.Namespace) -> int:
    from pyodide_runtime.host.cli import CommandError
    from pyodide_runtime.host.replay.core import Replay, ReplayError
    from pyodide_runtime.host.replay.video import export_video

    assert isinstance(replay, Replay)
    mismatched: list[int] = []

    def check(g: int) -> None:
        if not replay.matches(g):
            mismatched.append(g)

    for out in (args.video, args.gif):
        if out is None:
            continue
        try:
            info = export_video(replay, out, fps=args.fps, start=args.start, end=args.end, scale=args.scale,
                                on_frame=check)
        except (ReplayError, ImportError, OSError) as exc:
            raise CommandError(f"cannot write {out}: {exc}") from None
        print(f"{info.path}: {info.frames} frames, {info.width}x{info.height}, {info.fps:g} fps")
    if mismatched:
        print(f"error: the re-simulated observations differ from the recorded ones at {len(set(mismatched))} "
              f"frame(s), first at frame {min(mismatched)}", file=sys.stderr)
        return 1
    return 0


def _serve(replay: object, target: object, args: argparse.Namespace) -> int:
    import asyncio

    from pyodide_runtime.host.assets import AssetError, open_assets
    from pyodide_runtime.host.cli import CommandError
    from pyodide_runtime.host.replay.core import Replay
    from pyodide_runtime.host.replay.target import ReplayTarget
    from pyodide_runtime.host.web import WebFilesError, js_bridge_dir, static_dir

    assert isinstance(replay, Replay) and isinstance(target, ReplayTarget)
    try:
        from pyodide_runtime.host.replay.server import ReplayEnv, create_replay_app, run_replay_app
        from pyodide_runtime.host.server.eventlog import EventLog
    except ImportError as exc:
        raise CommandError(f"the replay page needs aiohttp: pip install 'pyodide-runtime[server]' ({exc})") from None
    try:
        assets = open_assets(args.assets, verify=True)
        static, js_bridge = static_dir(), js_bridge_dir()
    except (AssetError, WebFilesError) as exc:
        raise CommandError(str(exc)) from None
    log = EventLog(sys.stderr)
    resolved = None
    if target.packages or target.env_source is not None:
        from pyodide_runtime.host.packages import prepare_study_packages

        try:
            resolved = prepare_study_packages(
                target.packages, assets=assets.root, source_dir=target.env_source, mirrors=args.mirror,
                progress=lambda message: log("packages", message=message), exclude=target.exclude)
        except AssetError as exc:
            raise CommandError(f"[env] packages: {exc}") from None
    env = ReplayEnv(spec=target.page_spec, env_file=target.env_file, packages=resolved, bots=target.bots)
    data = Path(args.bundle).read_bytes() if Path(args.bundle).is_file() else _zip(replay)
    app = create_replay_app(data, env, assets, static=static, js_bridge=js_bridge,
                            bundle_name=Path(args.bundle).name, snapshot_every=args.snapshot_every)

    def on_ready(addresses: list[tuple[str, int]]) -> None:
        host, port = addresses[0]
        shown = "127.0.0.1" if host in ("0.0.0.0", "::", "") else (f"[{host}]" if ":" in host else host)
        url = f"http://{shown}:{port}/"
        log("start", url=url, bundle=str(args.bundle), env=target.page_spec, frames=replay.frames)
        print(f"Replay URL: {url}", flush=True)

    try:
        asyncio.run(run_replay_app(app, args.host, args.port, on_ready=on_ready))
    except OSError as exc:
        raise CommandError(f"cannot listen on {args.host}:{args.port}: {exc.strerror or exc}") from None
    return 0


def _zip(replay: object) -> bytes:
    """An extracted bundle directory, zipped again for the page."""
    import io
    import zipfile

    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in sorted(replay.bundle.files.items()):  # type: ignore[attr-defined]
            zf.writestr(name, data)
    return buffer.getvalue()

