"""The sans-IO parts of the server: room registry (with a fake clock), rate limiter, names and paths."""

from __future__ import annotations

import itertools
import json
from contextlib import contextmanager
from pathlib import Path

import pytest

from pyodide_runtime.host.server.limits import TokenBucket
from pyodide_runtime.host.server.rooms import JoinRefused, RoomRegistry, RoomSettings
from pyodide_runtime.host.server.origins import normalise_origin, origin_allowed
from pyodide_runtime.host.server.participants import participant_from
from pyodide_runtime.host.server.settings import ServerSettings
from pyodide_runtime.host.server.study import StudyError, load_study, safe_name

SETTINGS = RoomSettings(size=2, idle_ttl=30, room_ttl=600, seat_grace=10, upload_ttl=100, max_rooms=5)


@contextmanager
def refused(code: str):
    with pytest.raises(JoinRefused) as info:
        yield
    assert info.value.code == code, info.value.code


def test_fifo_pairs_in_arrival_order_and_assigns_seats():
    reg = RoomRegistry(SETTINGS)
    a = reg.join("a", 0.0)
    b = reg.join("b", 1.0)
    c = reg.join("c", 2.0)
    d = reg.join("d", 3.0)
    assert (a.room, a.seat.index, a.paired) == (b.room, 0, False)
    assert (b.seat.index, b.paired) == (1, True)
    assert c.room is d.room and c.room is not a.room
    assert [c.seat.index, d.seat.index] == [0, 1]
    assert reg.waiting == 0 and len(reg) == 2 and reg.connections == 4
    assert a.room.paired_at == 1.0


def test_tokens_are_unguessable_and_distinct():
    reg = RoomRegistry(SETTINGS)
    joins = [reg.join(i, 0.0) for i in range(6)]
    tokens = {j.room.token for j in joins} | {j.seat.token for j in joins}
    assert len(tokens) == 3 + 6
    assert all(len(t) >= 24 for t in tokens)


def test_waiting_room_whose_member_dropped_is_skipped():
    reg = RoomRegistry(SETTINGS)
    a = reg.join("a", 0.0)
    reg.leave("a", 1.0)
    b = reg.join("b", 2.0)
    assert b.room is not a.room and b.seat.index == 0
    # The first participant reloads and gets their seat back; the next newcomer pairs with the oldest room.
    again = reg.join("a2", 3.0, seat_token=a.seat.token)
    assert again.reclaimed and again.room is a.room
    c = reg.join("c", 4.0)
    assert c.room is a.room and c.paired


def test_explicit_room_link_and_third_joiner_refused():
    reg = RoomRegistry(SETTINGS)
    room = reg.create_room(0.0)
    assert room.private
    first = reg.join("a", 1.0, room_token=room.token)
    fifo = reg.join("x", 1.5)  # a private room is never used for FIFO pairing
    assert fifo.room is not room
    second = reg.join("b", 2.0, room_token=room.token)
    assert (first.seat.index, second.seat.index, second.paired) == (0, 1, True)
    with refused("room-full"):
        reg.join("c", 3.0, room_token=room.token)
    with refused("unknown-room"):
        reg.join("d", 3.0, room_token="x" * 24)
    assert reg.seat_of("c") is None and reg.seat_of("d") is None


def test_targets_stay_inside_the_room():
    reg = RoomRegistry(SETTINGS)
    for conn in "abcd":
        reg.join(conn, 0.0)
    assert [(s.index, c) for s, c in reg.targets("a")] == [(1, "b")]
    assert [(s.index, c) for s, c in reg.targets("c", 1)] == [(1, "d")]
    assert reg.targets("a", 0) == []  # not to itself
    assert reg.targets("a", 7) == []
    assert reg.targets("stranger") == []


def test_reclaim_within_grace_and_takeover_of_a_live_connection():
    reg = RoomRegistry(SETTINGS)
    a = reg.join("a", 0.0, participant="P1")
    reg.join("b", 0.0)
    left = reg.leave("a", 5.0)
    assert left is not None and left.reason == "disconnected"
    assert [s.index for s, _ in reg.targets("b")] == []
    back = reg.join("a2", 14.0, seat_token=a.seat.token)
    assert back.reclaimed and back.seat is a.seat and back.replaced is None and back.seat.participant == "P1"
    # A reload whose old socket is still open takes the seat over; the caller closes the old connection.
    again = reg.join("a3", 15.0, seat_token=a.seat.token, room_token=a.room.token)
    assert again.replaced == "a2" and reg.seat_of("a2") is None and reg.seat_of("a3")[1] is a.seat
    assert reg.leave("a2", 16.0) is None  # the replaced connection leaving changes nothing
    with refused("bad-token"):
        reg.join("z", 16.0, seat_token=a.seat.token, room_token="wrong-room-token")
    with refused("bad-token"):
        reg.join("z", 16.0, seat_token="forged-token")
    with refused("already-joined"):
        reg.join("a3", 16.0)


def test_seat_grace_expires_and_explicit_leave_is_final():
    reg = RoomRegistry(SETTINGS)
    a = reg.join("a", 0.0)
    b = reg.join("b", 0.0)
    reg.leave("a", 1.0)
    assert reg.expire(10.9).seats == []
    expired = reg.expire(11.0)
    assert [(r.id, s.index) for r, s in expired.seats] == [(a.room.id, 0)]
    with refused("seat-expired"):
        reg.join("a2", 12.0, seat_token=a.seat.token)
    left = reg.leave("b", 12.0, final=True)
    assert left is not None and left.reason == "left"
    with refused("seat-expired"):
        reg.join("b2", 12.5, seat_token=b.seat.token)


def test_rooms_expire_when_idle_or_too_old():
    reg = RoomRegistry(SETTINGS)
    idle = reg.join("a", 0.0).room
    assert reg.join("c", 0.0).room is idle
    reg.join("e", 0.0)
    other = reg.join("f", 0.0).room
    reg.leave("a", 100.0)
    reg.leave("c", 100.0)
    result = reg.expire(129.9)
    assert result.rooms == []
    result = reg.expire(130.0)
    assert [(r.id, why) for r, why in result.rooms] == [(idle.id, "idle")] and result.close == []
    # Total lifetime: closes the connections still in the room.
    result = reg.expire(600.0)
    assert [(r.id, why) for r, why in result.rooms] == [(other.id, "ttl")]
    assert sorted(result.close) == ["e", "f"]
    assert len(reg) == 0 and reg.connections == 0


def test_unpaired_empty_room_expires_after_idle_ttl():
    reg = RoomRegistry(SETTINGS)
    room = reg.create_room(0.0)
    assert reg.expire(29.0).rooms == []
    assert [r for r, _ in reg.expire(30.0).rooms] == [room]


def test_room_limit_and_upload_authorisation_outlives_the_room():
    reg = RoomRegistry(SETTINGS)
    joins = [reg.join(i, 0.0, room_token=reg.create_room(0.0).token) for i in range(5)]
    with refused("server-full"):
        reg.join("late", 0.0)
    seat = joins[0].seat
    assert reg.authorize_upload(seat.token, 1.0) == (joins[0].room.id, 0)
    assert reg.authorize_upload("nope", 1.0) is None
    for i in range(5):
        reg.leave(i, 1.0)
    reg.expire(31.0)
    assert len(reg) == 0
    assert reg.authorize_upload(seat.token, 100.0) == (joins[0].room.id, 0)
    reg.expire(131.0)
    assert reg.authorize_upload(seat.token, 131.0) is None


def test_relay_request_turns_relay_on_for_the_room_once():
    reg = RoomRegistry(SETTINGS)
    a = reg.join("a", 0.0)
    assert not a.relay_changed and not a.room.relay_forced
    b = reg.join("b", 0.0, relay=True)
    assert b.relay_changed and b.room.relay_forced
    reg.leave("b", 1.0)
    assert not reg.join("b2", 2.0, seat_token=b.seat.token, relay=True).relay_changed


def test_settings_are_checked():
    with pytest.raises(ValueError):
        RoomSettings(size=0)
    with pytest.raises(ValueError):
        RoomSettings(idle_ttl=0)
    with pytest.raises(ValueError):
        ServerSettings(max_message_bytes=10)
    with pytest.raises(ValueError):
        normalise_origin("evil.example")
    assert normalise_origin("HTTPS://Example.org:8443/") == "https://example.org:8443"
    assert ServerSettings(allow_origins=("http://a.example",)).allow_origins == ("http://a.example",)


def test_token_bucket():
    bucket = TokenBucket(rate=10, burst=3, now=0.0)
    assert [bucket.take(0.0) for _ in range(4)] == [True, True, True, False]
    assert not bucket.take(0.05)
    assert bucket.take(0.1)
    assert [bucket.take(100.0) for _ in range(4)] == [True, True, True, False]  # never more than the burst


def test_participant_id_from_recruitment_params():
    assert participant_from({"PROLIFIC_PID": "5f1a2b3c4d5e6f7a8b9c0d1e", "workerId": "W"}) == (
        "5f1a2b3c4d5e6f7a8b9c0d1e", "PROLIFIC_PID")
    assert participant_from({"workerId": "A1B2C3"}) == ("A1B2C3", "workerId")
    assert participant_from({"participant": "<script>alert(1)</script>/../x"}) == ("scriptalert1script..x",
                                                                                    "participant")
    assert participant_from({"participant": "x" * 500})[0] == "x" * 128
    assert participant_from({"participant": "\u00e9\u00e9"}) == (None, None)
    assert participant_from({}) == (None, None)


def test_origin_allowed():
    allowed = ("https://lab.example.org",)
    assert origin_allowed(None, "study.example.org", allowed)
    assert origin_allowed("https://study.example.org", "study.example.org", allowed)
    assert origin_allowed("http://127.0.0.1:8000", "127.0.0.1:8000", ())
    assert origin_allowed("https://LAB.example.org", "study.example.org", allowed)
    assert not origin_allowed("https://lab.example.org.evil.com", "study.example.org", allowed)
    assert not origin_allowed("http://127.0.0.1:8001", "127.0.0.1:8000", ())
    assert not origin_allowed("null", "127.0.0.1:8000", ())
    assert origin_allowed("null", "127.0.0.1:8000", ("*",))


def test_safe_name():
    assert safe_name("../../etc/passwd") == "etc_passwd"
    assert safe_name("a..b.c") == "a_b.c"
    assert safe_name("...") == "_"
    assert safe_name("séance 1") == "s_ance_1"
    assert len(safe_name("a" * 500)) == 64


def test_load_study_reads_the_config(tmp_path: Path):
    cfg = tmp_path / "study.json"
    cfg.write_text(json.dumps({"env_config": {"width": 7}, "session": {"players": 3, "fps": 20}, "title": "T"}))
    study = load_study("pyodide_runtime.examples.coin_chase:make_env", cfg)
    assert (study.id, study.players, study.env_config, study.env_file) == ("coin_chase", 3, {"width": 7}, None)
    assert study.describe()["config"]["title"] == "T"
    for bad, message in [
        ("[1, 2]", "must hold a JSON object"),
        ("{nope", "not valid JSON"),
        ('{"session": {"fsp": 30}}', "fsp"),
        ('{"session": {"fps": 0}}', "fps"),
        ('{"env_config": 3}', "env_config"),
    ]:
        cfg.write_text(bad)
        with pytest.raises(StudyError, match=message):
            load_study("m:f", cfg)
    with pytest.raises(StudyError, match="must look like"):
        load_study("no_colon_here")
    with pytest.raises(StudyError, match="not found"):
        load_study(str(tmp_path / "missing.py") + ":make_env")


def test_room_ids_are_unique():
    reg = RoomRegistry(RoomSettings(max_rooms=500))
    ids = {reg.create_room(0.0).id for _ in itertools.repeat(None, 500)}
    assert len(ids) == 500


def test_avoided_page_ids_sessions_and_second_tabs_without_sockets():
    reg = RoomRegistry(RoomSettings(size=3, seat_grace=10, max_sessions=1))
    joins = [reg.join(name, 0.0, page_id=f"page-{name}-xyz", participant=name) for name in "abc"]
    room = joins[0].room
    assert joins[2].paired and reg.sessions == 1 and reg.study_full
    with refused("study-full"):
        reg.join("d", 1.0, page_id="page-d-xyz")
    assert reg.avoid(room, 1.0) == 3 and reg.avoid(room, 1.0) == 0  # every pair once
    assert sorted(reg.close_room(room, 1.0, uncount=True)) == ["a", "b", "c"]
    assert reg.sessions == 0 and not reg.study_full and len(reg) == 0 and reg.close_room(room, 1.0) == []
    # a, b and c requeue: none of them shares a room with another; a fourth page joins the oldest.
    again = [reg.join(f"{name}2", 2.0, page_id=f"page-{name}-xyz", participant=name) for name in "abc"]
    assert len({j.room.id for j in again}) == 3
    d = reg.join("d", 3.0, page_id="page-d-xyz")
    assert d.room is again[0].room and d.seat.index == 1
    with refused("duplicate-participant"):
        reg.join("a3", 4.0, participant="a")
    assert reg.join("a4", 4.0, seat_token=again[0].seat.token).reclaimed  # its own seat: not a second tab
    # The pairs are forgotten with the rooms' lifetime.
    reg.expire(4.0 + reg.settings.room_ttl)
    assert reg._avoid == {}
