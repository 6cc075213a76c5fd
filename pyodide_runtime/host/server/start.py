"""Start the study server from its command-line options: the one bootstrap behind ``pyodide-runtime serve`` and
``python -m pyodide_runtime.host.server``."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

#: The environment variable that may hold the dashboard's token (it stays out of the process list).
ADMIN_TOKEN_ENV = "PYODIDE_RUNTIME_ADMIN_TOKEN"


class StartError(Exception):
    """The study cannot be served; the message says what to fix."""


def configure(parser: argparse.ArgumentParser) -> None:
    """Add the serve options to ``parser``."""
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.add_argument("--env", metavar="SPEC",
                        help="env factory, 'package.module:function' or 'path/to/file.py:function' "
                             "(default: env.spec from the config file; --env wins when both are given)")
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--config", type=Path, metavar="FILE",
                        help="study config, .toml or .json: env, session (players, fps...), bots, controls, "
                             "instructions... (see docs/study-config.md)")
    source.add_argument("--example", metavar="NAME",
                        help="serve an example study shipped with the package: " + ", ".join(_examples()))
    parser.add_argument("--study-id",
                        help="name of the study in upload paths (default: the example's name, else the env's "
                             "module or file name)")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default %(default)s)")
    parser.add_argument("--port", type=int, default=8000, help="port; 0 picks a free one (default %(default)s)")
    parser.add_argument("--assets", type=Path, metavar="DIR",
                        help="self-hosted Pyodide assets (default: $PYODIDE_RUNTIME_ASSETS or the user cache)")
    parser.add_argument("--mirror", action="append", default=[], metavar="PATH",
                        help="where [env] packages may also be found: a directory, zip or wheel holding Pyodide "
                             "packages or pure wheels, or a base URL; repeatable (files are verified by sha256)")
    parser.add_argument("--refresh-packages", action="store_true",
                        help="resolve [env] packages again instead of using the cached resolution")
    parser.add_argument("--skip-study-check", action="store_true",
                        help="do not step the env at start-up (the check that finds env errors and modules the page "
                             "lacks before anyone is recruited)")
    parser.add_argument("--data-dir", type=Path, metavar="DIR",
                        help="store uploaded export bundles here (default: data.dir from the config; else off)")
    parser.add_argument("--allow-origin", action="append", default=[], metavar="ORIGIN",
                        help="also accept WebSockets from this origin (https://host[:port], or *); repeatable")
    parser.add_argument("--force-relay", action="store_true",
                        help="tell every room to send peer bytes through the server instead of WebRTC")
    parser.add_argument("--admin-token", metavar="TOKEN", default=os.environ.get(ADMIN_TOKEN_ENV),
                        help="token of the researcher dashboard at /admin, at least 16 characters (default: "
                             f"${ADMIN_TOKEN_ENV}, else a random one printed at start-up)")
    parser.add_argument("--ice-server", action="append", default=[], metavar="URL",
                        help="STUN/TURN URL handed to the page for WebRTC (stun:host:3478); repeatable")
    limits = parser.add_argument_group("rooms and limits")
    limits.add_argument("--room-ttl", type=float, default=6 * 3600.0, metavar="S",
                        help="room lifetime (default %(default)s s)")
    limits.add_argument("--idle-ttl", type=float, default=120.0, metavar="S",
                        help="remove a room nobody has been connected to for this long (default %(default)s s)")
    limits.add_argument("--seat-grace", type=float, default=120.0, metavar="S",
                        help="a dropped participant may reclaim their seat for this long (default %(default)s s)")
    limits.add_argument("--join-timeout", type=float, default=30.0, metavar="S",
                        help="close a WebSocket that has not joined a room by then (default %(default)s s)")
    limits.add_argument("--idle-timeout", type=float, default=15.0, metavar="S",
                        help="close an HTTP connection idle or mid-request-headers this long (default %(default)s s)")
    limits.add_argument("--max-rooms", type=int, default=2000, help="rooms alive at once (default %(default)s)")
    limits.add_argument("--max-connections", type=int, default=4000, help="WebSockets at once (default %(default)s)")
    limits.add_argument("--max-message-kb", type=float, default=64.0, metavar="KB",
                        help="largest WebSocket message; bigger closes the socket with 1009 (default %(default)s)")
    limits.add_argument("--rate", type=float, default=200.0,
                        help="messages per second per socket (default %(default)s)")
    limits.add_argument("--burst", type=float, default=400.0, help="message burst per socket (default %(default)s)")
    limits.add_argument("--rate-drop-limit", type=int, default=2000, metavar="N",
                        help="close a socket (1008) after N messages were dropped for rate (default %(default)s)")
    limits.add_argument("--max-upload-mb", type=float, default=64.0, metavar="MB",
                        help="largest upload (default %(default)s)")
    limits.add_argument("--max-sessions", type=int, metavar="N",
                        help="stop pairing once N rooms have become full; later joins are refused 'study-full' "
                             "(default: the waiting scene's max_sessions, else no cap; the smaller one applies)")
    limits.add_argument("--max-rtt-ms", type=float, metavar="MS",
                        help="latency screening: a full room whose pages report a round trip above MS is closed and "
                             "its pages paired with others (default: the waiting scene's max_rtt_ms, else off)")
    limits.add_argument("--shutdown-timeout", type=float, default=10.0, metavar="S",
                        help="time given to uploads in flight at shutdown (default %(default)s s)")


def _examples() -> list[str]:
    from pyodide_runtime.host.study_config import list_examples

    return list_examples()


def waiting_scene(config: dict) -> dict:
    """The study config's ``waiting`` scene (an empty dict when it has none)."""
    scenes = config.get("scenes")
    if isinstance(scenes, list):
        for scene in scenes:
            if isinstance(scene, dict) and scene.get("kind") == "waiting":
                return scene
    return {}


def smallest(*values: float | None) -> float | None:
    """The smallest of the values given (``None`` ones are not given); ``None`` when none is."""
    given = [v for v in values if v is not None]
    return min(given) if given else None


def start(args: argparse.Namespace) -> int:
    """Check the study, prepare its packages and serve it until stopped; :class:`StartError` says why not."""
    import asyncio
    import secrets
    import sys

    from pyodide_runtime.host.assets import AssetError, open_assets
    from pyodide_runtime.host.server.eventlog import EventLog
    from pyodide_runtime.host.server.rooms import RoomSettings
    from pyodide_runtime.host.server.settings import ServerSettings
    from pyodide_runtime.host.server.study import (
        StudyError, check_study, load_study, resolve_policies, validate_env,
    )
    from pyodide_runtime.host.study_config import example_config
    from pyodide_runtime.host.web import WebFilesError, js_bridge_dir, static_dir

    try:
        from pyodide_runtime.host.server.app import create_app, run_app
    except ImportError as exc:
        raise StartError(f"the server needs aiohttp: pip install 'pyodide-runtime[server]' ({exc})") from None

    log = EventLog(sys.stderr)
    try:
        assets = open_assets(args.assets, verify=True)
    except AssetError as exc:
        raise StartError(str(exc)) from None
    try:
        static, js_bridge = static_dir(), js_bridge_dir()
    except WebFilesError as exc:
        raise StartError(str(exc)) from None
    config_path, study_id = args.config, args.study_id
    if args.example is not None:
        try:
            config_path = example_config(args.example)
        except ValueError as exc:
            raise StartError(f"--example: {exc}") from None
        study_id = study_id or args.example
    try:
        study = load_study(args.env, config_path, study_id)
    except StudyError as exc:
        raise StartError(str(exc)) from None
    data_dir = args.data_dir or study.data_dir
    if not study.upload:
        data_dir = None
    waiting = waiting_scene(study.config)
    max_sessions = smallest(args.max_sessions, waiting.get("max_sessions"))
    try:
        settings = ServerSettings(
            rooms=RoomSettings(
                size=study.pages,
                idle_ttl=args.idle_ttl,
                room_ttl=args.room_ttl,
                seat_grace=args.seat_grace,
                max_rooms=args.max_rooms,
            ),
            max_message_bytes=int(args.max_message_kb * 1024),
            rate=args.rate,
            burst=args.burst,
            rate_drop_limit=args.rate_drop_limit,
            max_connections=args.max_connections,
            join_timeout=args.join_timeout,
            idle_timeout=args.idle_timeout,
            allow_origins=tuple(args.allow_origin),
            force_relay=args.force_relay or study.config.get("relay") is True,
            ice_servers=tuple({"urls": url} for url in [*args.ice_server, *study.ice_servers]),
            data_dir=data_dir.resolve() if data_dir else None,
            max_upload_bytes=int(args.max_upload_mb * 1024 * 1024),
            shutdown_timeout=args.shutdown_timeout,
            max_rtt_ms=smallest(args.max_rtt_ms, waiting.get("max_rtt_ms")),
            max_sessions=None if max_sessions is None else int(max_sessions),
            admin_token=args.admin_token or secrets.token_urlsafe(24),
        )
    except ValueError as exc:
        raise StartError(str(exc)) from None
    if settings.data_dir is not None:
        try:
            settings.data_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StartError(f"data directory {data_dir}: {exc.strerror or exc}") from None

    if study.packages or study.env_source is not None:
        from dataclasses import replace

        from pyodide_runtime.host.packages import prepare_study_packages

        try:
            resolved = prepare_study_packages(
                study.packages, assets=assets.root, source_dir=study.env_source, mirrors=args.mirror,
                refresh=args.refresh_packages, progress=lambda message: log("packages", message=message),
                exclude=study.exclude)
        except AssetError as exc:
            raise StartError(f"[env] packages: {exc}") from None
        study = replace(study, resolved=resolved)
        log("packages", lock=str(resolved.lock_path), load=resolved.load_names,
            packages=[f"{p.name}=={p.version}" for p in resolved.packages],
            excluded=[name for name, _chain in resolved.excluded])

    if study.policies:
        from pyodide_runtime.host.ort_assets import require_ort

        try:
            require_ort(assets.root, assets.manifest)
        except AssetError as exc:
            raise StartError(f"[policies]: {exc}") from None

    try:  # last of the checks: they run the researcher's code
        warning = validate_env(study)
        study = resolve_policies(study)
        if not args.skip_study_check:
            log("study-check", message=check_study(study, assets.root))
    except StudyError as exc:
        raise StartError(str(exc)) from None
    if warning:
        log("warning", message=warning)

    app = create_app(study, assets, settings, static=static, js_bridge=js_bridge, log=log)

    def on_ready(addresses: list[tuple[str, int]]) -> None:
        host, port = addresses[0]
        shown = "127.0.0.1" if host in ("0.0.0.0", "::", "") else (f"[{host}]" if ":" in host else host)
        url = f"http://{shown}:{port}/"
        log("start", url=url, study=study.id, env=study.env_spec, players=study.players,
            assets=str(assets.root), uploads=str(settings.data_dir) if settings.data_dir else None,
            force_relay=settings.force_relay, max_rtt_ms=settings.max_rtt_ms, max_sessions=settings.max_sessions)
        print(f"Study URL: {url}", flush=True)
        print(f"Health:    {url}healthz", flush=True)
        # On stdout only: the token is never written to the JSON log.
        shown_token = "as given" if args.admin_token else settings.admin_token
        print(f"Admin:     {url}admin (token: {shown_token})", flush=True)

    try:
        asyncio.run(run_app(app, args.host, args.port, on_ready=on_ready, log=log))
    except OSError as exc:
        raise StartError(f"cannot listen on {args.host}:{args.port}: {exc.strerror or exc}") from None
    return 0

