"""Pairing rules of the study flow, in-process with a fake clock: page ids, latency screening (``rtt`` in,
``screened`` out, the screening bound, no re-pairing after a failed screening), second-tab refusal and the
session cap."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from pyodide_runtime.host.cli import build_parser
from pyodide_runtime.host.server.page_config import CLOSE_CODES, page_config
from pyodide_runtime.host.server.rooms import RoomSettings
from pyodide_runtime.host.server.settings import ServerSettings
from pyodide_runtime.host.server.start import smallest, waiting_scene
from server_support import Client, Served, served

SCREENED = CLOSE_CODES["screened"].code
REFUSED = CLOSE_CODES["refused"].code
PAGE = {name: f"page-{name}-0123456789" for name in "ABCDEFGH"}


def run(coro) -> None:
    asyncio.run(asyncio.wait_for(coro, 30))


async def join_pair(s: Served, first: str, second: str, **join: Any) -> tuple[Client, Client, dict, dict]:
    a, b = await s.connect(), await s.connect()
    ja = await a.join(page_id=PAGE[first], **join)
    jb = await b.join(page_id=PAGE[second])
    await a.expect("peer-joined")
    assert ja["room"] == jb["room"]
    return a, b, ja, jb


# ------------------------------------------------------------------------------------------------------- page id


def test_page_id_is_kept_on_the_seat_and_never_logged(tmp_path: Path):
    async def scenario():
        async with served(tmp_path) as s:
            a = await s.connect()
            joined = await a.join(page_id=PAGE["A"], participant="P-secret")
            room, seat = s.hub.registry.seat_of(next(iter(s.hub.connections)))
            assert seat.page_id == PAGE["A"] and joined["seat"] == 0
            for bad in ("short", "x" * 65, "no spaces here", 12345678):
                c = await s.connect()
                await c.send(type="join", page_id=bad)
                error = await c.expect("error")
                assert error["code"] == "bad-page-id" and "page_id" in error["message"]
                assert (await c.expect_close())[0] == REFUSED
            assert s.events("join")[0]["page_id_given"] is True
            assert PAGE["A"] not in s.log.getvalue() and "P-secret" not in s.log.getvalue()
            await a.close()

    run(scenario())


# ---------------------------------------------------------------------------------------------------- screening


def test_screening_passes_when_every_report_is_within_the_bound(tmp_path: Path):
    async def scenario():
        async with served(tmp_path, max_rtt_ms=100) as s:
            early = await s.connect()
            await early.join(page_id=PAGE["H"], room="new")
            await early.send(type="rtt", rtt_ms=10)  # the room is not full yet: nothing to screen
            assert (await early.expect("error"))["code"] == "not-paired"
            a, b, _, _ = await join_pair(s, "A", "B")
            await a.send(type="rtt", rtt_ms=40)
            assert await b.silent(0.2), "no verdict before every seat reported"
            await b.send(type="rtt", rtt_ms=60.5)
            for client in (a, b):
                assert await client.expect("screened") == {"type": "screened", "ok": True, "rtt_ms": 60.5,
                                                           "max_rtt_ms": 100}
            await a.send(type="rtt", rtt_ms=999)  # after the verdict: the verdict again, never a new one
            assert (await a.expect("screened"))["ok"] is True
            assert len(s.hub.registry) == 2 and s.hub.registry.sessions == 1
            await a.ws.send_bytes(bytes([1, 7, 7]))  # the room goes on as before
            assert await b.expect_bytes() == bytes([0, 7, 7])
            [event] = s.events("screened")
            assert (event["ok"], event["rtt_ms"], event["measured"], event["missing"]) == (True, 60.5, 2, 0)
            for bad in (-1, "fast", True, float("nan")):
                await b.send(type="rtt", rtt_ms=bad)
                assert (await b.expect("error"))["code"] == "bad-message"
            for client in (a, b, early):
                await client.close()

    run(scenario())


def test_failed_screening_closes_the_room_and_those_pages_never_meet_again(tmp_path: Path):
    async def scenario():
        async with served(tmp_path, max_rtt_ms=100, max_sessions=1) as s:
            a, b, _, _ = await join_pair(s, "A", "B", participant="P-one")
            await a.send(type="rtt", rtt_ms=40)
            await b.send(type="rtt", rtt_ms=250)
            for client in (a, b):
                verdict = await client.expect("screened")
                assert verdict == {"type": "screened", "ok": False, "rtt_ms": 250, "max_rtt_ms": 100}
                code, reason = await client.expect_close()
                assert code == SCREENED and CLOSE_CODES["screened"].final
            # The room is gone and its session does not count toward the cap (max_sessions=1).
            assert len(s.hub.registry) == 0 and s.hub.registry.sessions == 0
            # Both pages requeue with fresh joins (same page ids): they are not paired together again.
            a2, b2 = await s.connect(), await s.connect()
            ja = await a2.join(page_id=PAGE["A"], participant="P-one")  # not a second tab: the old seat is gone
            jb = await b2.join(page_id=PAGE["B"])
            assert ja["room"] != jb["room"] and ja["seat"] == jb["seat"] == 0
            assert await a2.silent(0.2)
            # A third page pairs with the one waiting longest.
            c = await s.connect()
            jc = await c.join(page_id=PAGE["C"])
            assert (jc["room"], jc["seat"]) == (ja["room"], 1)
            assert (await a2.expect("peer-joined"))["seat"] == 1
            assert s.hub.registry.sessions == 1
            [event] = s.events("screened")
            assert (event["ok"], event["avoided_pairs"], event["sessions"]) == (False, 1, 0)
            leaves = [e for e in s.events("leave") if e.get("close_code") == SCREENED]
            assert sorted(e["seat"] for e in leaves) == [0, 1]
            text = s.log.getvalue()
            assert not any(p in text for p in PAGE.values()) and "P-one" not in text
            for client in (a2, b2, c):
                await client.close()

    run(scenario())


def test_screening_decides_on_what_came_when_the_bound_runs_out(tmp_path: Path):
    async def scenario():
        async with served(tmp_path, max_rtt_ms=100) as s:
            assert s.hub.settings.screening_timeout == 15.0
            # One page reports, the other never does: a missing report is not a failure.
            a, b, _, _ = await join_pair(s, "A", "B")
            await a.send(type="rtt", rtt_ms=30)
            await s.logged("rtt", 1)
            await s.expire(14.5)
            assert await a.silent(0.2) and await b.silent(0.01)
            await s.expire(0.5)
            for client in (a, b):
                assert await client.expect("screened") == {"type": "screened", "ok": True, "rtt_ms": 30,
                                                           "max_rtt_ms": 100}
            [event] = s.events("screened")
            assert (event["timed_out"], event["missing"], event["measured"]) == (True, 1, 1)
            # A page that could not measure (rtt_ms null) counts as reported, and decides nothing.
            c, d, _, _ = await join_pair(s, "C", "D")
            await c.send(type="rtt", rtt_ms=None)
            await d.send(type="rtt", rtt_ms=None)
            assert (await c.expect("screened"))["ok"] is True
            # One report over the bound when the time runs out: the room fails.
            e, f, _, _ = await join_pair(s, "E", "F")
            await e.send(type="rtt", rtt_ms=300)
            await s.logged("rtt", 4)
            await s.expire(15)
            for client in (e, f):
                assert (await client.expect("screened"))["ok"] is False
                assert (await client.expect_close())[0] == SCREENED
            for client in (a, b, c, d):
                await client.close()

    run(scenario())


def test_rtt_without_screening_is_answered_at_once_to_the_sender(tmp_path: Path):
    async def scenario():
        async with served(tmp_path) as s:
            assert (await (await s.client.get("/study.json")).json())["screening"]["max_rtt_ms"] is None
            a, b, _, _ = await join_pair(s, "A", "B")
            await a.send(type="rtt", rtt_ms=900)
            assert await a.expect("screened") == {"type": "screened", "ok": True, "rtt_ms": 900, "max_rtt_ms": None}
            assert await b.silent(0.2)
            assert s.events("screened") == [] and len(s.hub.registry) == 1
            for client in (a, b):
                await client.close()

    run(scenario())


def test_screening_settings_are_served_and_checked(tmp_path: Path):
    async def scenario():
        async with served(tmp_path, max_rtt_ms=120, screening_timeout=9) as s:
            study = await (await s.client.get("/study.json")).json()
            assert study["screening"] == {"max_rtt_ms": 120, "timeout_s": 9}

    run(scenario())
    with pytest.raises(ValueError, match="max_rtt_ms"):
        ServerSettings(max_rtt_ms=0)
    with pytest.raises(ValueError, match="screening_timeout"):
        ServerSettings(screening_timeout=0)
    assert "screened" in page_config()["close_codes"] and SCREENED in page_config()["final_close_codes"]


# --------------------------------------------------------------------------------------------------- second tab


def test_a_second_tab_of_the_same_participant_is_refused_but_a_reload_reclaims(tmp_path: Path):
    async def scenario():
        async with served(tmp_path) as s:
            a = await s.connect()
            ja = await a.join(participant="P1", page_id=PAGE["A"])
            for params in ({"participant": "P1"}, {"params": {"PROLIFIC_PID": "P1"}}):
                tab = await s.connect()
                await tab.send(type="join", **params)
                error = await tab.expect("error")
                assert error["code"] == "duplicate-participant" and "another tab" in error["message"]
                assert (await tab.expect_close())[0] == REFUSED
            other = await s.connect()  # another participant pairs as usual
            assert (await other.join(participant="P2"))["room"] == ja["room"]
            # A reload takes the seat back with its token: not a second tab.
            reload = await s.connect()
            again = await reload.join(seat_token=ja["seat_token"], participant="P1", page_id=PAGE["B"])
            assert again["reclaimed"] is True and again["seat"] == ja["seat"]
            assert (await a.expect_close())[0] == CLOSE_CODES["replaced"].code
            assert (await other.expect("peer-joined"))["reclaimed"] is True
            # Its page closed (within the grace period, the seat is still held for a reload): opening the study
            # again in a new tab is not a second tab, it joins; the old seat keeps its grace.
            await reload.close()
            await other.expect("peer-left")
            fresh = await s.connect()
            assert (await fresh.join(participant="P1"))["room"] != ja["room"]
            # ... and while that new page is open, another tab of the same participant is refused again.
            second = await s.connect()
            await second.send(type="join", participant="P1")
            assert (await second.expect("error"))["code"] == "duplicate-participant"
            assert [e["code"] for e in s.events("refuse")].count("duplicate-participant") == 3
            assert "P1" not in s.log.getvalue()
            for client in (other, fresh):
                await client.close()

    run(scenario())


# -------------------------------------------------------------------------------------------------- session cap


def test_the_session_cap_refuses_pairings_beyond_it_and_dismisses_those_waiting(tmp_path: Path):
    async def scenario():
        async with served(tmp_path, max_sessions=2) as s:
            first = await join_pair(s, "A", "B")
            waiting = await s.connect()
            await waiting.join(room="new")  # a private room still waiting for its partner
            second = await join_pair(s, "C", "D")
            assert s.hub.registry.sessions == 2 and s.hub.registry.study_full
            error = await waiting.expect("error")
            assert (error["code"], error["message"]) == ("study-full", "this study has all the sessions it needs")
            assert (await waiting.expect_close())[0] == REFUSED
            late = await s.connect()
            await late.send(type="join", page_id=PAGE["E"])
            assert (await late.expect("error"))["code"] == "study-full"
            assert (await late.expect_close())[0] == REFUSED
            # The sessions under way go on: a reload still takes its seat back.
            reload = await s.connect()
            assert (await reload.join(seat_token=first[2]["seat_token"]))["reclaimed"] is True
            assert s.events("study-full")[0] == {**s.events("study-full")[0], "sessions": 2, "dismissed": 1}
            assert [e["sessions"] for e in s.events("pair")] == [1, 2]
            for client in (*first[:2], *second[:2], reload):
                await client.close()

    run(scenario())


def test_the_smaller_session_cap_applies():
    settings = ServerSettings(rooms=RoomSettings(max_sessions=3), max_sessions=5)
    assert (settings.max_sessions, settings.rooms.max_sessions) == (3, 3)
    settings = ServerSettings(max_sessions=4)
    assert (settings.max_sessions, settings.rooms.max_sessions) == (4, 4)
    assert ServerSettings().rooms.max_sessions is None
    with pytest.raises(ValueError, match="max_sessions"):
        ServerSettings(max_sessions=0)


def test_serve_options_and_the_waiting_scene():
    args = build_parser().parse_args(["serve", "--env", "m:f", "--max-sessions", "12", "--max-rtt-ms", "150"])
    assert (args.max_sessions, args.max_rtt_ms) == (12, 150.0)
    defaults = build_parser().parse_args(["serve", "--env", "m:f"])
    assert (defaults.max_sessions, defaults.max_rtt_ms) == (None, None)
    config = {"scenes": [{"kind": "consent"}, {"kind": "waiting", "max_rtt_ms": 90, "max_sessions": 40},
                         {"kind": "game"}]}
    scene = waiting_scene(config)
    assert smallest(args.max_rtt_ms, scene.get("max_rtt_ms")) == 90
    assert smallest(args.max_sessions, scene.get("max_sessions")) == 12
    assert waiting_scene({}) == {} and smallest(None, None) is None
