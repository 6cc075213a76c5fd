"""Load: many concurrent rooms doing signaling and relay traffic against a real server process (``bench load``).

The server runs as its own process on loopback. Client worker processes each open their share of the rooms: two
WebSocket clients per room join a private room, exchange a WebRTC-style signaling round (offer, answer, ICE
candidates) through the server, then both send relay frames to each other at ``rate`` messages per second for
``duration`` seconds. Every frame carries its send time (``CLOCK_MONOTONIC``, shared by all processes on one
machine), so the receiver measures the one-way time through the server. Reported: relay latency percentiles,
messages sent, received and dropped, errors, and the server process's CPU and memory read from ``/proc``.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import multiprocessing
import os
import struct
import sys
import tempfile
import time
from array import array
from pathlib import Path
from typing import Any

__all__ = ["run_load", "percentiles"]

_FRAME = struct.Struct("!IIIQ")  # room, sender seat, seq, send time (ns)
_PAD = bytes(24)  # a typical input packet is about 25-40 bytes


def percentiles(values: array | list[float], points: tuple[float, ...] = (50, 95, 99)) -> dict[str, float | None]:
    """Nearest-rank percentiles and the maximum, in the values' unit (None when empty)."""
    if not values:
        return {**{f"p{p:g}": None for p in points}, "max": None}
    ordered = sorted(values)
    out = {f"p{p:g}": round(ordered[min(len(ordered) - 1, int(len(ordered) * p / 100))], 3) for p in points}
    out["max"] = round(ordered[-1], 3)
    return out


# -- the server process ---------------------------------------------------------------------------------------
def _stand_in_assets(root: Path) -> Path:
    """A hash-consistent asset directory (the server checks the manifest; load clients never fetch assets)."""
    files = {"pyodide.mjs": b"export async function loadPyodide() {}\n", "pyodide-lock.json": b"{}\n"}
    root.mkdir(parents=True, exist_ok=True)
    for name, data in files.items():
        (root / name).write_bytes(data)
    manifest = {"files": {n: {"sha256": hashlib.sha256(d).hexdigest(), "source": "load"} for n, d in files.items()},
                "lock": "pyodide-lock.json", "own_wheel": None, "pyodide_version": "0.27.7"}
    (root / "manifest.json").write_text(json.dumps(manifest))
    return root


class _ProcStats:
    """CPU seconds and RSS of one process, from ``/proc/<pid>``."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.ticks = os.sysconf("SC_CLK_TCK")
        self.page = os.sysconf("SC_PAGE_SIZE")

    def cpu_seconds(self) -> float:
        with open(f"/proc/{self.pid}/stat") as handle:
            fields = handle.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / self.ticks  # utime + stime

    def rss_bytes(self) -> int:
        with open(f"/proc/{self.pid}/statm") as handle:
            return int(handle.read().split()[1]) * self.page


# -- the clients ----------------------------------------------------------------------------------------------
async def _room(http: Any, base: str, room_no: int, rate: float, start_at: float, stop_at: float,
                result: dict[str, Any]) -> None:
    import aiohttp

    ws_url = base.replace("http://", "ws://") + "/ws"
    async with http.post(base + "/rooms") as resp:
        if resp.status != 201:
            result["errors"].append(f"room {room_no}: POST /rooms {resp.status}")
            return
        token = (await resp.json())["room"]
    sockets = [await http.ws_connect(ws_url, heartbeat=None, max_msg_size=0) for _ in range(2)]
    for seat, ws in enumerate(sockets):
        await ws.send_str(json.dumps({"type": "join", "room": token}))
        joined = json.loads((await ws.receive(10)).data)
        if joined.get("type") != "joined" or joined.get("seat") != seat:
            result["errors"].append(f"room {room_no}: join answered {joined}")
            return
    t0 = time.monotonic()
    await sockets[0].receive(10)  # peer-joined
    # A signaling round: offer, answer and two ICE candidates each way, as a WebRTC handshake does.
    for sender, receiver, kind in ((0, 1, "offer"), (1, 0, "answer"), (0, 1, "ice"), (1, 0, "ice"),
                                   (0, 1, "ice"), (1, 0, "ice")):
        await sockets[sender].send_str(json.dumps({"type": "signal", "to": receiver, "data": {"kind": kind,
                                                                                               "sdp": "x" * 300}}))
        msg = json.loads((await sockets[receiver].receive(10)).data)
        if msg.get("type") != "signal" or msg.get("from") != sender:
            result["errors"].append(f"room {room_no}: signal answered {msg}")
            return
        result["signals"] += 1
    result["signaling_ms"].append((time.monotonic() - t0) * 1000)
    sent = [0, 0]

    async def sender(seat: int) -> None:
        ws, period = sockets[seat], 1.0 / rate
        await asyncio.sleep(max(0.0, start_at - time.monotonic()) + seat * period / 2 + (room_no % 50) * period / 50)
        nxt = time.monotonic()
        while nxt < stop_at:
            now_ns = time.monotonic_ns()
            result["send_lag_ms"].append(max(0.0, now_ns / 1e6 - nxt * 1000))  # how late the client itself is
            frame = bytes((1 - seat,)) + _FRAME.pack(room_no, seat, sent[seat], now_ns) + _PAD
            try:
                await ws.send_bytes(frame)
            except (ConnectionError, RuntimeError) as exc:
                result["errors"].append(f"room {room_no} seat {seat}: send failed: {exc}")
                return
            sent[seat] += 1
            nxt += period
            await asyncio.sleep(max(0.0, nxt - time.monotonic()))

    async def receiver(seat: int) -> None:
        ws, expected = sockets[seat], 0
        while True:
            msg = await ws.receive()
            if msg.type == aiohttp.WSMsgType.BINARY:
                now = time.monotonic_ns()
                _, from_seat, seq, sent_ns = _FRAME.unpack_from(msg.data, 1)
                result["latency_ms"].append((now - sent_ns) / 1e6)
                result["received"] += 1
                if seq != expected:
                    result["out_of_order"] += 1
                expected = seq + 1
            elif msg.type == aiohttp.WSMsgType.TEXT:
                data = json.loads(msg.data)
                if data.get("type") == "error":  # (peer-left when the other client closes first is expected)
                    result["errors"].append(f"room {room_no} seat {seat}: {data.get('code')}: {data.get('message')}")
            else:
                return

    receivers = [asyncio.ensure_future(receiver(s)) for s in (0, 1)]
    await asyncio.gather(sender(0), sender(1))
    result["sent"] += sum(sent)
    await asyncio.sleep(max(0.0, stop_at + 2.0 - time.monotonic()))  # frames in flight arrive
    for ws in sockets:
        await ws.close()
    for task in receivers:
        task.cancel()
    closed = [ws.close_code for ws in sockets]
    if any(code not in (1000, None) for code in closed):
        result["errors"].append(f"room {room_no}: close codes {closed}")


async def _worker_main(base: str, rooms: list[int], rate: float, start_at: float, stop_at: float) -> dict[str, Any]:
    import aiohttp

    result: dict[str, Any] = {"sent": 0, "received": 0, "out_of_order": 0, "signals": 0, "errors": [],
                              "latency_ms": array("f"), "signaling_ms": array("f"), "send_lag_ms": array("f")}
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector) as http:
        tasks = []
        for i, room_no in enumerate(rooms):
            tasks.append(asyncio.ensure_future(_room(http, base, room_no, rate, start_at, stop_at, result)))
            if i % 20 == 19:
                await asyncio.sleep(0.05)  # open rooms in waves, as participants arrive
        outcomes = await asyncio.gather(*tasks, return_exceptions=True)
    for room_no, outcome in zip(rooms, outcomes):
        if isinstance(outcome, BaseException):
            result["errors"].append(f"room {room_no}: {type(outcome).__name__}: {outcome}")
    cpu = os.times()
    result["client_cpu_seconds"] = cpu.user + cpu.system
    return result


def _worker(args: tuple[str, list[int], float, float, float]) -> dict[str, Any]:
    return asyncio.run(_worker_main(*args))


# -- the benchmark --------------------------------------------------------------------------------------------
def run_load(rooms: int = 200, rate: float = 30.0, duration: float = 120.0, workers: int = 2,
             server_args: tuple[str, ...] = ()) -> dict[str, Any]:
    """Run the load and return every figure (see the module docstring)."""
    from pyodide_runtime.host.headless import launch_server

    work = Path(tempfile.mkdtemp(prefix="pyodide-runtime-load-"))
    assets = _stand_in_assets(work / "assets")
    log_path = work / "server.log"
    argv = [sys.executable, "-m", "pyodide_runtime", "serve", "--env",
            "pyodide_runtime.examples.coin_chase:make_env", "--port", "0", "--assets", str(assets),
            "--max-rooms", str(max(2000, rooms * 2)), "--max-connections", str(max(4000, rooms * 4)), *server_args]
    with log_path.open("w") as log:
        proc, url = launch_server(argv, work, log, log_path, timeout=60)
        try:
            stats = _ProcStats(proc.pid)
            workers = max(1, min(workers, rooms))
            share = [list(range(w, rooms, workers)) for w in range(workers)]
            setup = 3.0 + rooms * 0.03
            start_at = time.monotonic() + setup
            stop_at = start_at + duration
            rss_start = stats.rss_bytes()
            samples: list[tuple[float, float, int]] = []
            ctx = multiprocessing.get_context("spawn")
            with ctx.Pool(workers) as pool:
                pending = pool.map_async(_worker, [(url, s, rate, start_at, stop_at) for s in share])
                while time.monotonic() < start_at:
                    time.sleep(0.1)
                cpu0, t0 = stats.cpu_seconds(), time.monotonic()
                while not pending.ready():
                    pending.wait(1.0)
                    if time.monotonic() <= stop_at:
                        samples.append((time.monotonic(), stats.cpu_seconds(), stats.rss_bytes()))
                results = pending.get()
            active = [s for s in samples if s[0] <= stop_at]
            cpu1, t1 = (active[-1][1], active[-1][0]) if active else (stats.cpu_seconds(), time.monotonic())
            load_avg = os.getloadavg()
        finally:
            proc.terminate()
            proc.wait(15)
            if proc.stdout:
                proc.stdout.close()
    latency: array = array("f")
    signaling: array = array("f")
    send_lag: array = array("f")
    totals = {"sent": 0, "received": 0, "out_of_order": 0, "signals": 0, "client_cpu_seconds": 0.0}
    errors: list[str] = []
    for r in results:
        latency.extend(r["latency_ms"])
        signaling.extend(r["signaling_ms"])
        send_lag.extend(r["send_lag_ms"])
        errors.extend(r["errors"])
        for key in totals:
            totals[key] += r[key]
    rss = [s[2] for s in samples] or [rss_start]
    return {
        "suite": "load", "rooms": rooms, "clients": 2 * rooms, "rate_per_client": rate, "duration_s": duration,
        "client_processes": workers, "cpus": os.cpu_count(), "load_average_at_end": [round(x, 2) for x in load_avg],
        "messages_sent": totals["sent"], "messages_received": totals["received"],
        "messages_dropped": totals["sent"] - totals["received"], "out_of_order": totals["out_of_order"],
        "relay_messages_per_s": round(totals["received"] / duration), "signals_relayed": totals["signals"],
        "relay_latency_ms": percentiles(latency), "signaling_round_ms": percentiles(signaling),
        # How late the load clients themselves sent (CPU shared with the server): part of the latency above.
        "client_send_lag_ms": percentiles(send_lag),
        "server_cpu_percent_of_one_core": round(100 * (cpu1 - cpu0) / max(1e-9, t1 - t0), 1),
        "server_rss_bytes": {"start": rss_start, "peak": max(rss), "end": rss[-1]},
        "client_cpu_seconds": round(totals["client_cpu_seconds"], 1),
        "errors": len(errors), "error_samples": errors[:20],
    }


def add_parser(sub: Any) -> None:
    """``bench load``: the parser, for :mod:`pyodide_runtime.host.commands.bench`."""
    p = sub.add_parser("load", help="many rooms of signaling and relay traffic against a real server process")
    p.add_argument("--rooms", type=int, default=200, help="concurrent rooms, 2 clients each (default %(default)s)")
    p.add_argument("--rate", type=float, default=30.0, help="relay messages per second per client (default %(default)s)")
    p.add_argument("--duration", type=float, default=120.0, help="seconds of relay traffic (default %(default)s)")
    p.add_argument("--workers", type=int, default=2, help="client processes (default %(default)s)")
    p.add_argument("--json", type=Path, metavar="FILE", help="also write the results as JSON")
    p.set_defaults(bench_run=run_cli)


def run_cli(args: Any) -> int:
    """Run ``bench load``; exit 1 if messages were dropped or errors occurred."""
    from pyodide_runtime.host.cli import CommandError

    if args.rooms < 1 or args.rate <= 0 or args.duration <= 0 or args.workers < 1:
        raise CommandError("--rooms, --rate, --duration and --workers must be positive")
    print(f"bench load: {args.rooms} rooms ({2 * args.rooms} clients) at {args.rate:g} msg/s each for "
          f"{args.duration:g} s…", file=sys.stderr)
    r = run_load(args.rooms, args.rate, args.duration, args.workers)
    lat = r["relay_latency_ms"]
    print(f"{r['messages_received']:,} of {r['messages_sent']:,} relay messages delivered "
          f"({r['relay_messages_per_s']:,}/s), dropped {r['messages_dropped']}, errors {r['errors']}")
    print(f"relay latency ms: p50 {lat['p50']}, p95 {lat['p95']}, p99 {lat['p99']}, max {lat['max']}; server CPU "
          f"{r['server_cpu_percent_of_one_core']}% of one core, RSS peak {r['server_rss_bytes']['peak'] / 2**20:.0f} MiB")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(r, indent=1))
        print(f"wrote {args.json}", file=sys.stderr)
    return 0 if r["messages_dropped"] == 0 and r["errors"] == 0 else 1
