"""The replay page's server: the page, the bridge, the Pyodide assets, the env file or packages, and one bundle.

It keeps no state beyond the bundle. Routes:

- ``/`` the replay page (``static/replay.html``, with the same strict Content-Security-Policy as the study page);
- ``/replay.json`` what the page needs: asset URL, the env spec, file and packages, bots, snapshot interval;
- ``/bundle.zip`` the bundle's bytes;
- ``/study/<file>``, ``/js_bridge/``, ``/assets/`` and static files, exactly as the study server serves them.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

from pyodide_runtime.host.replay.core import DEFAULT_SNAPSHOT_EVERY
from pyodide_runtime.host.server.listening import listening, wait_for_stop_signal

from aiohttp import web

from pyodide_runtime.host.assets import AssetSet
from pyodide_runtime.host.server.files import REVALIDATE, FileRoutes, page_csp

__all__ = ["ReplayEnv", "create_replay_app", "run_replay_app"]

PAGE = "replay.html"


@dataclass(frozen=True)
class ReplayEnv:
    """How the page rebuilds the env: the spec it imports, the env file to write beside it, packages, bots."""

    spec: str
    env_file: Path | None = None
    packages: Any = None  # a prepared pyodide_runtime.host.packages.StudyPackages, or None
    bots: Mapping[str, Any] = field(default_factory=dict)

    def describe(self) -> dict[str, Any]:
        env: dict[str, Any] = {"spec": self.spec, "file": None,
                               "packages": list(self.packages.load_names) if self.packages is not None else []}
        if self.env_file is not None:
            env["file"] = {"url": "/study/" + quote(self.env_file.name), "name": self.env_file.name,
                           "sha256": hashlib.sha256(self.env_file.read_bytes()).hexdigest()}
        return env


async def _security_headers(request: web.Request, response: web.StreamResponse) -> None:
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("Referrer-Policy", "no-referrer")


def create_replay_app(
    bundle: bytes,
    env: ReplayEnv,
    assets: AssetSet,
    *,
    static: Path,
    js_bridge: Path,
    bundle_name: str = "bundle.zip",
    snapshot_every: int = DEFAULT_SNAPSHOT_EVERY,
) -> web.Application:
    """Build the application serving one bundle's replay page."""
    files = FileRoutes(static, js_bridge, assets, env.env_file, env.packages)
    description = {
        "assets_url": files.assets_url,
        "bundle_url": "/bundle.zip",
        "bundle_name": bundle_name,
        "bundle_sha256": hashlib.sha256(bundle).hexdigest(),
        "env": env.describe(),
        "bots": dict(env.bots),
        "snapshot_every": int(snapshot_every),
    }
    page_path = static / PAGE

    async def page(request: web.Request) -> web.StreamResponse:
        if not page_path.is_file():
            raise web.HTTPNotFound(text="the replay page (static/replay.html) is not part of this installation\n")
        html = page_path.read_bytes()
        return web.Response(body=html, headers={
            "Content-Type": "text/html; charset=utf-8", "Cache-Control": REVALIDATE,
            "Content-Security-Policy": page_csp(html, request.headers.get("Host"))})

    async def replay_json(request: web.Request) -> web.Response:
        return web.json_response(description, headers={"Cache-Control": "no-store"})

    async def bundle_zip(request: web.Request) -> web.Response:
        return web.Response(body=bundle, headers={"Content-Type": "application/zip", "Cache-Control": "no-store"})

    async def healthz(request: web.Request) -> web.Response:
        return web.json_response({"ok": True, "bundle": bundle_name})

    app = web.Application()
    app.router.add_get("/", page)
    app.router.add_get("/index.html", page)
    app.router.add_get("/replay.json", replay_json)
    app.router.add_get("/bundle.zip", bundle_zip)
    app.router.add_get("/healthz", healthz)
    files.add_routes(app)
    app.on_response_prepare.append(_security_headers)
    return app


async def run_replay_app(app: web.Application, host: str, port: int, *,
                         on_ready: Callable[[list[tuple[str, int]]], None]) -> None:
    """Serve ``app`` until SIGINT or SIGTERM."""
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    async with listening(runner, host, port):
        try:
            await wait_for_stop_signal(lambda: on_ready([addr[:2] for addr in runner.addresses]))
        finally:
            await runner.cleanup()
