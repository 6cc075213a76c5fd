"""Static files: the page, the bridge, the Pyodide assets, the study's packages and its env file.

Only files inside a served directory are reachable: paths with hidden or parent components are refused, and the
resolved path (symlinks included) must stay under the directory. Assets are served only when the asset manifest
lists them, or when they are among the study's prepared packages (``[env] packages`` and ``[env] source``); a
study with packages is served its own lock file in place of the runtime's. Content types come from a fixed table,
never from sniffing.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from aiohttp import web

from pyodide_runtime.host.assets import LOCK_NAME, MANIFEST_NAME, AssetSet

__all__ = ["CONTENT_TYPES", "content_type", "safe_path", "page_csp", "FileRoutes"]

CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".mjs": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".json": "application/json",
    ".map": "application/json",
    ".wasm": "application/wasm",
    ".whl": "application/zip",
    ".zip": "application/zip",
    ".py": "text/x-python; charset=utf-8",
    ".txt": "text/plain; charset=utf-8",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".gif": "image/gif",
    ".webp": "image/webp",
    ".ico": "image/x-icon",
    ".woff2": "font/woff2",
}
IMMUTABLE = "public, max-age=31536000, immutable"
REVALIDATE = "no-cache"
#: The study's own files (images in scene texts) may change between runs of the server, so they are cached briefly.
STUDY_FILE_CACHE = "public, max-age=3600"
#: A study file is shown as an image, never run: an SVG opened on its own must not run script on this origin.
STUDY_FILE_CSP = "default-src 'none'; img-src 'self' data:; style-src 'unsafe-inline'; sandbox"

_INLINE_SCRIPT = re.compile(rb"<script\b([^>]*)>(.*?)</script\s*>", re.IGNORECASE | re.DOTALL)
_HOST_OK = re.compile(r"^[A-Za-z0-9.\-]+(:\d{1,5})?$|^\[[0-9A-Fa-f:.]+\](:\d{1,5})?$")


def content_type(path: Path) -> str:
    return CONTENT_TYPES.get(path.suffix.lower(), "application/octet-stream")


def safe_path(root: Path, relative: str) -> Path | None:
    """The regular file ``root/relative``, or ``None`` when it does not exist or would leave ``root``."""
    if "\\" in relative or "\x00" in relative:
        return None
    parts = [p for p in relative.split("/") if p]
    if any(p.startswith(".") for p in parts):
        return None
    base = root.resolve()
    target = base.joinpath(*parts).resolve()
    if not target.is_relative_to(base) or not target.is_file():
        return None
    return target


def inline_script_hashes(html: bytes) -> list[str]:
    """CSP source expressions for the inline ``<script>`` blocks of an HTML file (ours, not participants')."""
    hashes = []
    for attrs, body in _INLINE_SCRIPT.findall(html):
        if re.search(rb"\bsrc\s*=", attrs):
            continue
        hashes.append("'sha256-" + base64.b64encode(hashlib.sha256(body).digest()).decode() + "'")
    return hashes


def page_csp(html: bytes, host: str | None) -> str:
    """The Content-Security-Policy for one of our HTML pages.

    Pyodide compiles WebAssembly (``'wasm-unsafe-eval'``); workers and modules come from this origin; the page
    talks to this origin over HTTP and WebSocket. The page's own inline scripts are allowed by hash.
    """
    scripts = " ".join(["'self'", "'wasm-unsafe-eval'", *inline_script_hashes(html)])
    connect = "'self'"
    if host and _HOST_OK.match(host):
        connect += f" ws://{host} wss://{host}"
    return "; ".join(
        [
            "default-src 'self'",
            f"script-src {scripts}",
            "worker-src 'self'",
            f"connect-src {connect}",
            "img-src 'self' data: blob:",
            "style-src 'self' 'unsafe-inline'",
            "object-src 'none'",
            "base-uri 'none'",
            "form-action 'none'",
            "frame-ancestors 'none'",
        ]
    )


class FileRoutes:
    """Handlers for the page (``/``), the bridge (``/js_bridge/``), assets (``/assets/``) and the study file."""

    def __init__(self, static: Path, js_bridge: Path, assets: AssetSet, env_file: Path | None,
                 packages: Any = None, study_files: Mapping[str, Path] | None = None) -> None:
        """``packages`` is the study's :class:`pyodide_runtime.host.packages.StudyPackages`, or ``None``;
        ``study_files`` the files the study config's scenes reference (``Study.study_files``)."""
        #: Served at ``/study-files/<relative path>``: exactly these, nothing else from the study folder.
        self.study_files: dict[str, Path] = dict(study_files or {})
        self.static = static
        self.js_bridge = js_bridge
        self.assets = assets
        self.env_file = env_file
        files = assets.manifest["files"]
        self.asset_names = set(files) | {MANIFEST_NAME}
        #: Study package files by their name relative to the asset root (``packages/x.whl`` or an official file).
        self.package_files: dict[str, Path] = dict(packages.files()) if packages is not None else {}
        self.lock_file: Path = packages.lock_path if packages is not None else assets.root / LOCK_NAME
        hashes = {n: f["sha256"] for n, f in files.items()}
        if packages is not None:
            hashes.update({n: p.sha256 for p in packages.packages for n in [p.file_name]})
            hashes[LOCK_NAME] = hashlib.sha256(self.lock_file.read_bytes()).hexdigest()
        listing = json.dumps(dict(sorted(hashes.items())), sort_keys=True)
        #: Changes whenever any asset changes, so URLs under it can be cached for good.
        self.asset_version = hashlib.sha256(listing.encode()).hexdigest()[:16]

    @property
    def assets_url(self) -> str:
        return f"/assets/{self.asset_version}/"

    def add_routes(self, app: web.Application) -> None:
        app.router.add_get("/assets/{name}", self.asset)
        app.router.add_get("/assets/{version}/{name}", self.versioned_asset)
        app.router.add_get("/assets/{version}/packages/{name}", self.versioned_package)
        app.router.add_get("/assets/{version}/ort/{name}", self.versioned_ort)
        app.router.add_get("/js_bridge/{path:.*}", self.bridge)
        if self.env_file is not None:
            app.router.add_get("/study/{name}", self.study_file)
        app.router.add_get("/study-files/{path:.+}", self.scene_file)
        app.router.add_get("/{path:.*}", self.page)

    async def page(self, request: web.Request) -> web.StreamResponse:
        rel = request.match_info["path"] or "index.html"
        path = safe_path(self.static, rel)
        if path is None:
            if rel == "index.html":
                raise _not_found("the participant page (static/index.html) is not part of this installation")
            raise _not_found()
        headers = {"Cache-Control": REVALIDATE}
        if path.suffix.lower() == ".html":
            headers["Content-Security-Policy"] = page_csp(path.read_bytes(), request.headers.get("Host"))
        return _file(path, headers)

    async def bridge(self, request: web.Request) -> web.StreamResponse:
        path = safe_path(self.js_bridge, request.match_info["path"])
        if path is None:
            raise _not_found()
        return _file(path, {"Cache-Control": REVALIDATE})

    async def asset(self, request: web.Request) -> web.StreamResponse:
        return self._asset(request.match_info["name"], REVALIDATE)

    async def versioned_asset(self, request: web.Request) -> web.StreamResponse:
        if request.match_info["version"] != self.asset_version:
            raise _not_found("these assets were replaced; reload the page")
        return self._asset(request.match_info["name"], IMMUTABLE)

    async def versioned_package(self, request: web.Request) -> web.StreamResponse:
        if request.match_info["version"] != self.asset_version:
            raise _not_found("these assets were replaced; reload the page")
        path = self.package_files.get("packages/" + request.match_info["name"])
        if path is None:
            raise _not_found()
        return _file(path, {"Cache-Control": IMMUTABLE})

    async def versioned_ort(self, request: web.Request) -> web.StreamResponse:
        # onnxruntime-web's files (``ort/`` in the manifest), which the worker imports for ONNX policies.
        if request.match_info["version"] != self.asset_version:
            raise _not_found("these assets were replaced; reload the page")
        return self._asset("ort/" + request.match_info["name"], IMMUTABLE)

    async def study_file(self, request: web.Request) -> web.StreamResponse:
        # Exactly one file is served here: the env file named on the command line.
        if self.env_file is None or request.match_info["name"] != self.env_file.name:
            raise _not_found()
        return _file(self.env_file, {"Cache-Control": REVALIDATE})

    async def scene_file(self, request: web.Request) -> web.StreamResponse:
        # Only a file the config references, looked up by its exact relative path (never joined to a directory).
        path = self.study_files.get(request.match_info["path"])
        if path is None or not path.is_file():
            raise _not_found()
        return _file(path, {"Cache-Control": STUDY_FILE_CACHE, "Content-Security-Policy": STUDY_FILE_CSP,
                            "X-Content-Type-Options": "nosniff"})

    def _asset(self, name: str, cache: str) -> web.StreamResponse:
        if name == LOCK_NAME:  # the study's own lock when it has packages
            return _file(self.lock_file, {"Cache-Control": cache})
        if name in self.package_files:  # an official Pyodide package the study added
            return _file(self.package_files[name], {"Cache-Control": cache})
        if name not in self.asset_names:
            raise _not_found()
        path = safe_path(self.assets.root, name)
        if path is None:
            raise _not_found()
        return _file(path, {"Cache-Control": cache})


def _file(path: Path, headers: dict[str, str]) -> web.FileResponse:
    return web.FileResponse(path, headers={"Content-Type": content_type(path), **headers})


def _not_found(message: str = "not found") -> web.HTTPNotFound:
    return web.HTTPNotFound(text=message + "\n")
