"""Who is asking: a bearer token (``hotline token create``) for programs, or the console's
session cookie, which also needs the session's CSRF token on every write. Roles are
checked here, per call (``access.GRANTS``), never by the page. Logins are throttled per
user, per address and per both (``limiter``), and checked one at a time; every throttle
that starts or ends is journaled and raises or clears a ``login-flood`` alarm.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import math
from typing import Any

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from hotline.core.access import Permission, Principal, Session, check_password
from hotline.web.context import ApiContext, context
from hotline.web.limiter import Throttle

log = logging.getLogger(__name__)

SESSION_COOKIE = "hotline_session"
CSRF_HEADER = "x-csrf-token"
LOGINS_WAITING_MAX = 16  # logins in progress (one checked, the rest queued); more get 503 at once
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
LOGIN_FLOOD = "login-flood"  # the alarm of a login throttle (core.alarms)


class Unauthenticated(HTTPException):
    def __init__(self, detail: str = "log in, or present a bearer token (`hotline token create`)") -> None:
        super().__init__(401, detail)


def current_session(request: Request) -> tuple[str, Session] | None:
    session_id = request.cookies.get(SESSION_COOKIE)
    if not session_id:
        return None
    ctx = context(request)
    found = ctx.access.session(session_id, ctx.now_ns())
    return None if found is None else (session_id, found)


def caller(request: Request) -> tuple[Principal, Session | None]:
    """Who is asking (from a bearer token, or else the session cookie), and their session if
    it came with one; 401 if neither holds."""
    header = request.headers.get("authorization", "")
    if header:
        scheme, _, secret = header.partition(" ")
        principal = context(request).access.token_principal(secret.strip()) if scheme.lower() == "bearer" else None
        if principal is None:
            raise Unauthenticated("the bearer token is unknown or revoked")
        return principal, None
    found = current_session(request)
    if found is None:
        raise Unauthenticated()
    return found[1].user, found[1]


async def authenticate(request: Request, permission: Permission, *, form: Any = None) -> Principal:
    """Who is asking, checked against ``permission``: 401 if nobody, 403 if not allowed.

    A session cookie is ambient (the browser sends it on its own), so a write made
    with one must also carry the session's CSRF token, in a header or a form field.
    """
    principal, session = caller(request)
    if session is not None and request.method in UNSAFE_METHODS:
        sent = request.headers.get(CSRF_HEADER) or (form.get("csrf") if form is not None else None)
        if not isinstance(sent, str) or not _same(sent, session.csrf):
            raise HTTPException(403, "missing or wrong CSRF token; reload the page and try again")
    if not principal.may(permission):
        raise HTTPException(403, f"the {principal.role} role may not {permission.value}")
    return principal


def _same(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode(), b.encode())


def client_address(request: Request) -> str:
    return request.client.host if request.client else "unknown"


async def try_login(ctx: ApiContext, client: str, name: str, password: str) -> Principal:
    """Check a password under the throttle. Raises 429, 503 or 401; never says which part was wrong,
    nor whether the user exists (an unknown name is checked as long, and throttled the same)."""
    if ctx.logins_waiting >= LOGINS_WAITING_MAX:  # a flood waits nowhere: it would hold every connection
        raise HTTPException(503, "too many logins at once; try again in a second", {"Retry-After": "1"})
    ctx.logins_waiting += 1
    try:
        async with ctx.login_lock:
            wait = ctx.limiter.retry_after(name, client, ctx.clock())
            if wait > 0:
                seconds = max(1, math.ceil(wait))
                raise HTTPException(
                    429, f"too many failed logins; try again in {seconds} s", {"Retry-After": str(seconds)}
                )
            user: Principal | None = None
            if name and password:
                user, stored = ctx.access.password_record(name)
                if not await asyncio.to_thread(check_password, password, stored):
                    user = None
            now = ctx.clock()  # after the check: the wait runs from the answer
            record = ctx.limiter.failed if user is None else ctx.limiter.succeeded
            await report_throttles(ctx, record(name, client, now))
    finally:
        ctx.logins_waiting -= 1
    if user is None:
        log.warning("failed console login for %r from %s", name[:64], client)
        raise HTTPException(401, "wrong user name or password")
    return user


async def report_throttles(ctx: ApiContext, changes: list[Throttle]) -> None:
    """Journal each throttle that started or ended, and raise or clear its ``login-flood`` alarm.

    Called under the login lock, so the reports keep the order of the decisions."""
    for change in changes:
        ctx.access.record_login_throttle(change.record(), ctx.now_ns())
        if change.started:
            await ctx.terminal.raise_alarm(LOGIN_FLOOD, "", change.subject, change.describe())
        else:
            log.warning("login throttle %s ended: %s", change.subject, change.reason)
            await ctx.terminal.clear_alarm(LOGIN_FLOOD, "", change.subject, change.reason)


async def expire_throttles(ctx: ApiContext) -> None:
    """End the throttles whose failures are now forgotten (run every few seconds, so an alarm
    clears when its flood subsides even if nobody tries to log in again)."""
    async with ctx.login_lock:
        await report_throttles(ctx, ctx.limiter.expire(ctx.clock()))


async def clear_stale_throttles(ctx: ApiContext) -> None:
    """At start: the throttles (kept in memory) of the terminal's last run are gone, so are their alarms."""
    for alarm in ctx.terminal.alarms():
        if alarm["kind"] == LOGIN_FLOOD:
            await ctx.terminal.clear_alarm(
                LOGIN_FLOOD, alarm["peer"], alarm["subject"], "the terminal restarted: its login throttles start afresh"
            )


async def start_session(request: Request, name: str, password: str) -> tuple[str, Session]:
    """Log in under the throttle (429 or 401 if not); the login is journaled."""
    ctx = context(request)
    client = client_address(request)
    user = await try_login(ctx, client, name, password)
    return ctx.access.open_session(user, ctx.session_lifetime_ns, ctx.now_ns(), client)


def set_session_cookie(request: Request, response: Response, session_id: str) -> None:
    """HttpOnly (no script reads it) and SameSite=Strict (no other site's page sends it)."""
    lifetime_s = context(request).session_lifetime_ns // 1_000_000_000
    response.set_cookie(SESSION_COOKIE, session_id, max_age=lifetime_s, httponly=True, samesite="strict", path="/")


def end_session(request: Request, response: Response) -> None:
    """Log out: the session is gone on the server (journaled), and the cookie in the browser."""
    found = current_session(request)
    if found is not None:
        ctx = context(request)
        ctx.access.close_session(found[0], ctx.now_ns())
    response.delete_cookie(SESSION_COOKIE, path="/")
