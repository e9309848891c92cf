"""A loopback TCP proxy that injects faults: pass, close, reset, or silently blackhole a path.

Used by the failover tests and `bench/failover.py`; it only ever binds and dials 127.0.0.1.

It runs its own asyncio loop in a thread so tests can flip its mode while real
terminal processes talk through it.
"""

from __future__ import annotations

import asyncio
import socket
import struct
import threading
from typing import Literal

Mode = Literal["pass", "close", "reset", "blackhole"]


class Proxy:
    port: int  # where the proxy listens; it forwards to target_port

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.mode: Mode = "pass"
        self._loop = asyncio.new_event_loop()
        self._conns: set[tuple[asyncio.StreamWriter, asyncio.StreamWriter]] = set()
        self._server: asyncio.base_events.Server | None = None
        ready = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(ready,), daemon=True)
        self._thread.start()
        ready.wait(10)
        if self._server is None:
            raise RuntimeError("the fault proxy did not start")
        self.port = int(self._server.sockets[0].getsockname()[1])

    def _run(self, ready: threading.Event) -> None:
        asyncio.set_event_loop(self._loop)
        self._server = self._loop.run_until_complete(asyncio.start_server(self._handle, "127.0.0.1", 0))
        ready.set()
        try:
            self._loop.run_forever()
        finally:
            self._loop.close()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self.mode in ("close", "reset"):
            self._kill(writer, reset=self.mode == "reset")
            return
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        except OSError:
            writer.close()
            return
        pair = (writer, up_writer)
        self._conns.add(pair)
        await asyncio.gather(self._pump(reader, up_writer), self._pump(up_reader, writer), return_exceptions=True)
        self._conns.discard(pair)
        for w in pair:
            w.close()

    async def _pump(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            data = await reader.read(65536)
            if not data:
                writer.close()
                return
            if self.mode == "blackhole":
                continue  # swallowed: no reset, no FIN, nothing
            writer.write(data)
            await writer.drain()

    @staticmethod
    def _kill(writer: asyncio.StreamWriter, *, reset: bool) -> None:
        sock = writer.get_extra_info("socket")
        if reset and sock is not None:
            # SO_LINGER with a zero timeout makes close() send RST instead of FIN.
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        writer.close()

    def set_mode(self, mode: Mode) -> None:
        done = threading.Event()

        def apply() -> None:
            self.mode = mode
            if mode in ("close", "reset"):
                for pair in list(self._conns):
                    for w in pair:
                        self._kill(w, reset=mode == "reset")
                self._conns.clear()
            done.set()

        self._loop.call_soon_threadsafe(apply)
        done.wait(5)

    def stop(self) -> None:
        async def shutdown() -> None:
            if self._server is not None:
                self._server.close()
            for pair in list(self._conns):
                for w in pair:
                    w.close()
            # Connection handlers still pumping (a blackholed path never ends by itself) are
            # cancelled and awaited, so none is destroyed while pending when the loop stops.
            handlers = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for task in handlers:
                task.cancel()
            await asyncio.gather(*handlers, return_exceptions=True)

        if self._loop.is_running():
            future = asyncio.run_coroutine_threadsafe(shutdown(), self._loop)
            try:
                future.result(5)
            finally:
                self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)
