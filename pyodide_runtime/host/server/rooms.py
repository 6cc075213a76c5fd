"""The room registry: pairing, seats, seat tokens, reclaim and expiry, with no I/O.

Every method takes the current time (seconds, any monotonic clock), so the registry is tested with a fake clock
and no sockets. Connections are opaque hashable handles chosen by the caller.

Vocabulary:

- A **room** has ``size`` seats. Its ``token`` is a secret capability (whoever holds it may join a free seat);
  its ``id`` is a short public name for logs and upload directories.
- A **seat** is assigned by the registry in join order. Its ``token`` lets the same participant reclaim it after a
  reload: within ``seat_grace`` seconds of a disconnect, or at once by taking over a connection that is still open.
- A seat is **gone** after an explicit leave or when its grace period ran out; nobody can take it again.
- **Public** rooms are filled first come, first served (FIFO). **Private** rooms are joined only by their token.
- A **session** is a room that became full. With ``max_sessions``, fresh joins are refused (``study-full``) once
  that many rooms have become full; a room closed by a failed latency screening (:meth:`RoomRegistry.close_room`
  with ``uncount``) gives its session back.
- Each page load has a random **page id**. Page ids that were in a room together that failed the latency screening
  are never paired by FIFO again (:meth:`RoomRegistry.avoid`).
- One **participant** id is in at most one page at a time: a fresh join with the id of a seat that is connected
  right now is refused (``duplicate-participant``); taking the same seat back with its seat token is not a second
  tab, and neither is a new join after the old page's connection closed.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Hashable, Iterator
from dataclasses import dataclass, field

__all__ = [
    "JoinRefused",
    "Joined",
    "Left",
    "Expired",
    "Room",
    "RoomRegistry",
    "RoomSettings",
    "Seat",
]

Conn = Hashable


class JoinRefused(Exception):
    """A join was refused; ``code`` is a stable machine-readable reason, the message says it for people."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True)
class RoomSettings:
    """Sizes and lifetimes (seconds) of rooms."""

    size: int = 2
    #: A room with no connected member for this long is removed.
    idle_ttl: float = 120.0
    #: A room is removed this long after its creation, whatever happens in it.
    room_ttl: float = 6 * 3600.0
    #: A disconnected seat can be reclaimed with its token for this long; after that it is gone.
    seat_grace: float = 120.0
    #: Seat tokens of removed rooms still authorise uploads for this long.
    upload_ttl: float = 3600.0
    #: Most rooms alive at once; joins that would create another are refused.
    max_rooms: int = 2000
    #: Most rooms that may ever become full (sessions); ``None`` for no cap. Fresh joins beyond it: ``study-full``.
    max_sessions: int | None = None

    def __post_init__(self) -> None:
        if not 1 <= self.size <= 16:
            raise ValueError(f"room size {self.size} must be between 1 and 16")
        for name in ("idle_ttl", "room_ttl", "seat_grace", "upload_ttl"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be positive")
        if self.max_rooms < 1:
            raise ValueError("max_rooms must be at least 1")
        if self.max_sessions is not None and self.max_sessions < 1:
            raise ValueError("max_sessions must be at least 1")


@dataclass(eq=False)
class Seat:
    """One seat of a room."""

    index: int
    token: str
    participant: str | None = None
    conn: Conn | None = None
    disconnected_at: float | None = None
    gone: bool = False
    relay: bool = False
    #: The random id of the page load that took the seat (``None`` when the page sent none).
    page_id: str | None = None

    @property
    def connected(self) -> bool:
        return self.conn is not None


@dataclass(eq=False)
class Room:
    """A room and its assigned seats (``seats[i].index == i``)."""

    id: str
    token: str
    size: int
    private: bool
    created: float
    seats: list[Seat] = field(default_factory=list)
    empty_since: float | None = None
    paired_at: float | None = None
    relay_forced: bool = False

    @property
    def full(self) -> bool:
        return len(self.seats) >= self.size

    def connected_seats(self) -> list[int]:
        return [s.index for s in self.seats if s.connected]


@dataclass(frozen=True)
class Joined:
    """The outcome of a successful join."""

    room: Room
    seat: Seat
    reclaimed: bool
    #: Set when the room just became full (every seat assigned).
    paired: bool
    #: A connection that held this seat until now (a reload taking over); the caller closes it.
    replaced: Conn | None
    #: Set when this join turned relay on for the room.
    relay_changed: bool


@dataclass(frozen=True)
class Left:
    """A connection left its seat."""

    room: Room
    seat: Seat
    #: ``"disconnected"`` (reclaimable within the grace period) or ``"left"`` (gone for good).
    reason: str


@dataclass(frozen=True)
class Expired:
    """What :meth:`RoomRegistry.expire` did: seats whose grace ran out, rooms removed and their open connections."""

    seats: list[tuple[Room, Seat]]
    rooms: list[tuple[Room, str]]  # (room, "idle" | "ttl")
    close: list[Conn]


class RoomRegistry:
    """Rooms, seats and the connections sitting in them."""

    def __init__(self, settings: RoomSettings | None = None, *, token: Callable[[int], str] = secrets.token_urlsafe):
        self.settings = settings or RoomSettings()
        self._token = token
        self._rooms: dict[str, Room] = {}  # by token
        self._ids: set[str] = set()
        self._public: dict[str, Room] = {}  # rooms still filling, in creation order
        self._seats: dict[str, tuple[Room, Seat]] = {}  # by seat token
        self._conns: dict[Conn, tuple[Room, Seat]] = {}
        self._retired: dict[str, tuple[str, int, float]] = {}  # seat token -> (room id, seat, usable until)
        self._avoid: dict[frozenset[str], float] = {}  # page id pairs FIFO never puts together -> when recorded
        #: Rooms that became full (sessions), minus those closed uncounted.
        self.sessions = 0

    # ------------------------------------------------------------------------------------------------ queries

    def __len__(self) -> int:
        return len(self._rooms)

    def __iter__(self) -> Iterator[Room]:
        return iter(list(self._rooms.values()))

    @property
    def connections(self) -> int:
        return len(self._conns)

    @property
    def waiting(self) -> int:
        """Public rooms that still have a free seat."""
        return len(self._public)

    def seat_of(self, conn: Conn) -> tuple[Room, Seat] | None:
        return self._conns.get(conn)

    def targets(self, conn: Conn, to: int | None = None) -> list[tuple[Seat, Conn]]:
        """The connected seats of ``conn``'s room other than its own (only seat ``to`` when given)."""
        found = self._conns.get(conn)
        if found is None:
            return []
        room, me = found
        return [
            (s, s.conn)
            for s in room.seats
            if s is not me and s.conn is not None and (to is None or s.index == to)
        ]

    @property
    def study_full(self) -> bool:
        """Whether ``max_sessions`` rooms have become full."""
        cap = self.settings.max_sessions
        return cap is not None and self.sessions >= cap

    def unfilled_rooms(self) -> list[Room]:
        """Rooms with at least one seat taken that are not full yet (their members are waiting)."""
        return [room for room in self._rooms.values() if room.seats and not room.full]

    def authorize_upload(self, seat_token: str, now: float) -> tuple[str, int] | None:
        """``(room id, seat)`` for a seat token of a live room, or of a room removed less than ``upload_ttl`` ago."""
        found = self._seats.get(seat_token)
        if found is not None:
            return found[0].id, found[1].index
        retired = self._retired.get(seat_token)
        if retired is not None and now < retired[2]:
            return retired[0], retired[1]
        return None

    # ----------------------------------------------------------------------------------------------- changes

    def create_room(self, now: float, *, private: bool = True) -> Room:
        """A new empty room. Refused with ``server-full`` when ``max_rooms`` rooms are alive."""
        if len(self._rooms) >= self.settings.max_rooms:
            raise JoinRefused("server-full", "the server is at its room limit; try again in a few minutes")
        public_id = secrets.token_hex(4)
        while public_id in self._ids:  # short public ids: rule out collisions
            public_id = secrets.token_hex(4)
        room = Room(
            id=public_id,
            token=self._token(18),
            size=self.settings.size,
            private=private,
            created=now,
            empty_since=now,
        )
        self._ids.add(public_id)
        self._rooms[room.token] = room
        if not private:
            self._public[room.token] = room
        return room

    def join(
        self,
        conn: Conn,
        now: float,
        *,
        room_token: str | None = None,
        seat_token: str | None = None,
        participant: str | None = None,
        relay: bool = False,
        page_id: str | None = None,
    ) -> Joined:
        """Seat ``conn``: reclaim by ``seat_token``, join the room ``room_token``, or the oldest waiting public room.

        Raises :class:`JoinRefused` with code ``already-joined``, ``bad-token``, ``seat-expired``,
        ``unknown-room``, ``room-full``, ``server-full``, ``study-full`` or ``duplicate-participant``.
        """
        if conn in self._conns:
            raise JoinRefused("already-joined", "this connection already has a seat")
        if seat_token:
            return self._reclaim(conn, now, seat_token, room_token, relay, page_id)
        if self.study_full:
            raise JoinRefused("study-full", "this study has all the sessions it needs")
        if participant is not None and self._holds_seat(participant):
            raise JoinRefused(
                "duplicate-participant",
                "this participant already has the study open in another tab or window; continue there",
            )
        if room_token:
            room = self._rooms.get(room_token)
            if room is None:
                raise JoinRefused("unknown-room", "this room link is not valid, or the room has expired")
            if room.full:
                raise JoinRefused("room-full", "this room already has all its participants")
        else:
            room = self._oldest_waiting(page_id) or self.create_room(now, private=False)
        seat = Seat(index=len(room.seats), token=self._token(24), participant=participant, page_id=page_id)
        room.seats.append(seat)
        self._seats[seat.token] = (room, seat)
        paired = room.full
        if paired:
            room.paired_at = now
            self._public.pop(room.token, None)
            self.sessions += 1
        relay_changed = self._occupy(room, seat, conn, relay)
        return Joined(room, seat, reclaimed=False, paired=paired, replaced=None, relay_changed=relay_changed)

    def leave(self, conn: Conn, now: float, *, final: bool = False) -> Left | None:
        """``conn`` is gone. Its seat stays reclaimable for ``seat_grace`` unless ``final`` (an explicit leave)."""
        found = self._conns.pop(conn, None)
        if found is None:
            return None
        room, seat = found
        seat.conn = None
        seat.disconnected_at = now
        if final:
            seat.gone = True
        if not room.connected_seats():
            room.empty_since = now
        return Left(room, seat, "left" if final else "disconnected")

    def avoid(self, room: Room, now: float) -> int:
        """Never pair the page ids of ``room``'s seats with each other again; returns how many pairs were added."""
        ids = sorted({seat.page_id for seat in room.seats if seat.page_id})
        added = 0
        for i, first in enumerate(ids):
            for second in ids[i + 1:]:
                pair = frozenset((first, second))
                added += pair not in self._avoid
                self._avoid[pair] = now
        return added

    def close_room(self, room: Room, now: float, *, uncount: bool = False) -> list[Conn]:
        """Remove ``room`` now; returns its open connections (the caller closes them).

        ``uncount`` gives its session back (a full room that must not count toward ``max_sessions``).
        """
        if room.token not in self._rooms:
            return []
        if uncount and room.full:
            self.sessions -= 1
        conns = [seat.conn for seat in room.seats if seat.conn is not None]
        self._remove(room, now)
        return conns

    def expire(self, now: float) -> Expired:
        """Apply the lifetimes: end seats past their grace, remove idle and over-age rooms, forget old tokens."""
        s = self.settings
        seats: list[tuple[Room, Seat]] = []
        rooms: list[tuple[Room, str]] = []
        close: list[Conn] = []
        for room in list(self._rooms.values()):
            if now - room.created >= s.room_ttl:
                reason = "ttl"
            elif room.empty_since is not None and now - room.empty_since >= s.idle_ttl:
                reason = "idle"
            else:
                for seat in room.seats:
                    if (
                        not seat.gone
                        and not seat.connected
                        and seat.disconnected_at is not None
                        and now - seat.disconnected_at >= s.seat_grace
                    ):
                        seat.gone = True
                        seats.append((room, seat))
                continue
            close.extend(seat.conn for seat in room.seats if seat.conn is not None)
            self._remove(room, now)
            rooms.append((room, reason))
        for token, (_, _, until) in list(self._retired.items()):
            if now >= until:
                del self._retired[token]
        for pair, since in list(self._avoid.items()):  # page ids are per page load: they do not outlive rooms
            if now - since >= s.room_ttl:
                del self._avoid[pair]
        return Expired(seats, rooms, close)

    # --------------------------------------------------------------------------------------------- internals

    def _oldest_waiting(self, page_id: str | None) -> Room | None:
        # A waiting room whose members all dropped out is skipped: nobody would be there to play with. So is one
        # holding a page this page already failed the latency screening with.
        for room in self._public.values():
            if not room.full and room.seats and all(seat.connected for seat in room.seats):
                if page_id and any(
                    seat.page_id and frozenset((page_id, seat.page_id)) in self._avoid for seat in room.seats
                ):
                    continue
                return room
        return None

    def _holds_seat(self, participant: str) -> bool:
        """Whether ``participant`` has a seat open in a page right now (waiting or playing, connected).

        A disconnected seat within its grace does not count: the same person opening the study again in a new tab
        (after a crash, or after their session ended) is not a second tab; their old seat keeps its grace.
        """
        return any(
            seat.participant == participant and seat.connected and not seat.gone
            for room in self._rooms.values() for seat in room.seats
        )

    def _reclaim(
        self, conn: Conn, now: float, seat_token: str, room_token: str | None, relay: bool, page_id: str | None
    ) -> Joined:
        found = self._seats.get(seat_token)
        if found is None:
            if seat_token in self._retired:
                raise JoinRefused("seat-expired", "this room has expired")
            raise JoinRefused("bad-token", "this seat token is not valid")
        room, seat = found
        if room_token and room_token != room.token:
            raise JoinRefused("bad-token", "this seat token does not belong to that room")
        if seat.gone:
            raise JoinRefused("seat-expired", "this seat was given up and cannot be taken again")
        replaced = seat.conn
        if replaced is not None:
            del self._conns[replaced]
        if page_id:
            seat.page_id = page_id
        relay_changed = self._occupy(room, seat, conn, relay)
        return Joined(room, seat, reclaimed=True, paired=False, replaced=replaced, relay_changed=relay_changed)

    def _occupy(self, room: Room, seat: Seat, conn: Conn, relay: bool) -> bool:
        seat.conn = conn
        seat.disconnected_at = None
        room.empty_since = None
        self._conns[conn] = (room, seat)
        seat.relay = seat.relay or relay
        if relay and not room.relay_forced:
            room.relay_forced = True
            return True
        return False

    def _remove(self, room: Room, now: float) -> None:
        del self._rooms[room.token]
        self._ids.discard(room.id)
        self._public.pop(room.token, None)
        until = now + self.settings.upload_ttl
        for seat in room.seats:
            self._seats.pop(seat.token, None)
            self._retired[seat.token] = (room.id, seat.index, until)
            if seat.conn is not None:
                self._conns.pop(seat.conn, None)
                seat.conn = None
