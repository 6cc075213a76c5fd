"""The aiohttp application: routes, security headers, lifetimes, and running it until a signal arrives."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from aiohttp import web

from pyodide_runtime import __version__
from pyodide_runtime.host.assets import AssetSet
from pyodide_runtime.host.server.admin import Admin
from pyodide_runtime.host.server.eventlog import EventLog
from pyodide_runtime.host.server.files import FileRoutes
from pyodide_runtime.host.server.listening import listening, wait_for_stop_signal
from pyodide_runtime.host.server.page_config import page_config
from pyodide_runtime.host.server.reports import Reports
from pyodide_runtime.host.server.rooms import JoinRefused, RoomRegistry
from pyodide_runtime.host.server.settings import ServerSettings
from pyodide_runtime.host.server.signaling import Hub
from pyodide_runtime.host.server.study import Study
from pyodide_runtime.host.server.upload import Uploads

__all__ = ["create_app", "run_app", "HUB", "SETTINGS", "UPLOADS", "REPORTS"]

HUB = web.AppKey("hub", Hub)
SETTINGS = web.AppKey("settings", ServerSettings)
UPLOADS = web.AppKey("uploads", Uploads)
REPORTS = web.AppKey("reports", Reports)
_EXPIRY = web.AppKey("expiry", asyncio.Task)


async def _security_headers(request: web.Request, response: web.StreamResponse) -> None:
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    # Participant ids travel in the page URL; never leak them to other sites.
    response.headers.setdefault("Referrer-Policy", "no-referrer")


def create_app(
    study: Study,
    assets: AssetSet,
    settings: ServerSettings | None = None,
    *,
    static: Path,
    js_bridge: Path,
    log: EventLog | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> web.Application:
    """Build the application serving ``study``: page, bridge, assets, ``/study.json``, ``/ws``, uploads, page
    reports, and the dashboard (``/admin``) when ``settings.admin_token`` is set."""
    settings = settings or ServerSettings()
    log = log or EventLog()
    started = clock()
    registry = RoomRegistry(settings.rooms)
    hub = Hub(registry, settings, log, clock)
    files = FileRoutes(static, js_bridge, assets, study.env_file, study.resolved, study_files=study.study_files)
    uploads = Uploads(settings.data_dir, study.id, registry, log, settings.max_upload_bytes, clock)
    description = _describe(study, settings, files)

    live_rooms: dict[str, str] = {}  # room token -> public id of the rooms alive at the last miss

    def resolve_room(token: str) -> str | None:
        """The public id of the room whose token a page reported; the report keeps only the id."""
        if token not in live_rooms:  # a new room, or one removed since: look again at the rooms alive now
            live_rooms.clear()
            live_rooms.update((room.token, room.id) for room in registry)
        return live_rooms.get(token)

    reports = Reports(clock, resolve_room, hub.origin_allowed)

    async def study_json(request: web.Request) -> web.Response:
        return web.json_response(description, headers={"Cache-Control": "no-store"})

    async def policy_model(request: web.Request) -> web.StreamResponse:
        # Named by its sha256, so the URL changes whenever the model does: cache it like the versioned assets.
        path = study.policy_model(request.match_info["name"])
        if path is None:
            raise web.HTTPNotFound(text="no such policy model\n")
        return web.FileResponse(path, headers={"Content-Type": "application/octet-stream",
                                               "Cache-Control": "public, max-age=31536000, immutable"})

    async def healthz(request: web.Request) -> web.Response:
        body = {
            "ok": True,
            "rooms": len(registry),
            "waiting": registry.waiting,
            "sessions": registry.sessions,
            "connections": len(hub.connections),
            "uptime": round(clock() - started, 3),
            "version": __version__,
        }
        return web.json_response(body, headers={"Cache-Control": "no-store"})

    async def new_room(request: web.Request) -> web.Response:
        if not hub.origin_allowed(request):
            raise web.HTTPForbidden(text="requests from this origin are not allowed\n")
        try:
            room = registry.create_room(clock(), private=True)
        except JoinRefused as refused:
            raise web.HTTPServiceUnavailable(text=refused.message + "\n") from None
        log("room-created", room=room.id)
        return web.json_response({"room": room.token, "url": f"/?room={room.token}"}, status=201)

    async def start_expiry(app: web.Application) -> None:
        app[_EXPIRY] = asyncio.get_running_loop().create_task(hub.run_expiry())

    async def close_sockets(app: web.Application) -> None:
        await hub.close_all()

    async def stop_expiry(app: web.Application) -> None:
        app[_EXPIRY].cancel()

    app = web.Application(client_max_size=settings.max_upload_bytes + 1)
    app[HUB] = hub
    app[SETTINGS] = settings
    app[UPLOADS] = uploads
    app[REPORTS] = reports
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/study.json", study_json)
    app.router.add_post("/rooms", new_room)
    app.router.add_get("/ws", hub.handle)
    app.router.add_post("/upload", uploads.handle)
    app.router.add_get("/upload", uploads.refuse_get)
    app.router.add_post("/report", reports.handle)
    app.router.add_get("/policies/{name}", policy_model)
    if settings.admin_token is not None:
        admin = Admin(settings.admin_token, static=static, data_dir=settings.data_dir, study_id=study.id,
                      registry=registry, reports=reports, connections=lambda: len(hub.connections), clock=clock)
        admin.add_routes(app)
    files.add_routes(app)  # last: it ends with the catch-all page route
    app.on_response_prepare.append(_security_headers)
    app.on_startup.append(start_expiry)
    app.on_shutdown.append(close_sockets)
    app.on_cleanup.append(stop_expiry)
    return app


def _describe(study: Study, settings: ServerSettings, files: FileRoutes) -> dict[str, Any]:
    """``/study.json``: everything the page needs to know to run the study."""
    return {
        **study.describe(),
        "assets_url": files.assets_url,
        "bridge_url": "/js_bridge/",
        "ws_url": "/ws",
        "relay": {"forced": settings.force_relay},
        "ice_servers": list(settings.ice_servers),
        "upload": {
            "enabled": settings.data_dir is not None,
            "url": "/upload",
            "max_bytes": settings.max_upload_bytes,
        },
        "limits": {
            "max_message_bytes": settings.max_message_bytes,
            "rate": settings.rate,
            "burst": settings.burst,
            "seat_grace": settings.rooms.seat_grace,
        },
        # Latency screening: when max_rtt_ms is set, a page whose room fills measures and sends 'rtt'.
        "screening": {"max_rtt_ms": settings.max_rtt_ms, "timeout_s": settings.screening_timeout},
        "max_sessions": settings.max_sessions,
        "server_version": __version__,
        # The runtime's defaults and constants, so the page keeps no copies of them (see page_config.py).
        "page_config": page_config(),
    }


async def run_app(
    app: web.Application,
    host: str,
    port: int,
    *,
    on_ready: Callable[[list[tuple[str, int]]], None],
    log: EventLog,
) -> None:
    """Serve ``app`` until SIGINT or SIGTERM, then shut down gracefully.

    Shutdown stops accepting connections, closes every WebSocket with 1001, and waits up to
    ``shutdown_timeout`` for uploads in flight to finish before closing the remaining HTTP connections.
    """
    settings = app[SETTINGS]
    # keepalive_timeout also bounds a connection that never completes its request headers (aiohttp starts the
    # timer when the connection opens and does not extend it while partial headers trickle in).
    runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=settings.shutdown_timeout,
                           keepalive_timeout=settings.idle_timeout)
    received: str | None = None
    async with listening(runner, host, port) as site:
        try:
            received = await wait_for_stop_signal(lambda: on_ready([addr[:2] for addr in runner.addresses]))
        finally:
            await _shut_down(app, runner, site, settings, log, received)


async def _shut_down(app: web.Application, runner: web.AppRunner, site: web.TCPSite, settings: ServerSettings,
                     log: EventLog, received: str | None) -> None:
    """Stop listening, close every WebSocket with 1001, let uploads in flight finish, then close the rest."""
    started = time.monotonic()
    # aiohttp's own shutdown drops request bodies still in transit, so uploads are drained first.
    await site.stop()
    await app[HUB].close_all()
    drained = await app[UPLOADS].drain(settings.shutdown_timeout)
    await runner.cleanup()
    log("stop", signal=received, uploads_finished=drained,
        seconds=round(time.monotonic() - started, 3))
