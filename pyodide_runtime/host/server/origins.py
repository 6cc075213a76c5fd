"""The Origin check: which web pages may open WebSockets to (and create rooms on) this server."""

from __future__ import annotations

from collections.abc import Collection
from urllib.parse import urlsplit

__all__ = ["normalise_origin", "origin_allowed"]


def normalise_origin(origin: str) -> str:
    """``scheme://host[:port]`` in lower case, the form browsers send in the ``Origin`` header; ``*`` stays."""
    if origin == "*":
        return origin
    parts = urlsplit(origin.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.path not in ("", "/"):
        raise ValueError(f"origin {origin!r} must look like https://example.org or http://host:port")
    host = parts.hostname.lower()
    if ":" in host:
        host = f"[{host}]"
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{host}{port}"


def origin_allowed(origin: str | None, host: str, allowed: Collection[str]) -> bool:
    """Same origin (the ``Host`` the browser used), or listed in ``allowed`` (normalised), or ``*`` listed.

    A request without ``Origin`` is allowed: browsers always send it on WebSocket handshakes and cross-site POSTs,
    so the check protects participants' browsers from other sites; non-browser clients can send anything anyway.
    """
    if origin is None:
        return True
    if "*" in allowed:
        return True
    try:
        netloc = urlsplit(origin).netloc.lower()
    except ValueError:
        return False
    if netloc and netloc == host.lower():
        return True
    return origin.lower().rstrip("/") in allowed
