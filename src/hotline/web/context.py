"""What every request handler of the API and the console reaches: the ``ApiContext`` — the
terminal (through its ``TerminalPort``), users and sessions, the login throttle — and the
``EventHub`` that fans the terminal's events out to live pages.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from starlette.requests import Request

from hotline.storage.base import AccessStore, TerminalStore
from hotline.terminal.port import TerminalPort
from hotline.web.limiter import LoginLimiter


class EventHub:
    """Fans engine events (received, delivered, acknowledged, alarm) out to live pages."""

    def __init__(self) -> None:
        self._queues: set[asyncio.Queue[dict[str, Any]]] = set()
        self.closing = asyncio.Event()

    def close(self) -> None:
        """The terminal is stopping: end every stream now, so shutdown does not wait for them."""
        self.closing.set()
        self.publish({"event": "closing"})

    def publish(self, event: dict[str, Any]) -> None:
        for queue in self._queues:
            if queue.full():  # a stalled page loses the oldest events, never stalls the engine
                queue.get_nowait()
            queue.put_nowait(event)

    @contextlib.contextmanager
    def subscribe(self) -> Iterator[asyncio.Queue[dict[str, Any]]]:
        queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue(maxsize=256)
        self._queues.add(queue)
        try:
            yield queue
        finally:
            self._queues.discard(queue)


@dataclass
class ApiContext:
    terminal: TerminalPort
    access: AccessStore
    session_lifetime_ns: int
    hub: EventHub = field(default_factory=EventHub)
    limiter: LoginLimiter = field(default_factory=LoginLimiter)
    # One password check at a time: scrypt runs in a worker thread (never on the event loop that
    # keeps the heartbeats going), and a flood of logins queues here instead of racing past the
    # throttle or taking 32 MiB of memory each.
    login_lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    logins_waiting: int = 0
    clock: Callable[[], float] = time.monotonic  # the throttle's time (a fake one in tests)

    @property
    def store(self) -> TerminalStore:
        return self.terminal.store

    def now_ns(self) -> int:
        return self.terminal.now_ns()


def context(request: Request) -> ApiContext:
    """The terminal's API context, from the app the request arrived at."""
    ctx: ApiContext = request.app.state.ctx
    return ctx
