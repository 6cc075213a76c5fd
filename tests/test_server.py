"""The server as a real process: files, study.json, health, rooms, signaling, relay, limits, origins, uploads."""

from __future__ import annotations

import asyncio
import hashlib
import json

import aiohttp
import pytest

from server_support import COIN_CHASE_FILE, FAKE_ASSETS, REPO, Client, ServerProcess, raw_get

MAX_MESSAGE = 4096
STUDY_CONFIG = {"env_config": {"width": 8}, "session": {"players": 2, "fps": 20, "input_delay": 3}, "title": "T1"}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory):
    work = tmp_path_factory.mktemp("server")
    (work / "study.json").write_text(json.dumps(STUDY_CONFIG))
    args = [
        "--config", "study.json", "--data-dir", "data", "--study-id", "pilot/1",
        "--max-message-kb", str(MAX_MESSAGE / 1024), "--rate", "50", "--burst", "20", "--rate-drop-limit", "200",
        "--allow-origin", "https://lab.example.org", "--max-upload-mb", "0.01",
    ]
    with ServerProcess(work, args, env_spec=COIN_CHASE_FILE) as proc:
        yield proc


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, 30))


async def pair(session: aiohttp.ClientSession, server: ServerProcess, **join):
    """Two clients joined into one room by an explicit room link (isolated from other tests' FIFO traffic)."""
    async with session.post(server.url + "/rooms") as resp:
        assert resp.status == 201
        room = (await resp.json())["room"]
    a = await Client.connect(session, server.ws_url)
    b = await Client.connect(session, server.ws_url)
    ja = await a.join(room=room, **join)
    jb = await b.join(room=room)
    await a.expect("peer-joined")
    return a, b, ja, jb


# ------------------------------------------------------------------------------------------------------ HTTP


def test_page_bridge_and_assets_with_types_and_headers(server: ServerProcess):
    async def scenario():
        async with aiohttp.ClientSession() as s:
            async with s.get(server.url + "/check.html") as r:
                assert r.status == 200 and r.content_type == "text/html"
                csp = r.headers["Content-Security-Policy"]
                assert "'wasm-unsafe-eval'" in csp and "worker-src 'self'" in csp and "'unsafe-eval'" not in csp
                assert f"ws://127.0.0.1:{server.port}" in csp and "script-src 'self' 'wasm-unsafe-eval';" in csp
                assert r.headers["X-Content-Type-Options"] == "nosniff"
                assert r.headers["Referrer-Policy"] == "no-referrer"
                assert (await r.read()) == (REPO / "static" / "check.html").read_bytes()
            async with s.get(server.url + "/js_bridge/loader.mjs") as r:
                assert r.status == 200 and r.headers["Content-Type"].startswith("text/javascript")
                assert (await r.read()) == (REPO / "js_bridge" / "loader.mjs").read_bytes()
            async with s.get(server.url + "/assets/pyodide.asm.wasm") as r:
                assert r.status == 200 and r.headers["Content-Type"] == "application/wasm"
                assert r.headers["Cache-Control"] == "no-cache"
                assert (await r.read()) == FAKE_ASSETS["pyodide.asm.wasm"]
            async with s.get(server.url + "/study.json") as r:
                assets_url = (await r.json())["assets_url"]
            async with s.get(server.url + assets_url + "pyodide.mjs") as r:
                assert r.status == 200 and r.headers["Content-Type"].startswith("text/javascript")
                assert "immutable" in r.headers["Cache-Control"]
            async with s.get(server.url + "/assets/0000000000000000/pyodide.mjs") as r:
                assert r.status == 404  # an outdated asset version is never served as immutable
            async with s.get(server.url + "/assets/not-listed.txt") as r:
                assert r.status == 404  # only files the manifest lists
            async with s.get(server.url + "/") as r:
                assert r.status in (200, 404)  # the page itself ships separately; never a directory listing
                if r.status == 404:
                    assert "index.html" in await r.text()

    run(scenario())


@pytest.mark.parametrize("target", [
    "/js_bridge/../pyproject.toml",
    "/js_bridge/%2e%2e/pyproject.toml",
    "/js_bridge/..%2fpyproject.toml",
    "/assets/..%2f..%2fetc%2fpasswd",
    "/%2e%2e/pyproject.toml",
    "/study/../pyproject.toml",
    "/study/%2e%2e%2fserver.log",
    "/..%5c..%5cpyproject.toml",
    "/.git/config",
])
def test_no_path_traversal(server: ServerProcess, target: str):
    status, body = raw_get(server.port, target)
    assert status in (400, 404), (status, body[:200])
    assert b"[project]" not in body and b"root:" not in body


def test_study_json_and_env_file(server: ServerProcess):
    async def scenario():
        async with aiohttp.ClientSession() as s:
            async with s.get(server.url + "/study.json") as r:
                assert r.status == 200 and r.headers["Cache-Control"] == "no-store"
                study = await r.json()
            source = (REPO / "pyodide_runtime" / "examples" / "coin_chase.py").read_bytes()
            assert study["study"] == "pilot_1"
            assert study["config"] == STUDY_CONFIG and study["players"] == 2
            assert (study["env"]["spec"], study["env"]["function"]) == ("coin_chase.py:make_env", "make_env")
            assert study["env"]["file"] == {"url": "/study/coin_chase.py", "name": "coin_chase.py",
                                            "sha256": hashlib.sha256(source).hexdigest()}
            assert study["ws_url"] == "/ws" and study["bridge_url"] == "/js_bridge/"
            assert study["upload"]["enabled"] is True and study["relay"] == {"forced": False}
            assert study["limits"]["max_message_bytes"] == MAX_MESSAGE
            async with s.get(server.url + study["env"]["file"]["url"]) as r:
                assert r.status == 200 and r.headers["Content-Type"].startswith("text/x-python")
                assert await r.read() == source
            async with s.get(server.url + "/study/other.py") as r:
                assert r.status == 404

    run(scenario())


def test_health(server: ServerProcess):
    async def scenario():
        async with aiohttp.ClientSession() as s:
            async with s.get(server.url + "/healthz") as r:
                before = await r.json()
            assert before["ok"] is True and before["uptime"] > 0
            client = await Client.connect(s, server.ws_url)
            await client.join(room="new")
            async with s.get(server.url + "/healthz") as r:
                during = await r.json()
            assert during["connections"] == before["connections"] + 1
            assert during["rooms"] == before["rooms"] + 1
            await client.close()

    run(scenario())


# ----------------------------------------------------------------------------------------------------- rooms


def test_fifo_pairing_into_one_room_with_seats_0_and_1(server: ServerProcess):
    async def scenario():
        async with aiohttp.ClientSession() as s:
            a = await Client.connect(s, server.ws_url + "?PROLIFIC_PID=5f1a2b3c&STUDY_ID=s1")
            ja = await a.join()
            b = await Client.connect(s, server.ws_url)
            jb = await b.join(participant="worker<7>")
            assert ja["room"] == jb["room"] and (ja["seat"], jb["seat"]) == (0, 1)
            assert ja["peers"] == [] and jb["peers"] == [0] and ja["players"] == 2
            assert ja["seat_token"] != jb["seat_token"] and len(ja["seat_token"]) >= 24
            assert (ja["participant"], ja["participant_source"]) == ("5f1a2b3c", "PROLIFIC_PID")
            assert jb["participant"] == "worker7"
            assert (await a.expect("peer-joined"))["seat"] == 1
            c = await Client.connect(s, server.ws_url)
            jc = await c.join()
            assert jc["room"] != ja["room"] and jc["seat"] == 0
            for client in (a, b, c):
                await client.close()
        pairs = [e for e in server.events("pair")]
        assert pairs, "a pair event is logged"
        assert all("5f1a2b3c" not in json.dumps(e) for e in server.events())  # participant ids are not logged

    run(scenario())


def test_explicit_room_link_and_third_joiner_refused(server: ServerProcess):
    async def scenario():
        async with aiohttp.ClientSession() as s:
            a = await Client.connect(s, server.ws_url)
            ja = await a.join(room="new")
            b = await Client.connect(s, server.ws_url + f"?room={ja['room']}")
            jb = await b.join()  # the room link's query string is enough
            assert jb["room"] == ja["room"] and jb["seat"] == 1
            third = await Client.connect(s, server.ws_url)
            await third.send(type="join", room=ja["room"])
            error = await third.expect("error")
            assert error["code"] == "room-full"
            assert (await third.expect_close())[0] == 4003
            stranger = await Client.connect(s, server.ws_url)
            await stranger.send(type="join", room="A" * 24)
            assert (await stranger.expect("error"))["code"] == "unknown-room"
            bad = await Client.connect(s, server.ws_url)
            await bad.send(type="join", room="../../etc")
            assert (await bad.expect("error"))["code"] == "unknown-room"
            assert await a.expect("peer-joined")
            assert await a.silent(0.2)  # refused joiners are never announced
            for client in (a, b):
                await client.close()

    run(scenario())


def test_seat_reclaim_after_reload(server: ServerProcess):
    async def scenario():
        async with aiohttp.ClientSession() as s:
            a, b, ja, jb = await pair(s, server, participant="P-A")
            await a.close()  # the tab reloads
            left = await b.expect("peer-left")
            assert (left["seat"], left["reason"]) == (0, "disconnected")
            a2 = await Client.connect(s, server.ws_url)
            again = await a2.join(seat_token=ja["seat_token"])
            assert (again["room"], again["seat"], again["reclaimed"]) == (ja["room"], 0, True)
            assert again["participant"] == "P-A" and again["peers"] == [1]
            rejoined = await b.expect("peer-joined")
            assert (rejoined["seat"], rejoined["reclaimed"]) == (0, True)
            # A reload that reconnects before the old socket closed takes the seat over.
            a3 = await Client.connect(s, server.ws_url)
            await a3.join(seat_token=ja["seat_token"])
            assert (await a2.expect_close())[0] == 4000
            await b.expect("peer-joined")
            await a3.send(type="signal", to=1, data="after takeover")
            assert (await b.expect("signal"))["data"] == "after takeover"
            forged = await Client.connect(s, server.ws_url)
            await forged.send(type="join", seat_token="x" * 32)
            assert (await forged.expect("error"))["code"] == "bad-token"
            # An explicit leave gives the seat up for good.
            await a3.send(type="leave")
            assert (await a3.expect_close())[0] == 1000
            assert (await b.expect("peer-left"))["reason"] == "left"
            again = await Client.connect(s, server.ws_url)
            await again.send(type="join", seat_token=ja["seat_token"])
            assert (await again.expect("error"))["code"] == "seat-expired"
            await b.close()

    run(scenario())


# ------------------------------------------------------------------------------------------ signaling, relay


def test_signaling_relay_stamps_the_sender_seat(server: ServerProcess):
    async def scenario():
        async with aiohttp.ClientSession() as s:
            a, b, _, _ = await pair(s, server)
            offer = {"sdp": "v=0 o=- 1 2 IN IP4 127.0.0.1", "type": "offer"}
            await a.send(type="signal", to=1, data=offer, **{"from": 1, "seat": 1})
            got = await b.expect("signal")
            assert got == {"type": "signal", "from": 0, "data": offer}
            await b.send(type="signal", to=0, data={"candidate": "candidate:1 1 udp 1 127.0.0.1 9 typ host"})
            back = await a.expect("signal")
            assert back["from"] == 1 and back["data"]["candidate"].startswith("candidate:1")
            await a.send(type="signal", to=0, data="to myself")
            assert (await a.expect("error"))["code"] == "bad-target"
            await a.send(type="signal", to="1", data="x")
            assert (await a.expect("error"))["code"] == "bad-target"
            await a.send(type="ping", t=12.5)
            assert (await a.expect("pong"))["t"] == 12.5
            await a.ws.send_str("not json")
            assert (await a.expect("error"))["code"] == "bad-json"
            await a.ws.send_str("[" * (MAX_MESSAGE - 10))  # nesting deep enough to exhaust a recursive parser
            assert (await a.expect("error"))["code"] == "bad-json"
            await a.send(type="signal", to=1, data="still connected")
            assert (await b.expect("signal"))["data"] == "still connected"
            assert await b.silent(0.2)
            for client in (a, b):
                await client.close()

    run(scenario())


def test_binary_relay_both_directions_with_server_stamped_seat(server: ServerProcess):
    async def scenario():
        async with aiohttp.ClientSession() as s:
            a, b, _, _ = await pair(s, server)
            await a.ws.send_bytes(bytes([1]) + b"\x01frame-from-0")
            assert await b.expect_bytes() == bytes([0]) + b"\x01frame-from-0"
            await b.ws.send_bytes(bytes([0xFF]) + b"frame-from-1")  # broadcast
            assert await a.expect_bytes() == bytes([1]) + b"frame-from-1"
            # Seat 0 claims to be seat 1 inside its payload: the server's stamp still says 0.
            await a.ws.send_bytes(bytes([0xFF, 1]) + b"spoof")
            assert await b.expect_bytes() == bytes([0, 1]) + b"spoof"
            await a.ws.send_bytes(bytes([0]) + b"to myself")  # not delivered anywhere
            await a.ws.send_bytes(bytes([9]) + b"no such seat")
            assert await a.silent(0.2) and await b.silent(0.1)
            for client in (a, b):
                await client.close()
        await asyncio.sleep(0.2)
        counters = [(e["relay_frames_in"], e["relay_frames_out"], e["dropped_no_peer"]) for e in server.events("leave")]
        assert (4, 2, 2) in counters  # seat 0's relay stats are logged when it leaves

    run(scenario())


def test_rooms_are_isolated(server: ServerProcess):
    async def scenario():
        async with aiohttp.ClientSession() as s:
            a1, b1, j1, _ = await pair(s, server)
            a2, b2, j2, _ = await pair(s, server)
            assert j1["room"] != j2["room"]
            # Room A's seat 0 relays and signals with every kind of address; only its own partner hears it.
            await a1.ws.send_bytes(bytes([0xFF]) + b"A-broadcast")
            for seat in (0, 1, 2, 255 - 1):
                await a1.ws.send_bytes(bytes([seat]) + b"A-direct")
            await a1.send(type="signal", to=1, data="A", room=j2["room"], seat_token=j2["seat_token"])
            await a1.send(type="join", room=j2["room"])  # a second join is refused, the first seat is kept
            assert await b1.expect_bytes() == b"\x00A-broadcast"
            assert await b1.expect_bytes() == b"\x00A-direct"
            assert (await b1.expect("signal"))["data"] == "A"
            assert (await a1.expect("error"))["code"] == "already-joined"
            assert await a2.silent(0.3) and await b2.silent(0.1)
            # Not joined at all: nothing is relayed.
            outsider = await Client.connect(s, server.ws_url)
            await outsider.ws.send_bytes(bytes([0xFF]) + b"outsider")
            assert (await outsider.expect("error"))["code"] == "not-joined"
            await outsider.send(type="signal", to=0, data="outsider")
            assert (await outsider.expect("error"))["code"] == "not-joined"
            assert await a1.silent(0.2) and await a2.silent(0.1)
            for client in (a1, b1, a2, b2, outsider):
                await client.close()

    run(scenario())


def test_forced_relay_is_reported(server: ServerProcess):
    async def scenario():
        async with aiohttp.ClientSession() as s:
            a = await Client.connect(s, server.ws_url)
            ja = await a.join(room="new")
            assert ja["relay"] is False
            b = await Client.connect(s, server.ws_url + f"?room={ja['room']}&relay=1")
            jb = await b.join()
            assert jb["relay"] is True
            assert (await a.expect("peer-joined"))["relay"] is True
            for client in (a, b):
                await client.close()

    run(scenario())


# ------------------------------------------------------------------------------------------------------ limits


def test_oversized_message_closes_with_1009(server: ServerProcess):
    async def scenario():
        async with aiohttp.ClientSession() as s:
            a, b, _, _ = await pair(s, server)
            await a.ws.send_bytes(bytes([1]) + b"x" * (MAX_MESSAGE - 100))  # under the limit: relayed
            assert len(await b.expect_bytes()) == 1 + MAX_MESSAGE - 100
            await a.ws.send_bytes(bytes([1]) + b"x" * (MAX_MESSAGE + 10))
            assert (await a.expect_close())[0] == 1009
            assert (await b.expect("peer-left"))["seat"] == 0
            await b.close()

    run(scenario())


def test_rate_limit_drops_and_counts_then_closes_with_1008(server: ServerProcess):
    async def scenario():
        async with aiohttp.ClientSession() as s:
            a, b, _, _ = await pair(s, server)
            for i in range(100):
                await a.ws.send_bytes(bytes([1, i]))
            received = []
            while True:
                try:
                    received.append(await b.expect_bytes(timeout=0.5))
                except asyncio.TimeoutError:
                    break
            assert 15 <= len(received) < 100  # what is left of the burst of 20, plus refill at 50/s; the rest dropped
            assert [r[1] for r in received] == sorted(r[1] for r in received)
            notice = await a.expect("error")
            assert notice["code"] == "rate-limited"
            for i in range(400):
                if a.ws.closed:
                    break
                await a.ws.send_bytes(bytes([1, 0]))
            code, reason = await a.expect_close()
            assert code == 1008 and "rate" in reason
            await b.close()
        await asyncio.sleep(0.2)
        assert any(e.get("reason") == "rate limit" and e["dropped_rate"] == 200 for e in server.events("leave"))

    run(scenario())


def test_origin_check(server: ServerProcess):
    async def scenario():
        async with aiohttp.ClientSession() as s:
            with pytest.raises(aiohttp.WSServerHandshakeError) as info:
                await s.ws_connect(server.ws_url, headers={"Origin": "https://evil.example"})
            assert info.value.status == 403
            async with s.post(server.url + "/rooms", headers={"Origin": "https://evil.example"}) as r:
                assert r.status == 403
            same = await Client.connect(s, server.ws_url, headers={"Origin": server.url})
            allowed = await Client.connect(s, server.ws_url, headers={"Origin": "https://lab.example.org"})
            for client in (same, allowed):
                await client.send(type="ping")
                await client.expect("pong")
                await client.close()
        assert any(e.get("code") == "origin" for e in server.events("refuse"))

    run(scenario())


# ------------------------------------------------------------------------------------------------------ upload


def test_upload_verified_by_hash_stored_once(server: ServerProcess):
    data_dir = server.workdir / "data"
    bundle = b"PK\x03\x04" + bytes(range(256)) * 8
    digest = hashlib.sha256(bundle).hexdigest()

    async def scenario():
        async with aiohttp.ClientSession() as s:
            a, b, ja, jb = await pair(s, server)
            url = server.url + "/upload"
            params = {"sha256": digest, "seat_token": ja["seat_token"], "session": "../../sess 1",
                      "participant": "../../P1", "seat": "0", "study": "pilot_1"}
            async with s.post(url, params={**params, "sha256": "0" * 64}, data=bundle) as r:
                assert r.status == 400
                assert "sha256 mismatch" in await r.text()
            assert not list((data_dir / "pilot_1").rglob("*.zip")) if (data_dir / "pilot_1").exists() else True
            async with s.post(url, params=params, data=bundle) as r:
                assert r.status == 201, await r.text()
                stored = await r.json()
            assert stored["path"] == f"pilot_1/sess_1/seat0/final-{digest[:16]}.zip" and stored["duplicate"] is False
            assert (data_dir / stored["path"]).read_bytes() == bundle
            async with s.post(url, params=params, data=bundle) as r:  # same bytes again: idempotent
                assert r.status == 200 and (await r.json())["duplicate"] is True
            other = bundle + b"more"
            async with s.post(url, params={**params, "sha256": hashlib.sha256(other).hexdigest()}, data=other) as r:
                assert r.status == 201
                assert (await r.json())["path"] != stored["path"]
            # Authorisation: a seat token is required and decides the seat.
            async with s.post(url, params={**params, "seat_token": "forged" * 5}, data=bundle) as r:
                assert r.status == 403
            async with s.post(url, params={**params, "seat": "1"}, data=bundle) as r:
                assert r.status == 403
            headers = {"X-Bundle-Sha256": digest, "X-Seat-Token": jb["seat_token"], "X-Session": "sess 1"}
            async with s.post(url, headers=headers, data=bundle) as r:
                assert r.status == 201 and (await r.json())["path"].startswith("pilot_1/sess_1/seat1/final-")
            async with s.post(url, params={**params, "study": "another"}, data=bundle) as r:
                assert r.status == 400
            big = b"x" * (11 * 1024)
            async with s.post(url, params={**params, "sha256": hashlib.sha256(big).hexdigest()}, data=big) as r:
                assert r.status == 413

            async def chunked():  # no Content-Length: the limit is enforced while streaming
                for _ in range(11):
                    yield b"x" * 1024

            async with s.post(url, params={**params, "sha256": hashlib.sha256(big).hexdigest()}, data=chunked()) as r:
                assert r.status == 413
            async with s.get(url) as r:
                assert r.status == 405
            for client in (a, b):
                await client.close()

    run(scenario())
    files = sorted(p.relative_to(data_dir).as_posix() for p in data_dir.rglob("*") if p.is_file())
    assert files == sorted(files) and [f for f in files if f.endswith("uploads.jsonl")] == [
        "pilot_1/sess_1/seat0/uploads.jsonl", "pilot_1/sess_1/seat1/uploads.jsonl"]
    bundles = [f for f in files if not f.endswith("uploads.jsonl")]
    assert len(bundles) == 3 and all(f.startswith("pilot_1/sess_1/seat") for f in bundles), files
    assert not any("P1" in f for f in files)
    assert [e["ok"] for e in server.events("upload")].count(True) == 4
