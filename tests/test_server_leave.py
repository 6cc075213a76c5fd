"""An explicit ``leave`` frees the seat for good and the room hears ``peer-left: left`` at once; a socket that
merely drops keeps its seat for the grace period (``peer-left: disconnected``) and can take it back."""

from __future__ import annotations

import asyncio
import json

import aiohttp
import pytest
from server_support import COIN_CHASE_FILE, Client, ServerProcess

SEAT_GRACE = 30  # long enough that no grace runs out during a test


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory):
    work = tmp_path_factory.mktemp("server-leave")
    (work / "study.json").write_text(json.dumps({"session": {"players": 2}}))
    with ServerProcess(work, ["--config", "study.json", "--seat-grace", str(SEAT_GRACE)],
                       env_spec=COIN_CHASE_FILE) as proc:
        yield proc


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, 30))


async def pair(session: aiohttp.ClientSession, server: ServerProcess):
    async with session.post(server.url + "/rooms") as resp:
        room = (await resp.json())["room"]
    a, b = await Client.connect(session, server.ws_url), await Client.connect(session, server.ws_url)
    ja, jb = await a.join(room=room), await b.join(room=room)
    await a.expect("peer-joined")
    return a, b, ja, jb


def abort(client: Client) -> None:
    """Drop the TCP connection without a close handshake, as a page being unloaded may."""
    client.ws._conn.transport.abort()


def test_leave_frees_the_seat_and_tells_the_partner_at_once(server: ServerProcess):
    async def scenario():
        async with aiohttp.ClientSession() as s:
            a, b, ja, _ = await pair(s, server)
            await a.send(type="leave")
            # "At once": well before the grace period a dropped seat is held for (a deadline, not a timing).
            left = await b.expect("peer-left", timeout=SEAT_GRACE / 2)
            assert (left["seat"], left["reason"]) == (0, "left")
            assert (await a.expect_close())[0] == 1000
            again = await Client.connect(s, server.ws_url)
            await again.send(type="join", seat_token=ja["seat_token"])
            assert (await again.expect("error"))["code"] == "seat-expired"
            assert await b.silent(0.3), "the partner hears about the leave once"
            await b.close()

    run(scenario())
    leaves = [e for e in server.events("leave") if e.get("reason") == "left"]
    assert leaves and leaves[-1]["seat"] == 0 and leaves[-1]["close_code"] == 1000


def test_leave_then_an_abrupt_drop_still_counts_as_left(server: ServerProcess):
    async def scenario():
        async with aiohttp.ClientSession() as s:
            a, b, ja, _ = await pair(s, server)
            await a.send(type="leave")
            abort(a)  # gone before any close handshake
            left = await b.expect("peer-left")
            assert (left["seat"], left["reason"]) == (0, "left")
            assert await b.silent(0.5), "no second notice when the socket finally goes"
            again = await Client.connect(s, server.ws_url)
            await again.send(type="join", seat_token=ja["seat_token"])
            assert (await again.expect("error"))["code"] == "seat-expired"
            await b.close()

    run(scenario())


def test_a_dropped_socket_keeps_its_seat_for_the_grace_period(server: ServerProcess):
    async def scenario():
        async with aiohttp.ClientSession() as s:
            a, b, ja, _ = await pair(s, server)
            abort(a)  # a crash or a network drop: no leave
            left = await b.expect("peer-left")
            assert (left["seat"], left["reason"]) == (0, "disconnected")
            back = await Client.connect(s, server.ws_url)
            joined = await back.join(seat_token=ja["seat_token"])
            assert (joined["seat"], joined["reclaimed"]) == (0, True)
            assert (await b.expect("peer-joined"))["reclaimed"] is True
            # A socket closed cleanly without leave is a drop too (a frozen tab's socket on resume).
            await back.close()
            assert (await b.expect("peer-left"))["reason"] == "disconnected"
            await b.close()

    run(scenario())


def test_leave_before_joining_is_refused_and_changes_nothing(server: ServerProcess):
    async def scenario():
        async with aiohttp.ClientSession() as s:
            a, b, _, _ = await pair(s, server)
            stranger = await Client.connect(s, server.ws_url)
            await stranger.send(type="leave")
            assert (await stranger.expect("error"))["code"] == "not-joined"
            assert await a.silent(0.3) and await b.silent(0.1)
            await a.send(type="signal", to=1, data="still here")
            assert (await b.expect("signal"))["data"] == "still here"
            for c in (a, b, stranger):
                await c.close()

    run(scenario())
