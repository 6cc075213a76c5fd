"""Server start-up failures, room expiry, uploads switched off, and graceful shutdown, each on its own process."""

from __future__ import annotations

import asyncio
import hashlib
import json
import signal
import socket
from pathlib import Path

import aiohttp

from server_support import COIN_CHASE, Client, ServerProcess, make_assets, run_server_command


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, 30))


def test_missing_assets_fail_at_start_up(tmp_path: Path):
    result = run_server_command(["--env", COIN_CHASE, "--assets", str(tmp_path / "nowhere"), "--port", "0"])
    assert result.returncode == 2
    assert f"no Pyodide assets in {tmp_path / 'nowhere'}" in result.stderr
    assert "pyodide-runtime assets fetch" in result.stderr
    assert "Traceback" not in result.stderr and "Study URL" not in result.stdout


def test_tampered_assets_fail_at_start_up(tmp_path: Path):
    assets = make_assets(tmp_path / "assets")
    (assets / "pyodide.asm.wasm").write_bytes(b"\x00asm tampered")
    result = run_server_command(["--env", COIN_CHASE, "--assets", str(assets), "--port", "0"])
    assert result.returncode == 2 and "pyodide.asm.wasm changed since it was fetched" in result.stderr


def test_bad_env_and_bad_config_fail_at_start_up(tmp_path: Path):
    assets = str(make_assets(tmp_path / "assets"))
    result = run_server_command(["--env", "no_such_package.envs:make", "--assets", assets, "--port", "0"])
    assert result.returncode == 2
    assert "cannot load env 'no_such_package.envs:make'" in result.stderr and "no_such_package" in result.stderr
    result = run_server_command(["--env", "pyodide_runtime.examples.coin_chase:no_such_factory",
                                 "--assets", assets, "--port", "0"])
    assert result.returncode == 2 and "no_such_factory" in result.stderr
    config = tmp_path / "study.json"
    config.write_text('{"session": {"players": "two"}}')
    result = run_server_command(["--env", COIN_CHASE, "--config", str(config), "--assets", assets, "--port", "0"])
    assert result.returncode == 2 and "session.players" in result.stderr
    result = run_server_command(["--env", COIN_CHASE, "--assets", assets, "--allow-origin", "evil", "--port", "0"])
    assert result.returncode == 2 and "origin 'evil'" in result.stderr


def test_port_in_use_is_a_clear_error(tmp_path: Path):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = run_server_command(["--env", COIN_CHASE, "--assets", str(make_assets(tmp_path / "a")),
                                     "--port", str(port)])
    assert result.returncode == 2 and f"cannot listen on 127.0.0.1:{port}" in result.stderr


def test_rooms_expire_uploads_off_and_relay_forced(tmp_path: Path):
    args = ["--force-relay", "--room-ttl", "1.5", "--seat-grace", "0.5", "--join-timeout", "0.5",
            "--ice-server", "stun:stun.example.org"]
    server = ServerProcess(tmp_path, args).start()
    try:

        async def scenario():
            async with aiohttp.ClientSession() as s:
                async with s.get(server.url + "/study.json") as r:
                    study = await r.json()
                assert study["relay"] == {"forced": True} and study["upload"]["enabled"] is False
                assert study["ice_servers"] == [{"urls": "stun:stun.example.org"}]
                async with s.post(server.url + "/upload", params={"sha256": "0" * 64}, data=b"x") as r:
                    assert r.status == 404 and "--data-dir" in await r.text()
                idle = await Client.connect(s, server.ws_url)  # never joins
                a = await Client.connect(s, server.ws_url)
                b = await Client.connect(s, server.ws_url)
                ja = await a.join()
                jb = await b.join()
                assert ja["relay"] is True and jb["relay"] is True and ja["room"] == jb["room"]
                await a.expect("peer-joined")
                await b.close()
                assert (await a.expect("peer-left"))["reason"] == "disconnected"
                gone = await a.expect("peer-left", timeout=3)  # the seat's grace period ran out
                assert (gone["seat"], gone["reason"]) == (1, "expired")
                assert await idle.expect_close() == (1008, "no join in time")
                late = await Client.connect(s, server.ws_url)
                await late.send(type="join", seat_token=jb["seat_token"])
                assert (await late.expect("error"))["code"] == "seat-expired"
                code, reason = await a.expect_close(timeout=3)  # the room's lifetime ran out
                assert (code, reason) == (4001, "room expired")
                async with s.get(server.url + "/healthz") as r:
                    assert (await r.json())["rooms"] == 0

        run(scenario())
    finally:
        assert server.terminate(signal.SIGINT) == 0
    assert [e["reason"] for e in server.events("expire")] == ["ttl"]
    assert server.events("stop")[0]["signal"] == "SIGINT"


def test_graceful_shutdown_closes_sockets_with_1001_and_finishes_uploads(tmp_path: Path):
    # A shutdown timeout far longer than the wait below: exiting within that wait shows the server stopped as soon
    # as the upload in flight was done, without timing the shutdown itself.
    server = ServerProcess(tmp_path, ["--data-dir", "data", "--shutdown-timeout", "120"]).start()
    bundle = b"PK\x03\x04" + b"bundle bytes " * 2000
    digest = hashlib.sha256(bundle).hexdigest()
    try:

        async def scenario():
            async with aiohttp.ClientSession() as s:
                a = await Client.connect(s, server.ws_url)
                b = await Client.connect(s, server.ws_url)
                ja = await a.join()
                await b.join()
                started, release = asyncio.Event(), asyncio.Event()

                async def body():
                    yield bundle[:1000]
                    started.set()
                    await release.wait()
                    yield bundle[1000:]

                async def upload():
                    params = {"sha256": digest, "seat_token": ja["seat_token"]}
                    async with s.post(server.url + "/upload", params=params, data=body()) as r:
                        return r.status, await r.json()

                pending = asyncio.ensure_future(upload())
                await started.wait()
                await asyncio.sleep(0.2)  # the request is in the server's hands
                server.proc.send_signal(signal.SIGTERM)
                codes = await asyncio.gather(a.expect_close(), b.expect_close())
                assert [c for c, _ in codes] == [1001, 1001]
                assert all(reason == "server shutting down" for _, reason in codes)
                release.set()
                status, stored = await pending
                assert status == 201 and stored["sha256"] == digest
                return stored

        stored = run(scenario())
        assert server.proc.wait(60) == 0
    finally:
        server.terminate()
    assert (tmp_path / "data" / stored["path"]).read_bytes() == bundle
    assert server.events("stop")[0]["signal"] == "SIGTERM"
    leaves = server.events("leave")
    assert len(leaves) == 2 and {e["reason"] for e in leaves} == {"server shutdown"}
    assert json.loads(json.dumps(server.events("start")[0]))["study"] == "coin_chase"
