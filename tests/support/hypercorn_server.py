"""Run an ASGI app under hypercorn (HTTP/1.1 and h2c) on a free loopback port, in a thread."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from hypercorn.asyncio import serve
from hypercorn.config import Config

from .capture import free_port


@contextmanager
def hypercorn_server(app: Any) -> Iterator[int]:
    """Serve ``app`` while the block runs; yields the port once it accepts connections."""
    port = free_port()
    config = Config()
    config.bind = [f"127.0.0.1:{port}"]
    config.accesslog = None
    config.errorlog = None
    loop = asyncio.new_event_loop()
    stop = asyncio.Event()
    ready = threading.Event()

    def run() -> None:
        asyncio.set_event_loop(loop)

        async def main() -> None:
            task = asyncio.ensure_future(serve(app, config, shutdown_trigger=stop.wait))
            for _ in range(200):
                try:
                    _, w = await asyncio.open_connection("127.0.0.1", port)
                    w.close()
                    break
                except OSError:
                    await asyncio.sleep(0.02)
            ready.set()
            await task

        loop.run_until_complete(main())

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    ready.wait(10)
    try:
        yield port
    finally:
        loop.call_soon_threadsafe(stop.set)
        thread.join(10)
