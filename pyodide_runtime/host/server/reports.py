"""``POST /report``: what each participant page says it is doing, kept in memory for the researcher dashboard.

A page reports every 2 s and at each scene change (``js_bridge/report.mjs``). The report is small, strictly
checked, and carries no participant id: unknown fields are refused rather than ignored, so nothing a page adds
later can end up stored by accident. The room a page names is its room token (a capability); it is resolved to the
room's public id at once and never stored.

Everything is bounded: the latest report of at most :data:`MAX_PAGES` pages (the oldest forgotten first), one
time series of ``(t, rtt_ms, rollbacks)`` per ``(room, seat)`` while its session runs, of at most :data:`MAX_POINTS`
points for at most :data:`MAX_SERIES` seats, and at most :data:`MAX_FINISHED` finished sessions. Each page id has
its own rate limit.
"""

from __future__ import annotations

import json
import math
import re
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from pyodide_runtime.host.server.limits import TokenBucket

__all__ = ["ReportError", "Reports", "parse_report", "MAX_REPORT_BYTES", "MAX_PAGES", "MAX_POINTS", "LIVE_SECONDS",
           "SCENE_KINDS"]

#: Largest report body accepted.
MAX_REPORT_BYTES = 8 * 1024
#: Pages whose latest report is kept; the page that reported least recently is forgotten first.
MAX_PAGES = 10_000
#: Points per ``(room, seat)`` time series (an hour at one report every 2 s).
MAX_POINTS = 1_800
#: ``(room, seat)`` series kept; the one updated least recently is forgotten first.
MAX_SERIES = 1_000
#: Finished sessions remembered.
MAX_FINISHED = 2_000
#: A page is live when its latest report is at most this old (seconds).
LIVE_SECONDS = 30.0
#: Per page id: reports per second on average, and burst.
PAGE_RATE, PAGE_BURST = 1.0, 10.0
#: All pages together, so a flood of fresh page ids cannot monopolise the server.
TOTAL_RATE, TOTAL_BURST = 500.0, 1000.0
#: The scene kinds of a study (``[[scenes]]``); a page may report others (its loading stages), counted as given.
SCENE_KINDS = ("consent", "instructions", "practice", "waiting", "game", "survey", "end")

_PAGE_ID = re.compile(r"^[A-Za-z0-9_-]{8,64}$")
_ROOM = re.compile(r"^[A-Za-z0-9_-]{1,128}$")
_SESSION = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
_LABEL = re.compile(r"^[\x20-\x7e]{1,64}$")  # printable ASCII: scene ids and kinds, transports, outcomes
_TOP = {"page", "scene", "scene_kind", "room", "seat", "session", "game", "ended"}
_REQUIRED = {"page", "scene", "scene_kind"}
_GAME = {"episode", "frame", "transport", "rtt_ms", "rollbacks", "partner_away"}
_ENDED = {"outcome", "end_cause"}
_MAX_INT = 2**31 - 1


class ReportError(ValueError):
    """A report that is refused; the message says which field is wrong."""


def _reject_constant(name: str) -> Any:
    raise ReportError(f"{name} is not a number JSON allows")


def _label(value: Any, name: str, *, optional: bool = True) -> str | None:
    if value is None and optional:
        return None
    if not isinstance(value, str) or not _LABEL.match(value):
        raise ReportError(f"{name} must be a string of 1 to 64 printable ASCII characters")
    return value


def _int(value: Any, name: str, high: int = _MAX_INT) -> int | None:
    if value is None:
        return None
    if type(value) is not int or not 0 <= value <= high:
        raise ReportError(f"{name} must be an integer from 0 to {high}")
    return value


def _fields(value: Any, allowed: set[str], name: str) -> dict[str, Any] | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        raise ReportError(f"{name} must be an object or null")
    unknown = set(value) - allowed
    if unknown:
        raise ReportError(f"{name} has unknown field(s): {', '.join(sorted(unknown))[:200]}")
    return value


def parse_report(body: bytes) -> dict[str, Any]:
    """The checked report in ``body`` (JSON), normalised: every field present, absent optional ones ``None``.

    Raises :class:`ReportError` for anything else: bad JSON, unknown or missing fields, wrong types, a page id
    that is not ``[A-Za-z0-9_-]{8,64}``, labels longer than 64 characters.
    """
    if len(body) > MAX_REPORT_BYTES:
        raise ReportError(f"a report is at most {MAX_REPORT_BYTES} bytes")
    try:
        data = json.loads(body, parse_constant=_reject_constant)
    except ReportError:
        raise
    except (ValueError, RecursionError):
        raise ReportError("a report is a JSON object") from None
    report = _fields(data, _TOP, "the report")
    if report is None:
        raise ReportError("a report is a JSON object")
    missing = _REQUIRED - set(report)
    if missing:
        raise ReportError(f"the report lacks {', '.join(sorted(missing))}")
    page = report["page"]
    if not isinstance(page, str) or not _PAGE_ID.match(page):
        raise ReportError("page must be a page id of 8 to 64 characters [A-Za-z0-9_-]")
    room = report.get("room")
    if room is not None and (not isinstance(room, str) or not _ROOM.match(room)):
        raise ReportError("room must be a room token or null")
    session = report.get("session")
    if session is not None and (not isinstance(session, str) or not _SESSION.match(session)):
        raise ReportError("session must be a session id or null")
    out: dict[str, Any] = {
        "page": page,
        "scene": _label(report["scene"], "scene", optional=False),
        "scene_kind": _label(report["scene_kind"], "scene_kind", optional=False),
        "room": room,
        "seat": _int(report.get("seat"), "seat", 15),
        "session": session,
        "game": None,
        "ended": None,
    }
    game = _fields(report.get("game"), _GAME, "game")
    if game is not None:
        rtt = game.get("rtt_ms")
        if rtt is not None and (type(rtt) not in (int, float) or not math.isfinite(rtt) or not 0 <= rtt <= 600_000):
            raise ReportError("game.rtt_ms must be a number from 0 to 600000 or null")
        away = game.get("partner_away")
        if away is not None and not isinstance(away, bool):
            raise ReportError("game.partner_away must be true, false or null")
        out["game"] = {
            "episode": _int(game.get("episode"), "game.episode"),
            "frame": _int(game.get("frame"), "game.frame"),
            "transport": _label(game.get("transport"), "game.transport"),
            "rtt_ms": None if rtt is None else round(float(rtt), 1),
            "rollbacks": _int(game.get("rollbacks"), "game.rollbacks"),
            "partner_away": away,
        }
    ended = _fields(report.get("ended"), _ENDED, "ended")
    if ended is not None:
        out["ended"] = {"outcome": _label(ended.get("outcome"), "ended.outcome"),
                        "end_cause": _label(ended.get("end_cause"), "ended.end_cause")}
    return out


@dataclass
class PageState:
    """The latest report of one page, with the room resolved to its public id."""

    report: dict[str, Any]
    room_id: str | None
    received: float
    bucket: TokenBucket


@dataclass
class FinishedSession:
    """A session some page reported as ended: the outcome and end cause of each seat that said so."""

    key: str
    room_id: str | None
    session: str | None
    seats: dict[int, dict[str, Any]] = field(default_factory=dict)
    ended_at: float = 0.0


class Reports:
    """The ``POST /report`` handler and the in-memory state the dashboard reads.

    ``resolve_room`` maps a room token to the room's public id (``None`` when the server does not know it);
    ``origin_allowed`` is the same origin check as ``/ws``.
    """

    def __init__(self, clock: Callable[[], float], resolve_room: Callable[[str], str | None],
                 origin_allowed: Callable[[web.Request], bool] = lambda request: True) -> None:
        self.clock = clock
        self.resolve_room = resolve_room
        self.origin_allowed = origin_allowed
        self.pages: OrderedDict[str, PageState] = OrderedDict()
        self.series: OrderedDict[tuple[str, int], deque[tuple[float, float | None, int | None]]] = OrderedDict()
        self.finished: OrderedDict[str, FinishedSession] = OrderedDict()
        self.counts = {"accepted": 0, "rejected": 0, "rate_limited": 0}
        self._total = TokenBucket(TOTAL_RATE, TOTAL_BURST, clock())

    async def handle(self, request: web.Request) -> web.StreamResponse:
        """``POST /report``: 204 when stored; 400, 403, 413 or 429 otherwise (plain text saying why)."""
        if not self.origin_allowed(request):
            self.counts["rejected"] += 1
            raise web.HTTPForbidden(text="requests from this origin are not allowed\n")
        if request.content_length is not None and request.content_length > MAX_REPORT_BYTES:
            self.counts["rejected"] += 1
            raise web.HTTPRequestEntityTooLarge(max_size=MAX_REPORT_BYTES, actual_size=request.content_length,
                                                text=f"a report is at most {MAX_REPORT_BYTES} bytes\n")
        body = await request.content.read(MAX_REPORT_BYTES + 1)
        if len(body) > MAX_REPORT_BYTES:
            self.counts["rejected"] += 1
            raise web.HTTPRequestEntityTooLarge(max_size=MAX_REPORT_BYTES, actual_size=len(body),
                                                text=f"a report is at most {MAX_REPORT_BYTES} bytes\n")
        try:
            report = parse_report(body)
        except ReportError as exc:
            self.counts["rejected"] += 1
            raise web.HTTPBadRequest(text=f"{exc}\n") from None
        if not self.add(report):
            raise web.HTTPTooManyRequests(text="too many reports from this page\n")
        return web.Response(status=204, headers={"Cache-Control": "no-store"})

    def add(self, report: dict[str, Any]) -> bool:
        """Store a checked report (from :func:`parse_report`); ``False`` when over the rate limit."""
        now = self.clock()
        state = self.pages.get(report["page"])
        if not self._total.take(now) or (state is not None and not state.bucket.take(now)):
            self.counts["rate_limited"] += 1
            return False
        token = report.pop("room")
        room_id = self.resolve_room(token) if token else None
        if state is None:
            state = PageState(report, room_id, now, TokenBucket(PAGE_RATE, PAGE_BURST, now))
            state.bucket.take(now)
            self.pages[report["page"]] = state
            while len(self.pages) > MAX_PAGES:
                self.pages.popitem(last=False)
        else:
            # A room the server has since removed still belongs to the page that was in it.
            state.room_id = room_id or (state.room_id if state.report.get("session") == report["session"] else None)
            state.report, state.received = report, now
            self.pages.move_to_end(report["page"])
        self.counts["accepted"] += 1
        seat, game = report["seat"], report["game"]
        if state.room_id is not None and seat is not None and game is not None and report["ended"] is None:
            self._point((state.room_id, seat), (round(now, 3), game["rtt_ms"], game["rollbacks"]))
        if report["ended"] is not None and seat is not None:
            self._finished(state.room_id, report, seat, now)
        return True

    def _point(self, key: tuple[str, int], point: tuple[float, float | None, int | None]) -> None:
        points = self.series.get(key)
        if points is None:
            points = self.series[key] = deque(maxlen=MAX_POINTS)
            while len(self.series) > MAX_SERIES:
                self.series.popitem(last=False)
        else:
            self.series.move_to_end(key)
        points.append(point)

    def _finished(self, room_id: str | None, report: dict[str, Any], seat: int, now: float) -> None:
        key = report["session"] or room_id
        if key is None:
            return
        entry = self.finished.get(key)
        if entry is None:
            entry = self.finished[key] = FinishedSession(key, room_id, report["session"])
            while len(self.finished) > MAX_FINISHED:
                self.finished.popitem(last=False)
        entry.room_id = entry.room_id or room_id
        if seat not in entry.seats:
            entry.ended_at = now
        entry.seats[seat] = dict(report["ended"])

    # ------------------------------------------------------------------------------------------------ reading

    def live(self, now: float | None = None) -> list[PageState]:
        """Pages that reported within :data:`LIVE_SECONDS`."""
        now = self.clock() if now is None else now
        return [s for s in self.pages.values() if now - s.received <= LIVE_SECONDS]

    def scene_counts(self, now: float | None = None) -> dict[str, int]:
        """Live pages by scene kind: every study scene kind (0 when none), then any other kind reported."""
        counts = dict.fromkeys(SCENE_KINDS, 0)
        for state in self.live(now):
            kind = state.report["scene_kind"]
            counts[kind] = counts.get(kind, 0) + 1
        return counts

    def points(self, room_id: str, seat: int) -> list[tuple[float, float | None, int | None]]:
        return list(self.series.get((room_id, seat), ()))
