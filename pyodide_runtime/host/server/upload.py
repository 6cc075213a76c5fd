"""``POST /upload``: store a participant's export bundle, verified by its declared sha256.

A bundle is stored as ``<data-dir>/<study>/<session>/seat<seat>/<kind>[-<label>]-<sha256[:16]>.<zip|bin>``, and
each file stored appends one JSON line to ``uploads.jsonl`` in the same seat directory. ``kind`` is one of
:data:`KINDS` (``final`` by default), ``label`` an optional ``[a-z0-9-]{1,40}`` name (``episode2``). The seat
comes from the seat token, the study from the server; the session id is the client's (sanitised) or else the
room's id. Participant ids are never used in paths. Nothing is ever overwritten: the same bytes uploaded again
with the same kind and label are recognised (idempotent), and different bytes always get a new name.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import re
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from aiohttp import web

from pyodide_runtime.host.assets import sha256_file
from pyodide_runtime.host.server.eventlog import EventLog
from pyodide_runtime.host.server.rooms import RoomRegistry
from pyodide_runtime.host.server.study import safe_name

__all__ = ["INDEX", "KINDS", "Uploads", "store_bundle"]

#: What an upload is: the session's final bundle, a bundle of the episodes confirmed so far, a bundle recovered
#: from a checkpoint after a reload, or the participant's own record (scenes, answers).
KINDS = ("final", "interim", "recovered", "participant")
#: The per-seat index of stored files, one JSON object per line.
INDEX = "uploads.jsonl"

_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_LABEL = re.compile(r"^[a-z0-9-]{1,40}$")
_CHUNK = 1 << 16


def _param(request: web.Request, name: str, header: str) -> str | None:
    value = request.query.get(name) or request.headers.get(header)
    return value.strip() if value else None


def _bad(status: type[web.HTTPException], message: str) -> web.HTTPException:
    return status(text=message + "\n")


class Uploads:
    """The upload handler of one server."""

    def __init__(
        self,
        data_dir: Path | None,
        study_id: str,
        registry: RoomRegistry,
        log: EventLog,
        max_bytes: int,
        clock: Callable[[], float],
    ) -> None:
        self.data_dir = data_dir
        self.study_id = study_id
        self.registry = registry
        self.log = log
        self.max_bytes = max_bytes
        self.clock = clock
        self._active = 0
        self._idle = asyncio.Event()
        self._idle.set()

    async def drain(self, timeout: float) -> bool:
        """Wait until no upload is in progress (at most ``timeout`` seconds); ``False`` if some still are."""
        try:
            await asyncio.wait_for(self._idle.wait(), timeout)
        except asyncio.TimeoutError:
            return False
        return True

    def _too_large(self, size: int) -> web.HTTPException:
        self.log("upload", ok=False, bytes=size, reason="too large")
        return web.HTTPRequestEntityTooLarge(
            max_size=self.max_bytes, actual_size=size,
            text=f"bundles may be at most {self.max_bytes} bytes (start the server with a larger --max-upload-mb)\n",
        )

    async def refuse_get(self, request: web.Request) -> web.StreamResponse:
        raise web.HTTPMethodNotAllowed("GET", ["POST"], text="send export bundles with POST /upload\n")

    async def handle(self, request: web.Request) -> web.StreamResponse:
        self._active += 1
        self._idle.clear()
        try:
            return await self._handle(request)
        finally:
            self._active -= 1
            if not self._active:
                self._idle.set()

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        if self.data_dir is None:
            raise _bad(web.HTTPNotFound, "uploads are disabled on this server (start it with --data-dir DIR)")
        declared = (_param(request, "sha256", "X-Bundle-Sha256") or "").lower()
        if not _SHA256.match(declared):
            raise _bad(web.HTTPBadRequest, "declare the bundle's sha256 (64 hex digits) as ?sha256= or X-Bundle-Sha256")
        token = _param(request, "seat_token", "X-Seat-Token")
        auth = request.headers.get("Authorization", "")
        if not token and auth.lower().startswith("bearer "):
            token = auth[7:].strip()
        seat_of = self.registry.authorize_upload(token, self.clock()) if token else None
        if seat_of is None:
            raise _bad(web.HTTPForbidden, "a valid seat token is required to upload (?seat_token= or X-Seat-Token)")
        room_id, seat = seat_of
        declared_seat = _param(request, "seat", "X-Seat")
        if declared_seat is not None and declared_seat != str(seat):
            raise _bad(web.HTTPForbidden, f"seat {declared_seat[:8]!r} does not match the seat token (seat {seat})")
        study = _param(request, "study", "X-Study")
        if study is not None and study != self.study_id:
            raise _bad(web.HTTPBadRequest, f"this server runs study {self.study_id!r}, not {study[:64]!r}")
        if request.content_length is not None and request.content_length > self.max_bytes:
            raise self._too_large(request.content_length)
        session = safe_name(_param(request, "session", "X-Session") or room_id)
        kind = _param(request, "kind", "X-Upload-Kind") or "final"
        if kind not in KINDS:
            raise _bad(web.HTTPBadRequest, f"kind {kind[:40]!r} is not one of {', '.join(KINDS)}")
        label = _param(request, "label", "X-Upload-Label")
        if label is not None and not _LABEL.match(label):
            raise _bad(web.HTTPBadRequest,
                       f"label {label[:40]!r} must be 1 to 40 lower-case letters, digits or '-'")

        incoming = self.data_dir / ".incoming"
        incoming.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(dir=incoming, prefix="upload-")
        tmp = Path(tmp_name)
        try:
            digest = hashlib.sha256()
            size = 0
            head = b""
            with os.fdopen(fd, "wb") as out:
                async for chunk in request.content.iter_chunked(_CHUNK):
                    size += len(chunk)
                    if size > self.max_bytes:
                        raise self._too_large(size)
                    if len(head) < 4:
                        head += chunk[: 4 - len(head)]
                    digest.update(chunk)
                    out.write(chunk)
            actual = digest.hexdigest()
            if actual != declared:
                self.log("upload", ok=False, room=room_id, seat=seat, bytes=size, reason="sha256 mismatch")
                raise _bad(
                    web.HTTPBadRequest,
                    f"sha256 mismatch: declared {declared}, but the {size} bytes received hash to {actual}; "
                    "nothing was stored. Upload the bundle again.",
                )
            suffix = ".zip" if head == b"PK\x03\x04" else ".bin"
            target_dir = self.data_dir / self.study_id / session / f"seat{seat}"
            stem = f"{kind}-{label}" if label else kind
            path, duplicate = store_bundle(tmp, target_dir, f"{stem}-{actual[:16]}", suffix, actual)
            if not duplicate:
                append_index(target_dir, kind=kind, label=label, sha256=actual, size=size, file=path.name)
        finally:
            tmp.unlink(missing_ok=True)
        relative = path.relative_to(self.data_dir).as_posix()
        self.log("upload", ok=True, room=room_id, seat=seat, kind=kind, label=label, bytes=size, sha256=actual,
                 path=relative, duplicate=duplicate)
        body: dict[str, Any] = {"ok": True, "path": relative, "sha256": actual, "bytes": size, "duplicate": duplicate,
                                "kind": kind, "label": label}
        return web.json_response(body, status=200 if duplicate else 201)


def append_index(seat_dir: Path, *, kind: str, label: str | None, sha256: str, size: int, file: str) -> None:
    """Append one line for a stored file to ``seat_dir/uploads.jsonl`` (written in one call, flushed)."""
    now = time.time()
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now)) + f".{int(now % 1 * 1000):03d}Z"
    line = json.dumps({"time_utc": stamp, "kind": kind, "label": label, "sha256": sha256, "bytes": size,
                       "file": file}, separators=(",", ":"))
    with (seat_dir / INDEX).open("a", encoding="utf-8") as index:
        index.write(line + "\n")


def store_bundle(tmp: Path, target_dir: Path, stem: str, suffix: str, sha256: str) -> tuple[Path, bool]:
    """Link ``tmp`` into ``target_dir`` as ``stem[-n]suffix`` without ever replacing a file.

    Returns ``(path, duplicate)``: ``duplicate`` is true when a file with the same bytes was already there.
    """
    target_dir.mkdir(parents=True, exist_ok=True)
    for n in range(1000):
        path = target_dir / (f"{stem}{suffix}" if n == 0 else f"{stem}-{n}{suffix}")
        try:
            _link_or_copy(tmp, path)
            return path, False
        except FileExistsError:
            if sha256_file(path) == sha256:
                return path, True
    raise web.HTTPInternalServerError(text="too many bundles with the same hash prefix\n")


def _link_or_copy(src: Path, dst: Path) -> None:
    """Create ``dst`` with ``src``'s bytes; raise ``FileExistsError`` if ``dst`` exists (never replaces it)."""
    try:
        os.link(src, dst)
    except FileExistsError:
        raise
    except OSError:  # no hard links on this file system: exclusive create and copy
        with src.open("rb") as reader, dst.open("xb") as writer:
            for chunk in iter(lambda: reader.read(1 << 20), b""):
                writer.write(chunk)
