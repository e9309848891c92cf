"""The server that carries the HTTP API and the console, in the terminal's own event loop.

Starlette on uvicorn, bound to 127.0.0.1 unless the config says otherwise.
``serve_api`` is a service run beside the terminal (``terminal.port.Service``):
``hotline.app`` hands it to the terminal when the config has an ``[api]`` section.
Every failure is answered as a 4xx with a reason (JSON for the API, a page for the
console), never a 500 for bad input.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import socket
from collections.abc import Iterator
from pathlib import Path

import uvicorn
from starlette.applications import Starlette
from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route
from starlette.types import ASGIApp, Receive, Scope, Send

from hotline.core.access import unknown_user_hash
from hotline.core.errors import HotlineError, NotFound
from hotline.terminal.port import TerminalPort
from hotline.web import api, channelsconsole, console, deskconsole, notifyconsole
from hotline.web.auth import clear_stale_throttles, expire_throttles
from hotline.web.context import ApiContext
from hotline.web.i18n import localize

log = logging.getLogger(__name__)

DEFAULT_SESSION_MINUTES = 480
THROTTLE_SWEEP_S = 5.0  # how often throttles whose failures are forgotten are ended (and their alarms cleared)


def _wants_html(request: Request) -> bool:
    return not request.url.path.startswith("/api/") and "text/html" in request.headers.get("accept", "")


async def http_error(request: Request, exc: Exception) -> Response:
    """A refusal, in the reader's language (``web.i18n``): a page, or JSON whose ``error`` is in
    that language and ``error_en`` in English, the one language of programs and logs."""
    assert isinstance(exc, HTTPException)
    if _wants_html(request):
        return console.error_page(request, exc.status_code, str(exc.detail))
    headers = dict(exc.headers or {})
    if exc.status_code == 401:
        headers.setdefault("WWW-Authenticate", 'Bearer realm="hotline"')
    english = str(exc.detail)
    body = {"error": localize(english, console.error_lang(request)), "error_en": english}
    return JSONResponse(body, status_code=exc.status_code, headers=headers)


async def hotline_error(request: Request, exc: Exception) -> Response:
    """A refusal from below (a bad field, a duplicate user): the caller's fault; 404 if it names
    something that does not exist."""
    return await http_error(request, HTTPException(404 if isinstance(exc, NotFound) else 400, str(exc)))


def _loopback_name(name: str) -> bool:
    """localhost, or an address literal on loopback (127.0.0.0/8, ::1)."""
    if name.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


class LoopbackHostOnly:
    """Refuse a request whose Host header is not a loopback name, when the console listens on
    loopback: a page on another site that makes its name resolve to 127.0.0.1 (DNS rebinding)
    must not reach the login form or the API with the browser's blessing."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            host = Headers(scope=scope).get("host", "")
            name = host[1 : host.find("]")] if host.startswith("[") else host.rsplit(":", 1)[0]
            if not _loopback_name(name):
                response = JSONResponse(
                    {"error": f"unexpected Host {host[:80]!r}: this console answers only to loopback names"},
                    status_code=421,
                )
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)


def build_app(ctx: ApiContext, *, loopback: bool = True) -> Starlette:
    routes: list[BaseRoute] = [Route(e.path, e.handler, methods=[e.method]) for e in api.ENDPOINTS]
    routes.append(Route("/openapi.json", api.get_openapi, methods=["GET"]))
    routes += deskconsole.routes()  # before the console's own: its /fragments/{name} would take theirs
    routes += notifyconsole.routes()
    routes += channelsconsole.routes()
    routes += console.routes()
    app = Starlette(
        routes=routes,
        exception_handlers={HTTPException: http_error, HotlineError: hotline_error},
        middleware=[Middleware(LoopbackHostOnly)] if loopback else [],
    )
    app.state.ctx = ctx
    return app


# -- serving ----------------------------------------------------------------------------------


class _Server(uvicorn.Server):
    """uvicorn without its own signal handlers: the terminal owns SIGTERM and SIGINT."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


async def serve_api(
    terminal: TerminalPort, *, home: Path, host: str, port: int, session_minutes: int = DEFAULT_SESSION_MINUTES
) -> None:
    """Serve until cancelled; write the console's URL to HOME/console.url once bound (port 0:
    any free one). A port that cannot be bound is logged; the link keeps running."""
    ctx = ApiContext(terminal, terminal.access, session_lifetime_ns=session_minutes * 60 * 1_000_000_000)
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(64)
    except OSError as e:
        sock.close()
        log.error("the console cannot listen on %s:%d: %s; the link runs on without it", host, port, e.strerror or e)
        return
    bound = sock.getsockname()[1]
    url = f"http://{host if family == socket.AF_INET else f'[{host}]'}:{bound}/"
    (home / "console.url").write_text(url + "\n")
    log.info("console and API at %s", url)
    await asyncio.to_thread(unknown_user_hash)  # made once, off the loop, before any login needs it
    config = uvicorn.Config(
        build_app(ctx, loopback=_loopback_name(host.strip("[]"))), log_level="warning", access_log=False,
        log_config=None,  # uvicorn's lines go through the terminal's own handler (text or JSON)
        lifespan="off", timeout_graceful_shutdown=2, limit_concurrency=200,
        # No proxy stands in front: an X-Forwarded-For header is the caller's word, and trusting it
        # would let any local caller pick the address the login limiter counts and the journal records.
        proxy_headers=False,
    )  # fmt: skip
    server = _Server(config)
    terminal.subscribe(ctx.hub.publish)
    await clear_stale_throttles(ctx)
    sweeping = asyncio.ensure_future(_sweep_throttles(ctx))
    serving = asyncio.ensure_future(server.serve(sockets=[sock]))
    try:
        await asyncio.shield(serving)
    except asyncio.CancelledError:
        ctx.hub.close()
        server.should_exit = True
        with contextlib.suppress(Exception, asyncio.CancelledError):
            await asyncio.wait_for(serving, 3)
        raise
    finally:
        sweeping.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await sweeping
        terminal.unsubscribe(ctx.hub.publish)
        with contextlib.suppress(FileNotFoundError):
            (home / "console.url").unlink()


async def _sweep_throttles(ctx: ApiContext) -> None:
    """End login throttles once their flood has subsided, whether or not anyone logs in again."""
    while True:
        await asyncio.sleep(THROTTLE_SWEEP_S)
        try:
            await expire_throttles(ctx)
        except HotlineError as e:  # the journal refused: say so, and try again at the next sweep
            log.error("could not end a login throttle: %s", e)
