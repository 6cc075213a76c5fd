"""Support for server tests: a small asset directory, the server as a real process or in this process (with a fake
clock), and a WebSocket client."""

from __future__ import annotations

import asyncio
import hashlib
import io
import json
import signal
import socket
import subprocess
import sys
import tarfile
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp.test_utils import TestClient, TestServer

from pyodide_runtime.host.assets import open_assets
from pyodide_runtime.host.headless import launch_server
from pyodide_runtime.host.server.app import HUB, create_app
from pyodide_runtime.host.server.eventlog import EventLog
from pyodide_runtime.host.server.rooms import RoomSettings
from pyodide_runtime.host.server.settings import ServerSettings
from pyodide_runtime.host.server.signaling import Hub
from pyodide_runtime.host.server.study import load_study
from pyodide_runtime.host.web import js_bridge_dir, static_dir

REPO = Path(__file__).resolve().parent.parent
COIN_CHASE = "pyodide_runtime.examples.coin_chase:make_env"
COIN_CHASE_FILE = f"{REPO / 'pyodide_runtime' / 'examples' / 'coin_chase.py'}:make_env"

#: Stand-ins for the Pyodide files: the server checks them against the manifest like real ones.
FAKE_ASSETS = {
    "pyodide.mjs": b"export async function loadPyodide() {}\n",
    "pyodide.asm.wasm": b"\x00asm\x01\x00\x00\x00",
    "pyodide-lock.json": b'{"info": {}, "packages": {}}\n',
    "pyodide_runtime-0.1.0-py3-none-any.whl": b"PK\x05\x06" + b"\x00" * 18,
}


def make_assets(root: Path) -> Path:
    """Write a complete, hash-consistent asset directory (a manifest and the files it lists) under ``root``."""
    root.mkdir(parents=True, exist_ok=True)
    files = {}
    for name, data in FAKE_ASSETS.items():
        (root / name).write_bytes(data)
        files[name] = {"sha256": hashlib.sha256(data).hexdigest(), "source": "test"}
    (root / "not-listed.txt").write_text("a file the manifest does not list\n")
    manifest = {"files": files, "lock": "pyodide-lock.json", "own_wheel": "pyodide_runtime-0.1.0-py3-none-any.whl",
                "pyodide_version": "0.27.7"}
    (root / "manifest.json").write_text(json.dumps(manifest))
    return root


class ServerProcess:
    """``python -m pyodide_runtime.host.server`` on a free port (``--port 0``), its stderr logged to a file."""

    def __init__(self, workdir: Path, args: Sequence[str], *, env_spec: str = COIN_CHASE, assets: Path | None = None):
        self.workdir = workdir
        workdir.mkdir(parents=True, exist_ok=True)
        self.assets = assets or make_assets(workdir / "assets")
        self.log_path = workdir / "server.log"
        self.argv = [sys.executable, "-m", "pyodide_runtime.host.server", "--env", env_spec, "--port", "0",
                     "--assets", str(self.assets), *args]
        self.proc: subprocess.Popen[str] | None = None
        self.url = ""

    def start(self, timeout: float = 30.0) -> "ServerProcess":
        self._log = self.log_path.open("w")
        self.proc, self.url = launch_server(self.argv, self.workdir, self._log, self.log_path, timeout)
        return self

    @property
    def ws_url(self) -> str:
        return self.url.replace("http://", "ws://") + "/ws"

    @property
    def port(self) -> int:
        return int(self.url.rsplit(":", 1)[1])

    def events(self, name: str | None = None) -> list[dict[str, Any]]:
        lines = [json.loads(line) for line in self.log_path.read_text().splitlines() if line.startswith("{")]
        return [e for e in lines if name is None or e["event"] == name]

    def terminate(self, sig: int = signal.SIGTERM, timeout: float = 10.0) -> int:
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait()
            if self.proc.stdout:
                self.proc.stdout.close()
            self._log.close()

    def __enter__(self) -> "ServerProcess":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.terminate()


def run_server_command(args: Sequence[str], timeout: float = 60.0) -> subprocess.CompletedProcess[str]:
    """Run the server entry point to completion (for start-up failures)."""
    return subprocess.run([sys.executable, "-m", "pyodide_runtime.host.server", *args], capture_output=True, text=True,
                          timeout=timeout)


def raw_get(port: int, target: str) -> tuple[int, bytes]:
    """A GET with the request target sent exactly as given (no client-side path normalisation)."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(f"GET {target} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n".encode())
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    status = int(data.split(b" ", 2)[1])
    return status, data.split(b"\r\n\r\n", 1)[1]


class Client:
    """A test participant: one WebSocket to ``/ws``."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws = ws

    @classmethod
    async def connect(cls, session: aiohttp.ClientSession, url: str, **kwargs: Any) -> "Client":
        return cls(await session.ws_connect(url, autoclose=False, **kwargs))

    async def send(self, **message: Any) -> None:
        await self.ws.send_str(json.dumps(message))

    async def receive(self, timeout: float = 5.0) -> aiohttp.WSMessage:
        return await self.ws.receive(timeout)

    async def expect(self, kind: str, timeout: float = 5.0) -> dict[str, Any]:
        """The next control message, which must be of type ``kind``."""
        msg = await self.receive(timeout)
        assert msg.type == aiohttp.WSMsgType.TEXT, f"expected {kind!r}, got {msg.type} {msg.data!r} {msg.extra!r}"
        data = json.loads(msg.data)
        assert data["type"] == kind, f"expected {kind!r}, got {data}"
        return data

    async def expect_bytes(self, timeout: float = 5.0) -> bytes:
        msg = await self.receive(timeout)
        assert msg.type == aiohttp.WSMsgType.BINARY, f"expected bytes, got {msg.type} {msg.data!r}"
        return msg.data

    async def expect_close(self, timeout: float = 5.0) -> tuple[int | None, str]:
        """Read until the server closes; returns (close code, reason). Other messages are skipped."""
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            msg = await self.receive(max(0.01, deadline - asyncio.get_running_loop().time()))
            if msg.type == aiohttp.WSMsgType.CLOSE:
                await self.ws.close()
                return msg.data, msg.extra or ""
            if msg.type in (aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.ERROR):
                return self.ws.close_code, ""

    async def silent(self, seconds: float = 0.3) -> bool:
        """True when nothing arrives for ``seconds``."""
        try:
            msg = await self.receive(seconds)
        except asyncio.TimeoutError:
            return True
        raise AssertionError(f"unexpected message {msg.type} {msg.data!r}")

    async def join(self, **fields: Any) -> dict[str, Any]:
        await self.send(type="join", **fields)
        return await self.expect("joined")

    async def close(self) -> None:
        await self.ws.close()


class Clock:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@dataclass
class Served:
    """A server served in this process, its hub, clock and log."""

    client: TestClient
    hub: Hub
    clock: Clock
    log: io.StringIO

    async def connect(self) -> Client:
        return Client(await self.client.ws_connect("/ws", autoclose=False))

    def events(self, name: str) -> list[dict[str, Any]]:
        return [e for e in map(json.loads, self.log.getvalue().splitlines()) if e["event"] == name]

    async def logged(self, name: str, count: int) -> None:
        """Wait until ``count`` events ``name`` were logged (a message sent has been handled)."""
        while len(self.events(name)) < count:
            await asyncio.sleep(0.01)

    async def expire(self, seconds: float) -> None:
        self.clock.now += seconds
        await self.hub.expire()


@asynccontextmanager
async def served(tmp_path: Path, **settings: Any) -> AsyncIterator[Served]:
    """The server in this process (``create_app`` behind aiohttp's test server) with a fake clock and a log to read.

    ``settings`` are :class:`ServerSettings` fields; ``rooms`` defaults to two seats and a 30 s seat grace.
    """
    rooms = settings.pop("rooms", RoomSettings(size=2, seat_grace=30))
    clock = Clock()
    stream = io.StringIO()
    assets = open_assets(make_assets(tmp_path / "assets"), verify=True)
    app = create_app(load_study(COIN_CHASE, None, "pilot"), assets, ServerSettings(rooms=rooms, **settings),
                     static=static_dir(), js_bridge=js_bridge_dir(), log=EventLog(stream), clock=clock)
    async with TestClient(TestServer(app)) as client:
        yield Served(client, app[HUB], clock, stream)


def run_node_module(script: str, *args: str) -> dict[str, Any]:
    """Run ``script`` as an ES module under Node from the repository root; the JSON its last output line holds."""
    import shutil

    import pytest

    node = shutil.which("node")
    if not node:
        pytest.fail("node is not installed; the page's JavaScript tests need it")
    proc = subprocess.run([node, "--input-type=module", "-e", script, *args], cwd=REPO, capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


def npm_tarball(files: dict[str, bytes]) -> bytes:
    """A gzipped tarball laid out as npm packs one: every file under ``package/``."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(f"package/{name}")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()
