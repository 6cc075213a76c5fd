"""The researcher dashboard: ``/admin``, ``/admin/state.json``, the uploaded files and ``/admin/data.zip``.

Access needs the admin token (``serve --admin-token``, else a random one printed at start-up), given either as
``Authorization: Bearer TOKEN`` or once in the login form, which sets an HttpOnly, SameSite=Strict session cookie
scoped to ``/admin``. The token never appears in a URL and is compared in constant time. The page itself
(``static/admin.html``) holds no data: it asks ``/admin/state.json`` every 2 s.

The state joins the pages' reports (:mod:`pyodide_runtime.host.server.reports`) with the server's rooms and
connections, and lists the files under ``<data-dir>/<study>/`` (from each seat directory's ``uploads.jsonl`` where
there is one, else from the ``.zip``/``.bin`` files themselves).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import re
import secrets
import time
import zipfile
from collections import OrderedDict
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

from aiohttp import web

from pyodide_runtime.host.server.files import page_csp, safe_path
from pyodide_runtime.host.server.limits import TokenBucket
from pyodide_runtime.host.server.reports import Reports
from pyodide_runtime.host.server.rooms import Room, RoomRegistry

__all__ = ["Admin", "admin_csp", "list_files", "COOKIE"]

COOKIE = "pyodide_runtime_admin"
#: How long a login lasts, and how many logins are remembered at once (the oldest forgotten first).
SESSION_SECONDS = 12 * 3600.0
MAX_SESSIONS = 256
#: Files listed in the state (newest first) and walked at most.
MAX_LISTED_FILES = 500
MAX_WALKED_FILES = 20_000
#: Finished sessions in the state (newest first) and points per plotted series.
MAX_LISTED_FINISHED = 100
MAX_PLOT_POINTS = 240

_SEAT_DIR = re.compile(r"^seat(\d{1,2})$")
_OLD_NAME = re.compile(r"^seat(\d{1,2})-([0-9a-f]{16})(?:-\d+)?\.(zip|bin)$")
_NEW_NAME = re.compile(
    r"^(final|interim|recovered|participant)(?:-([a-z0-9-]{1,40}))?-([0-9a-f]{16})(?:-\d+)?\.(zip|bin)$")


def admin_csp(html: bytes, host: str | None) -> str:
    """The participant page's Content-Security-Policy, with two changes: the login form may post to this origin
    (``form-action 'self'``), and no inline style is allowed (``style-src 'self'``)."""
    return (page_csp(html, host)
            .replace("form-action 'none'", "form-action 'self'")
            .replace("style-src 'self' 'unsafe-inline'", "style-src 'self'"))


def _no_store(headers: dict[str, str] | None = None) -> dict[str, str]:
    return {"Cache-Control": "no-store", **(headers or {})}


class Admin:
    """The dashboard's routes for one server."""

    def __init__(self, token: str, *, static: Path, data_dir: Path | None, study_id: str, registry: RoomRegistry,
                 reports: Reports, connections: Callable[[], int], clock: Callable[[], float]) -> None:
        self._token = hashlib.sha256(token.encode()).digest()
        self.static = static
        self.data_dir = data_dir
        self.study_id = study_id
        self.registry = registry
        self.reports = reports
        self.connections = connections
        self.clock = clock
        self._sessions: OrderedDict[bytes, float] = OrderedDict()  # sha256 of the cookie value -> expiry
        self._logins = TokenBucket(1.0, 10.0, clock())  # login attempts: 1 per second on average

    def add_routes(self, app: web.Application) -> None:
        app.router.add_get("/admin", self.page)
        app.router.add_post("/admin/login", self.login)
        app.router.add_post("/admin/logout", self.logout)
        app.router.add_get("/admin/state.json", self.state)
        app.router.add_get("/admin/data.zip", self.data_zip)
        app.router.add_get("/admin/files/{path:.+}", self.file)

    # ------------------------------------------------------------------------------------------------ auth

    def _token_ok(self, given: str) -> bool:
        # Hash both sides so the comparison takes the same time whatever the given token's length.
        return hmac.compare_digest(hashlib.sha256(given.encode("utf-8", "replace")).digest(), self._token)

    def _session_ok(self, value: str) -> bool:
        key = hashlib.sha256(value.encode("utf-8", "replace")).digest()
        now = self.clock()
        for old, expiry in list(self._sessions.items()):
            if expiry <= now:
                del self._sessions[old]
        return any(hmac.compare_digest(key, known) for known in self._sessions)

    def _check(self, request: web.Request) -> None:
        """Raise 401 without credentials, 403 with wrong ones."""
        auth = request.headers.get("Authorization")
        if auth is not None:
            scheme, _, given = auth.partition(" ")
            if scheme.lower() != "bearer" or not given.strip():
                raise self._unauthorized()
            if not self._token_ok(given.strip()):
                raise web.HTTPForbidden(text="wrong admin token\n", headers=_no_store())
            return
        cookie = request.cookies.get(COOKIE)
        if cookie and self._session_ok(cookie):
            return
        raise self._unauthorized()

    @staticmethod
    def _unauthorized() -> web.HTTPUnauthorized:
        return web.HTTPUnauthorized(text="log in at /admin, or send Authorization: Bearer <admin token>\n",
                                    headers=_no_store({"WWW-Authenticate": 'Bearer realm="admin"'}))

    async def login(self, request: web.Request) -> web.StreamResponse:
        """The login form: on the right token, a session cookie and back to ``/admin``."""
        if request.content_length is None or request.content_length > 4096:
            raise web.HTTPBadRequest(text="send the login form\n")
        if not self._logins.take(self.clock()):
            raise web.HTTPTooManyRequests(text="too many login attempts; wait a few seconds\n")
        form = await request.post()
        given = form.get("token")
        if not isinstance(given, str) or not self._token_ok(given.strip()):
            raise web.HTTPSeeOther("/admin?login=failed", headers=_no_store())
        value = secrets.token_urlsafe(32)
        self._sessions[hashlib.sha256(value.encode()).digest()] = self.clock() + SESSION_SECONDS
        while len(self._sessions) > MAX_SESSIONS:
            self._sessions.popitem(last=False)
        response = web.HTTPSeeOther("/admin", headers=_no_store())
        secure = request.secure or request.headers.get("X-Forwarded-Proto", "").lower() == "https"
        response.set_cookie(COOKIE, value, path="/admin", httponly=True, samesite="Strict", secure=secure,
                            max_age=int(SESSION_SECONDS))
        raise response

    async def logout(self, request: web.Request) -> web.StreamResponse:
        cookie = request.cookies.get(COOKIE)
        if cookie:
            self._sessions.pop(hashlib.sha256(cookie.encode("utf-8", "replace")).digest(), None)
        response = web.HTTPSeeOther("/admin", headers=_no_store())
        response.del_cookie(COOKIE, path="/admin")
        raise response

    # ----------------------------------------------------------------------------------------------- routes

    async def page(self, request: web.Request) -> web.StreamResponse:
        """The dashboard page (no data in it: it asks ``state.json``, and shows the login form on 401)."""
        path = safe_path(self.static, "admin.html")
        if path is None:
            raise web.HTTPNotFound(text="the dashboard (static/admin.html) is not part of this installation\n")
        html = path.read_bytes()
        headers = _no_store({"Content-Type": "text/html; charset=utf-8",
                             "Content-Security-Policy": admin_csp(html, request.headers.get("Host"))})
        return web.Response(body=html, headers=headers)

    async def state(self, request: web.Request) -> web.StreamResponse:
        self._check(request)
        return web.json_response(self.snapshot(), headers=_no_store(), dumps=lambda o: json.dumps(o, default=str))

    async def file(self, request: web.Request) -> web.StreamResponse:
        """One stored file, as an attachment; only regular files under the data directory."""
        self._check(request)
        if self.data_dir is None:
            raise web.HTTPNotFound(text="uploads are off on this server (no --data-dir)\n")
        path = safe_path(self.data_dir, request.match_info["path"])
        if path is None:
            raise web.HTTPNotFound(text="not found\n")
        kind = "application/zip" if path.suffix.lower() == ".zip" else "application/octet-stream"
        return web.FileResponse(path, headers=_no_store({
            "Content-Type": kind,
            "Content-Disposition": f"attachment; filename=\"{_ascii_name(path.name)}\"",
        }))

    async def data_zip(self, request: web.Request) -> web.StreamResponse:
        """Every file under the data directory (hidden ones aside) in one zip, written as it is read."""
        self._check(request)
        if self.data_dir is None:
            raise web.HTTPNotFound(text="uploads are off on this server (no --data-dir)\n")
        stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime())
        response = web.StreamResponse(headers=_no_store({
            "Content-Type": "application/zip",
            "Content-Disposition": f"attachment; filename=\"{_ascii_name(self.study_id)}-data-{stamp}.zip\"",
        }))
        await response.prepare(request)
        sink = _Sink()
        with zipfile.ZipFile(sink, "w", compression=zipfile.ZIP_STORED, allowZip64=True) as archive:
            for path, relative in _walk(self.data_dir):
                with path.open("rb") as source, archive.open(relative, "w", force_zip64=True) as target:
                    while chunk := source.read(1 << 20):
                        target.write(chunk)
                        await response.write(sink.take())
                await response.write(sink.take())
        await response.write(sink.take())
        await response.write_eof()
        return response

    # ------------------------------------------------------------------------------------------------ state

    def snapshot(self) -> dict[str, Any]:
        """What ``/admin/state.json`` answers."""
        now = self.clock()
        live = self.reports.live(now)
        by_seat: dict[tuple[str, int], dict[str, Any]] = {}
        for state in live:
            if state.room_id is not None and state.report["seat"] is not None:
                by_seat[(state.room_id, state.report["seat"])] = state.report
        rooms = [self._room(room, by_seat, now) for room in self.registry if room.seats]
        rooms.sort(key=lambda r: -r["age_s"])
        finished = []
        for entry in reversed(self.reports.finished.values()):
            if len(finished) >= MAX_LISTED_FINISHED:
                break
            seats = [{"seat": seat, **ended} for seat, ended in sorted(entry.seats.items())]
            outcomes = [s["outcome"] for s in seats]
            outcome = "complete" if outcomes and all(o == "complete" for o in outcomes) else next(
                (o for o in outcomes if o != "complete"), None)
            finished.append({
                "session": entry.session,
                "room": entry.room_id,
                "outcome": outcome,
                "seats": seats,
                "ended_s_ago": round(now - entry.ended_at, 1),
                "series": self._series(entry.room_id, [s["seat"] for s in seats]),
            })
        files = list_files(self.data_dir, self.study_id)
        return {
            "study": self.study_id,
            "time_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "now": round(now, 3),
            "pages": {"live": len(live), "known": len(self.reports.pages)},
            "scenes": self.reports.scene_counts(now),
            "connections": self.connections(),
            "rooms": rooms,
            "finished": finished,
            "files": files,
            "reports": dict(self.reports.counts),
        }

    def _room(self, room: Room, by_seat: dict[tuple[str, int], dict[str, Any]], now: float) -> dict[str, Any]:
        # Imported here: the bridge brings the env layer (numpy, gymnasium), which the server needs only now.
        from pyodide_runtime.bridge import session_id_for_room

        seats = []
        ended = 0
        for seat in room.seats:
            report = by_seat.get((room.id, seat.index))
            game = (report or {}).get("game") or {}
            if report is not None and report["ended"] is not None:
                ended += 1
            seats.append({
                "seat": seat.index,
                "connected": seat.connected,
                "gone": seat.gone,
                "relay": seat.relay or room.relay_forced,
                "reporting": report is not None,
                "scene": report["scene"] if report else None,
                "episode": game.get("episode"),
                "frame": game.get("frame"),
                "transport": game.get("transport"),
                "rtt_ms": game.get("rtt_ms"),
                "rollbacks": game.get("rollbacks"),
                "partner_away": game.get("partner_away"),
                "ended": report["ended"] if report else None,
            })
        if room.seats and ended == len(room.seats):
            status = "ended"
        elif room.paired_at is not None:
            status = "playing"
        else:
            status = "waiting"
        return {
            "room": room.id,
            "session": session_id_for_room(room.token),
            "status": status,
            "size": room.size,
            "private": room.private,
            "age_s": round(now - room.created, 1),
            "seats": seats,
            "series": self._series(room.id, [s.index for s in room.seats]),
        }

    def _series(self, room_id: str | None, seats: list[int]) -> list[dict[str, Any]]:
        """Per seat, at most :data:`MAX_PLOT_POINTS` points ``[t, rtt_ms, rollbacks]`` (evenly thinned)."""
        if room_id is None:
            return []
        out = []
        for seat in seats:
            points = self.reports.points(room_id, seat)
            if len(points) > MAX_PLOT_POINTS:
                step = len(points) / MAX_PLOT_POINTS
                points = [points[int(i * step)] for i in range(MAX_PLOT_POINTS - 1)] + [points[-1]]
            out.append({"seat": seat, "points": [list(p) for p in points]})
        return out


# --------------------------------------------------------------------------------------------------- files


def _walk(root: Path) -> Iterator[tuple[Path, str]]:
    """Regular files under ``root`` (no hidden names, no symlinks), with their ``/``-separated relative paths."""
    for directory, dirs, names in os.walk(root):
        dirs[:] = sorted(d for d in dirs if not d.startswith(".") and not os.path.islink(os.path.join(directory, d)))
        for name in sorted(names):
            path = Path(directory, name)
            if name.startswith(".") or path.is_symlink() or not path.is_file():
                continue
            yield path, path.relative_to(root).as_posix()


def list_files(data_dir: Path | None, study_id: str) -> dict[str, Any]:
    """The stored bundles of the study, newest first: ``{"count", "bytes", "items", "truncated"}``.

    Seat directories with an ``uploads.jsonl`` are listed from it (``<session>/seat<N>/<kind>[-<label>]-<sha>.zip``);
    any other ``.zip``/``.bin`` (the flat ``<session>/seat<N>-<sha>.zip`` layout, or a file the log lacks) from
    its name.
    """
    empty: dict[str, Any] = {"count": 0, "bytes": 0, "items": [], "truncated": False, "data_zip": None}
    if data_dir is None:
        return empty
    root = data_dir / study_id
    if not root.is_dir():
        return {**empty, "data_zip": "/admin/data.zip"}
    items: dict[str, dict[str, Any]] = {}
    walked = 0
    for path, relative in _walk(root):
        walked += 1
        if walked > MAX_WALKED_FILES:
            break
        parts = relative.split("/")
        if parts[-1] == "uploads.jsonl":
            for entry in _read_log(path):
                name = entry.get("file")
                if not isinstance(name, str) or "/" in name or name.startswith("."):
                    continue
                rel = "/".join([*parts[:-1], name])
                if (root / rel).is_file():
                    items[rel] = _item(study_id, rel, root / rel, entry)
            continue
        if path.suffix in (".zip", ".bin") and relative not in items:
            items[relative] = _item(study_id, relative, path, {})
    ordered = sorted(items.values(), key=lambda i: (i["mtime"], i["path"]), reverse=True)
    return {
        "count": len(ordered),
        "bytes": sum(i["bytes"] for i in ordered),
        "items": ordered[:MAX_LISTED_FILES],
        "truncated": len(ordered) > MAX_LISTED_FILES or walked > MAX_WALKED_FILES,
        "data_zip": "/admin/data.zip",
    }


def _read_log(path: Path) -> list[dict[str, Any]]:
    entries = []
    try:
        with path.open(encoding="utf-8", errors="replace") as lines:
            for line in lines:
                try:
                    entry = json.loads(line)
                except ValueError:
                    continue
                if isinstance(entry, dict):
                    entries.append(entry)
    except OSError:
        pass
    return entries


def _item(study_id: str, relative: str, path: Path, entry: dict[str, Any]) -> dict[str, Any]:
    """One listed file: where it is, whose it is and what kind, from the upload log entry or else its name."""
    parts = relative.split("/")
    name = parts[-1]
    seat = None
    kind = label = None
    for part in parts[1:-1]:
        if m := _SEAT_DIR.match(part):
            seat = int(m.group(1))
    if m := _OLD_NAME.match(name):
        seat, kind = int(m.group(1)), "final"
    elif m := _NEW_NAME.match(name):
        kind, label = m.group(1), m.group(2)
    try:
        stat = path.stat()
        size, mtime = stat.st_size, stat.st_mtime
    except OSError:
        size, mtime = 0, 0.0
    text = lambda key, default: entry[key] if isinstance(entry.get(key), str) else default  # noqa: E731
    full = f"{study_id}/{relative}"
    return {
        "path": full,
        "session": parts[0] if len(parts) > 1 else None,
        "seat": seat,
        "kind": text("kind", kind),
        "label": text("label", label),
        "sha256": text("sha256", None),
        "bytes": size,
        "time_utc": text("time_utc", time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(mtime))),
        "mtime": round(mtime, 3),
        "url": "/admin/files/" + quote(full),
    }


def _ascii_name(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]", "_", name)[:120] or "file"


class _Sink:
    """A write-only, unseekable file for :class:`zipfile.ZipFile` whose bytes are taken out as they come."""

    def __init__(self) -> None:
        self._parts: list[bytes] = []
        self._offset = 0

    def write(self, data: bytes) -> int:
        self._parts.append(bytes(data))
        self._offset += len(data)
        return len(data)

    def tell(self) -> int:
        return self._offset

    def flush(self) -> None:
        pass

    def seekable(self) -> bool:
        return False

    def take(self) -> bytes:
        data, self._parts = b"".join(self._parts), []
        return data
