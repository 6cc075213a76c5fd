"""The ``/ws`` endpoint: joining rooms, WebRTC signaling, and the relay fallback.

Text frames carry JSON control messages; binary frames carry peer bytes for the relay. The server stamps the
sender's seat on everything it forwards, and forwards only within the sender's room. See ``docs/server.md`` for
the message protocol.

With ``max_rtt_ms`` set, every room that fills is screened for latency: each page measures its round trip to its
partners and reports it (``rtt``); once every seat reported, or ``screening_timeout`` after the room filled, the
server tells every seat the verdict (``screened``). A room over the bound is closed (close code ``screened``), its
session does not count toward ``max_sessions``, and its pages are never paired together again.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import math
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import WSMsgType, web

from pyodide_runtime.host.server.eventlog import EventLog
from pyodide_runtime.host.server.limits import TokenBucket
from pyodide_runtime.host.server.origins import origin_allowed
from pyodide_runtime.host.server.page_config import BROADCAST, close_code
from pyodide_runtime.host.server.participants import participant_from
from pyodide_runtime.host.server.rooms import Joined, JoinRefused, Room, RoomRegistry
from pyodide_runtime.host.server.settings import ServerSettings

__all__ = ["Hub", "BROADCAST", "CLOSE_LEFT", "CLOSE_GOING_AWAY", "CLOSE_POLICY", "CLOSE_TOO_BIG", "CLOSE_REPLACED",
           "CLOSE_EXPIRED", "CLOSE_REFUSED", "CLOSE_SCREENED"]

#: Close codes (the table in :data:`pyodide_runtime.host.server.page_config.CLOSE_CODES`, also served to the page).
CLOSE_LEFT = close_code("left")
CLOSE_GOING_AWAY = close_code("going_away")
CLOSE_POLICY = close_code("policy")
CLOSE_TOO_BIG = close_code("too_big")
CLOSE_REPLACED = close_code("replaced")
CLOSE_EXPIRED = close_code("expired")
CLOSE_REFUSED = close_code("refused")
CLOSE_SCREENED = close_code("screened")

_TOKEN = re.compile(r"^[A-Za-z0-9_-]{1,128}$")
_PAGE_ID = re.compile(r"^[A-Za-z0-9_-]{8,64}$")


@dataclass(eq=False)
class Screening:
    """The latency screening of one full room: the reports so far, then the verdict."""

    room: Room
    started: float
    #: seat -> reported round trip in ms (``None``: the page could not measure it).
    reports: dict[int, float | None] = field(default_factory=dict)
    #: The ``screened`` message, once decided.
    verdict: dict[str, Any] | None = None


@dataclass(eq=False)
class Connection:
    """One WebSocket and its counters."""

    id: int
    ws: web.WebSocketResponse
    bucket: TokenBucket
    opened: float
    stats: dict[str, int] = field(
        default_factory=lambda: {
            "messages_in": 0,
            "signals": 0,
            "relay_frames_in": 0,
            "relay_bytes_in": 0,
            "relay_frames_out": 0,
            "relay_bytes_out": 0,
            "dropped_rate": 0,
            "dropped_no_peer": 0,
        }
    )
    close_reason: str | None = None
    #: The close code the server chose, when it closed the socket.
    close_code: int | None = None
    last_rate_notice: float = float("-inf")
    #: ``(room id, seat)`` once the connection gave its seat up, for the log.
    left_seat: tuple[str, int] | None = None


class Hub:
    """All live connections and the room registry behind ``/ws``."""

    def __init__(
        self,
        registry: RoomRegistry,
        settings: ServerSettings,
        log: EventLog,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.registry = registry
        self.settings = settings
        self.log = log
        self.clock = clock
        self.connections: dict[int, Connection] = {}
        self._ids = itertools.count(1)
        self._closing = False
        self._tasks: set[asyncio.Future[Any]] = set()
        self._screenings: dict[str, Screening] = {}  # by room token

    # ----------------------------------------------------------------------------------------------- HTTP side

    def origin_allowed(self, request: web.Request) -> bool:
        """Whether the request's ``Origin`` may use this server (see :func:`origin_allowed`)."""
        return origin_allowed(request.headers.get("Origin"), request.host, self.settings.allow_origins)

    async def handle(self, request: web.Request) -> web.StreamResponse:
        """The ``/ws`` handler."""
        if not self.origin_allowed(request):
            self.log("refuse", code="origin", origin=request.headers.get("Origin", "")[:200])
            raise web.HTTPForbidden(text="WebSocket connections from this origin are not allowed\n")
        if self._closing:
            raise web.HTTPServiceUnavailable(text="the server is shutting down\n")
        if len(self.connections) >= self.settings.max_connections:
            self.log("refuse", code="server-full")
            raise web.HTTPServiceUnavailable(text="the server is at its connection limit\n")
        ws = web.WebSocketResponse(
            max_msg_size=self.settings.max_message_bytes, heartbeat=self.settings.heartbeat, timeout=3.0
        )
        await ws.prepare(request)
        now = self.clock()
        conn = Connection(next(self._ids), ws, TokenBucket(self.settings.rate, self.settings.burst, now), now)
        self.connections[conn.id] = conn
        deadline = asyncio.get_running_loop().call_later(self.settings.join_timeout, self._join_deadline, conn)
        try:
            await self._serve(conn, dict(request.query))
        finally:
            deadline.cancel()
            del self.connections[conn.id]
            await self._disconnected(conn)
        return ws

    def _join_deadline(self, conn: Connection) -> None:
        if self.registry.seat_of(conn.id) is None and not conn.ws.closed:
            self._close_later(conn, CLOSE_POLICY, "no join in time", "join timeout")

    # ---------------------------------------------------------------------------------------------- messages

    async def _serve(self, conn: Connection, query: dict[str, str]) -> None:
        ws = conn.ws
        async for msg in ws:
            if msg.type is WSMsgType.ERROR:  # aiohttp has closed the socket (1009 for an oversized message)
                conn.close_code = ws.close_code
                too_big = ws.close_code == CLOSE_TOO_BIG
                conn.close_reason = "message too big" if too_big else f"error: {msg.data}"
                return
            now = self.clock()
            if not conn.bucket.take(now):
                conn.stats["dropped_rate"] += 1
                if conn.stats["dropped_rate"] >= self.settings.rate_drop_limit:
                    conn.close_reason = "rate limit"
                    conn.close_code = CLOSE_POLICY
                    await ws.close(code=CLOSE_POLICY, message=b"rate limit exceeded")
                    return
                if now - conn.last_rate_notice >= 1.0:
                    conn.last_rate_notice = now
                    await self._error(conn, "rate-limited", "too many messages: some were dropped")
                continue
            conn.stats["messages_in"] += 1
            if msg.type is WSMsgType.TEXT:
                await self._on_text(conn, msg.data, query)
            elif msg.type is WSMsgType.BINARY:
                await self._on_binary(conn, msg.data)
        if conn.close_reason is None:
            conn.close_reason = "closed"

    async def _on_text(self, conn: Connection, data: str, query: dict[str, str]) -> None:
        try:
            message = json.loads(data)
        except (ValueError, RecursionError):
            await self._error(conn, "bad-json", "control messages must be JSON objects")
            return
        if not isinstance(message, dict) or not isinstance(message.get("type"), str):
            await self._error(conn, "bad-message", "a control message is a JSON object with a string 'type'")
            return
        kind = message["type"]
        if kind == "join":
            await self._on_join(conn, message, query)
        elif kind == "ping":
            await self._send(conn, {"type": "pong", "t": message.get("t")})
        elif self.registry.seat_of(conn.id) is None:
            await self._error(conn, "not-joined", f"send 'join' before {kind!r}")
        elif kind == "signal":
            await self._on_signal(conn, message)
        elif kind == "leave":
            await self._on_leave(conn)
        elif kind == "rtt":
            await self._on_rtt(conn, message)
        else:
            await self._error(conn, "bad-message", f"unknown message type {kind[:40]!r}")

    async def _on_join(self, conn: Connection, message: dict[str, Any], query: dict[str, str]) -> None:
        params = {**query, **{k: v for k, v in message.items() if isinstance(v, str)}}
        if isinstance(message.get("params"), dict):
            params = {**message["params"], **params}
        participant, source = participant_from(params)
        relay = _truthy(message.get("relay", params.get("relay")))
        now = self.clock()
        page_id = message.get("page_id")
        try:
            if page_id is not None and not (isinstance(page_id, str) and _PAGE_ID.match(page_id)):
                raise JoinRefused("bad-page-id", "page_id must be 8 to 64 letters, digits, '_' or '-'")
            # A token of the wrong type is refused like a malformed one, never dropped into FIFO pairing.
            room_token = _token(message.get("room", params.get("room")), "unknown-room", "this room link is not valid")
            seat_token = _token(message.get("seat_token", params.get("seat_token")), "bad-token",
                                "this seat token is not valid")
            if room_token == "new" and seat_token is None:
                room_token = self.registry.create_room(now, private=True).token
            joined = self.registry.join(
                conn.id, now, room_token=room_token, seat_token=seat_token, participant=participant, relay=relay,
                page_id=page_id,
            )
        except JoinRefused as refused:
            self.log("refuse", code=refused.code, conn=conn.id)
            await self._error(conn, refused.code, refused.message)
            if refused.code != "already-joined":
                conn.close_reason = f"refused: {refused.code}"
                conn.close_code = CLOSE_REFUSED
                await conn.ws.close(code=CLOSE_REFUSED, message=refused.code.encode())
            return
        await self._joined(conn, joined, participant, source, page_id is not None)

    async def _joined(
        self, conn: Connection, joined: Joined, participant: str | None, source: str | None, page_id_given: bool
    ) -> None:
        room, seat = joined.room, joined.seat
        if joined.replaced is not None:
            old = self.connections.get(joined.replaced)  # type: ignore[arg-type]
            if old is not None:
                self._close_later(old, CLOSE_REPLACED, "seat reclaimed by a newer connection", "replaced")
        relay = self._relay(room)
        await self._send(
            conn,
            {
                "type": "joined",
                "room": room.token,
                "seat": seat.index,
                "seat_token": seat.token,
                "players": room.size,
                "peers": [i for i in room.connected_seats() if i != seat.index],
                "participant": seat.participant if joined.reclaimed else participant,
                "participant_source": source,
                "relay": relay,
                "reclaimed": joined.reclaimed,
            },
        )
        self.log(
            "join", conn=conn.id, room=room.id, seat=seat.index, private=room.private,
            reclaimed=joined.reclaimed, relay=relay, participant_given=participant is not None,
            page_id_given=page_id_given,
        )
        for other, _ in self.registry.targets(conn.id):
            await self._send_to(other.conn, {
                "type": "peer-joined", "seat": seat.index, "reclaimed": joined.reclaimed, "relay": relay,
            })
        if joined.paired:
            self.log("pair", room=room.id, seats=room.size, private=room.private, sessions=self.registry.sessions)
            if self.settings.max_rtt_ms is not None:
                self._screenings[room.token] = Screening(room, self.clock())
                self.log("screening", room=room.id, max_rtt_ms=self.settings.max_rtt_ms,
                         timeout=self.settings.screening_timeout)
            if self.registry.study_full:
                await self._dismiss_waiting()
        elif joined.reclaimed:
            screening = self._screenings.get(room.token)
            if screening is not None and screening.verdict is not None:
                await self._send(conn, screening.verdict)  # a reload may have missed it

    async def _dismiss_waiting(self) -> None:
        """The session cap is reached: nobody still waiting for a partner will get one; tell them and close."""
        now = self.clock()
        dismissed = 0
        for room in self.registry.unfilled_rooms():
            for conn_id in self.registry.close_room(room, now):
                conn = self.connections.get(conn_id)  # type: ignore[arg-type]
                if conn is not None:
                    dismissed += 1
                    await self._error(conn, "study-full", "this study has all the sessions it needs")
                    self._close_later(conn, CLOSE_REFUSED, "study-full", "refused: study-full")
        self.log("study-full", sessions=self.registry.sessions, dismissed=dismissed)

    # ---------------------------------------------------------------------------------------- latency screening

    async def _on_rtt(self, conn: Connection, message: dict[str, Any]) -> None:
        room, seat = self.registry.seat_of(conn.id)  # type: ignore[misc]
        value = message.get("rtt_ms")
        if value is not None and (
            type(value) not in (int, float) or not math.isfinite(value) or value < 0
        ):
            await self._error(conn, "bad-message", "'rtt_ms' must be a number of milliseconds >= 0, or null")
            return
        rtt = None if value is None else float(value)
        if self.settings.max_rtt_ms is None:  # not screening: never keep a page waiting for a verdict
            await self._send(conn, {"type": "screened", "ok": True, "rtt_ms": rtt, "max_rtt_ms": None})
            return
        screening = self._screenings.get(room.token)
        if screening is None:
            await self._error(conn, "not-paired", "send 'rtt' once the room is full")
            return
        if screening.verdict is not None:
            await self._send(conn, screening.verdict)
            return
        screening.reports[seat.index] = rtt
        self.log("rtt", room=room.id, seat=seat.index, rtt_ms=rtt)
        if len(screening.reports) >= room.size:
            await self._decide(screening, timed_out=False)

    async def _decide(self, screening: Screening, *, timed_out: bool) -> None:
        """Tell every seat the verdict; close the room when it failed. Missing and unmeasured reports pass."""
        room = screening.room
        bound = self.settings.max_rtt_ms
        assert bound is not None
        measured = [v for v in screening.reports.values() if v is not None]
        worst = max(measured) if measured else None
        ok = worst is None or worst <= bound
        screening.verdict = {"type": "screened", "ok": ok, "rtt_ms": worst, "max_rtt_ms": bound}
        await self._tell_room(room, screening.verdict)
        now = self.clock()
        fields: dict[str, Any] = {
            "room": room.id, "ok": ok, "rtt_ms": worst, "max_rtt_ms": bound, "measured": len(measured),
            "unmeasured": len(screening.reports) - len(measured), "missing": room.size - len(screening.reports),
            "timed_out": timed_out, "seconds": round(now - screening.started, 3),
        }
        if ok:
            self.log("screened", **fields)
            return
        del self._screenings[room.token]
        seats = {seat.conn: seat.index for seat in room.seats if seat.conn is not None}
        pairs = self.registry.avoid(room, now)
        self.registry.close_room(room, now, uncount=True)
        self.log("screened", **fields, avoided_pairs=pairs, sessions=self.registry.sessions)
        for conn_id, index in seats.items():
            conn = self.connections.get(conn_id)  # type: ignore[arg-type]
            if conn is not None:
                conn.left_seat = (room.id, index)
                self._close_later(conn, CLOSE_SCREENED, "latency screening failed", "screened")

    async def _screening_deadlines(self) -> None:
        """Decide screenings that waited ``screening_timeout``; forget those of rooms that are gone."""
        now = self.clock()
        live = {room.token for room in self.registry}
        for token, screening in list(self._screenings.items()):
            if token not in live:
                del self._screenings[token]
            elif screening.verdict is None and now - screening.started >= self.settings.screening_timeout:
                await self._decide(screening, timed_out=True)

    async def _on_signal(self, conn: Connection, message: dict[str, Any]) -> None:
        room, seat = self.registry.seat_of(conn.id)  # type: ignore[misc]
        to = message.get("to")
        if type(to) is not int:
            await self._error(conn, "bad-target", "'to' must be the seat number of a peer in your room")
            return
        targets = self.registry.targets(conn.id, to)
        if not targets:
            await self._error(conn, "bad-target", f"seat {to} is not connected in your room")
            return
        conn.stats["signals"] += 1
        # Only 'data' is forwarded; 'from' is always the sender's real seat.
        await self._send_to(targets[0][1], {"type": "signal", "from": seat.index, "data": message.get("data")})

    async def _on_binary(self, conn: Connection, data: bytes) -> None:
        found = self.registry.seat_of(conn.id)
        if found is None or len(data) < 1:
            await self._error(conn, "not-joined" if found is None else "bad-frame",
                              "relay frames are [to seat][payload], sent after 'join'")
            return
        _, seat = found
        to = data[0]
        targets = self.registry.targets(conn.id, None if to == BROADCAST else to)
        conn.stats["relay_frames_in"] += 1
        conn.stats["relay_bytes_in"] += len(data) - 1
        if not targets:
            conn.stats["dropped_no_peer"] += 1
            return
        frame = bytes((seat.index,)) + data[1:]
        for _, peer_id in targets:
            if await self._send_bytes(peer_id, frame):
                conn.stats["relay_frames_out"] += 1
                conn.stats["relay_bytes_out"] += len(frame) - 1
            else:
                conn.stats["dropped_no_peer"] += 1

    # -------------------------------------------------------------------------------------- leaving and expiry

    async def _on_leave(self, conn: Connection) -> None:
        # A page sends this as it unloads and may be gone before the close handshake: free the seat and tell the
        # room first, so the partner hears it now rather than when the socket finally closes.
        conn.close_reason = "left"
        conn.close_code = CLOSE_LEFT
        await self._free_seat(conn, final=True)
        await conn.ws.close(code=CLOSE_LEFT, message=b"left")

    async def _free_seat(self, conn: Connection, *, final: bool) -> None:
        """Take ``conn`` out of its seat (for good when ``final``) and tell the rest of the room."""
        left = self.registry.leave(conn.id, self.clock(), final=final)
        if left is not None:
            conn.left_seat = (left.room.id, left.seat.index)
            await self._tell_room(left.room, {"type": "peer-left", "seat": left.seat.index, "reason": left.reason})

    async def _disconnected(self, conn: Connection) -> None:
        await self._free_seat(conn, final=False)  # no-op after an explicit leave
        fields: dict[str, Any] = {
            "conn": conn.id,
            "reason": conn.close_reason,
            "close_code": conn.close_code or conn.ws.close_code,
            "seconds": round(self.clock() - conn.opened, 3),
            **conn.stats,
        }
        if conn.left_seat is not None:
            fields.update(room=conn.left_seat[0], seat=conn.left_seat[1])
        self.log("leave", **fields)

    async def expire(self) -> None:
        """Apply room lifetimes now: notify about seats that are gone, close connections of removed rooms."""
        expired = self.registry.expire(self.clock())
        for room, seat in expired.seats:
            self.log("seat-expired", room=room.id, seat=seat.index)
            await self._tell_room(room, {"type": "peer-left", "seat": seat.index, "reason": "expired"})
        for room, reason in expired.rooms:
            self.log("expire", room=room.id, reason=reason, age=round(self.clock() - room.created, 3))
        for conn_id in expired.close:
            conn = self.connections.get(conn_id)  # type: ignore[arg-type]
            if conn is not None:
                self._close_later(conn, CLOSE_EXPIRED, "room expired", "room expired")
        await self._screening_deadlines()

    async def run_expiry(self, interval: float = 1.0) -> None:
        """Call :meth:`expire` every ``interval`` seconds, forever."""
        while True:
            await asyncio.sleep(interval)
            try:
                await self.expire()
            except Exception as exc:  # noqa: BLE001 - keep expiring rooms whatever one pass ran into
                self.log("error", where="expiry", message=f"{type(exc).__name__}: {exc}")

    async def close_all(self) -> None:
        """Shutdown: refuse new sockets and close every open one with 1001 (going away)."""
        self._closing = True
        conns = list(self.connections.values())
        for conn in conns:
            conn.close_reason = "server shutdown"
            conn.close_code = CLOSE_GOING_AWAY
        await asyncio.gather(
            *(c.ws.close(code=CLOSE_GOING_AWAY, message=b"server shutting down") for c in conns),
            return_exceptions=True,
        )

    # ----------------------------------------------------------------------------------------------- sending

    def _close_later(self, conn: Connection, code: int, message: str, reason: str) -> None:
        # Closing waits for the peer's close frame; never make another connection's handler wait for that.
        conn.close_reason = reason
        conn.close_code = code
        task = asyncio.ensure_future(conn.ws.close(code=code, message=message.encode()))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _relay(self, room: Room) -> bool:
        return self.settings.force_relay or room.relay_forced

    async def _tell_room(self, room: Room, message: dict[str, Any]) -> None:
        for seat in room.seats:
            if seat.conn is not None:
                await self._send_to(seat.conn, message)

    async def _send_to(self, conn_id: Any, message: dict[str, Any]) -> None:
        conn = self.connections.get(conn_id)
        if conn is not None:
            await self._send(conn, message)

    async def _send(self, conn: Connection, message: dict[str, Any]) -> None:
        if conn.ws.closed:
            return
        try:
            await conn.ws.send_str(json.dumps(message, separators=(",", ":")))
        except (ConnectionError, RuntimeError):
            pass  # the socket is closing; its handler cleans up

    async def _send_bytes(self, conn_id: Any, data: bytes) -> bool:
        conn = self.connections.get(conn_id)
        if conn is None or conn.ws.closed:
            return False
        try:
            await conn.ws.send_bytes(data)
        except (ConnectionError, RuntimeError):
            return False
        return True

    async def _error(self, conn: Connection, code: str, message: str) -> None:
        await self._send(conn, {"type": "error", "code": code, "message": message})


def _token(value: Any, code: str, message: str) -> str | None:
    """A well-formed token, ``None`` when absent; anything else is refused (never falls back to pairing)."""
    if value is None or value == "":
        return None
    if isinstance(value, str) and _TOKEN.match(value):
        return value
    raise JoinRefused(code, message)


def _truthy(value: Any) -> bool:
    if isinstance(value, str):
        return value.lower() in ("1", "true", "yes", "on")
    return value is True
