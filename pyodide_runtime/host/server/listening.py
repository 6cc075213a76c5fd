"""Listen on a TCP port until SIGINT or SIGTERM: the loop shared by the study server and the replay server."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

from aiohttp import web

_STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


@asynccontextmanager
async def listening(runner: web.AppRunner, host: str, port: int) -> AsyncIterator[web.TCPSite]:
    """Set ``runner`` up and listen on ``host:port``; on leaving, nothing is cleaned up beyond a failed start.

    The caller owns the shutdown order (the study server drains uploads between stopping the site and cleaning up
    the runner), so only a failed ``site.start()`` (port in use) cleans the runner here before re-raising.
    """
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    try:
        await site.start()
    except OSError:
        await runner.cleanup()
        raise
    yield site


async def wait_for_stop_signal(on_ready: Callable[[], None] | None = None) -> str:
    """Wait for SIGINT or SIGTERM and return its name; ``on_ready`` runs once the handlers are in place."""
    stop = asyncio.Event()
    received: list[str] = []
    loop = asyncio.get_running_loop()

    def on_signal(sig: signal.Signals) -> None:
        received.append(sig.name)
        stop.set()

    for sig in _STOP_SIGNALS:
        loop.add_signal_handler(sig, on_signal, sig)
    try:
        if on_ready is not None:
            on_ready()
        await stop.wait()
    finally:
        for sig in _STOP_SIGNALS:
            loop.remove_signal_handler(sig)
    return received[0]
