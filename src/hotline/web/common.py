"""What the HTTP API and the console share: who is asking, reading request bodies, the
actions both offer (send, acknowledge, read a message), and live events.

Authentication: a bearer token (``hotline token create``) for programs, or the
console's session cookie, which also needs the session's CSRF token on every
write. Roles are checked here, per call (``users.GRANTS``), never by the page.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import hmac
import json
import logging
import math
import time
from collections import OrderedDict, deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from hotline.core.access import Permission, Principal, Session, check_password
from hotline.core.model import MAX_ATTACHMENT_BYTES, MAX_ATTACHMENTS
from hotline.storage import audit
from hotline.storage.sqlite.access import Access
from hotline.storage.sqlite.journal import Journal
from hotline.terminal.control import build_content

if TYPE_CHECKING:
    from hotline.terminal.daemon import Terminal

log = logging.getLogger(__name__)

SESSION_COOKIE = "hotline_session"
CSRF_HEADER = "x-csrf-token"
MAX_JSON_BODY = 1024 * 1024
# A JSON send carries attachments in base64: room for one at the full 16 MiB. More go as multipart.
MAX_JSON_SEND_BODY = 32 * 1024 * 1024
MAX_REQUEST_BODY = MAX_ATTACHMENTS * MAX_ATTACHMENT_BYTES + MAX_JSON_BODY
LOGIN_FAILURES_ALLOWED = 5  # per client address, per window
LOGIN_WINDOW_S = 60.0
LOGIN_CLIENTS_TRACKED = 10_000  # past this, the longest-quiet address is forgotten
LOGINS_WAITING_MAX = 16  # logins in progress (one checked, the rest queued); more get 503 at once
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
# What a person fills in to send a message, in the API and on the compose page alike.
MESSAGE_FIELDS = ("to", "precedence", "lang", "classification", "subject", "body")


class LoginLimiter:
    """At most N failed logins per client address per sliding window; then 429.

    Addresses are kept in the order of their last failure, so the quiet ones are forgotten
    from the front at constant cost; past ``tracked`` addresses the longest-quiet one is
    forgotten even inside its window, so memory stays bounded however many addresses guess.
    """

    def __init__(
        self, allowed: int = LOGIN_FAILURES_ALLOWED, window_s: float = LOGIN_WINDOW_S,
        tracked: int = LOGIN_CLIENTS_TRACKED,
    ) -> None:  # fmt: skip
        self.allowed, self.window_s, self.tracked = allowed, window_s, tracked
        self._failures: OrderedDict[str, deque[float]] = OrderedDict()

    def retry_after(self, client: str, now: float) -> float:
        """Seconds until ``client`` may try again; 0 if it may now."""
        failures = self._failures.get(client)
        if not failures:
            return 0.0
        while failures and failures[0] <= now - self.window_s:
            failures.popleft()
        if len(failures) < self.allowed:
            return 0.0
        return failures[0] + self.window_s - now

    def failed(self, client: str, now: float) -> None:
        times = self._failures.pop(client, None) or deque(maxlen=self.allowed)
        times.append(now)
        self._failures[client] = times  # to the back: the most recent failure
        cutoff = now - self.window_s
        while len(self._failures) > 1:
            quietest = next(iter(self._failures.values()))
            if quietest and quietest[-1] > cutoff and len(self._failures) <= self.tracked:
                break
            self._failures.popitem(last=False)

    def __len__(self) -> int:
        """How many client addresses are remembered."""
        return len(self._failures)

    def succeeded(self, client: str) -> None:
        self._failures.pop(client, None)


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
    terminal: Terminal
    access: Access
    session_lifetime_ns: int
    hub: EventHub = field(default_factory=EventHub)
    limiter: LoginLimiter = field(default_factory=LoginLimiter)
    # One password check at a time: scrypt runs in a worker thread (never on the event loop that
    # keeps the heartbeats going), and a flood of logins queues here instead of racing past the
    # rate limit or taking 32 MiB of memory each.
    login_lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    logins_waiting: int = 0

    @property
    def store(self) -> Any:
        return self.terminal.engine.store

    def now_ns(self) -> int:
        return self.terminal.clock.wall_ns()


# -- authentication ---------------------------------------------------------------------------


class Unauthenticated(HTTPException):
    def __init__(self, detail: str = "log in, or present a bearer token (`hotline token create`)") -> None:
        super().__init__(401, detail)


def context(request: Request) -> ApiContext:
    """The terminal's API context, from the app the request arrived at."""
    ctx: ApiContext = request.app.state.ctx
    return ctx


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
    """Check a password under the rate limit. Raises 429, 503 or 401; never says which part was wrong."""
    if ctx.logins_waiting >= LOGINS_WAITING_MAX:  # a flood waits nowhere: it would hold every connection
        raise HTTPException(503, "too many logins at once; try again in a second", {"Retry-After": "1"})
    ctx.logins_waiting += 1
    try:
        async with ctx.login_lock:
            now = time.monotonic()
            wait = ctx.limiter.retry_after(client, now)
            if wait > 0:
                raise HTTPException(
                    429, f"too many failed logins; try again in {wait:.0f} s", {"Retry-After": f"{wait:.0f}"}
                )
            user: Principal | None = None
            if name and password:
                user, stored = ctx.access.password_record(name)
                if not await asyncio.to_thread(check_password, password, stored):
                    user = None
            if user is None:
                ctx.limiter.failed(client, now)
            else:
                ctx.limiter.succeeded(client)
    finally:
        ctx.logins_waiting -= 1
    if user is None:
        log.warning("failed console login for %r from %s", name[:64], client)
        raise HTTPException(401, "wrong user name or password")
    return user


async def start_session(request: Request, name: str, password: str) -> tuple[str, Session]:
    """Log in under the rate limit (429 or 401 if not); the login is journaled."""
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


# -- request bodies ---------------------------------------------------------------------------


async def read_json(request: Request, limit: int = MAX_JSON_BODY) -> dict[str, Any]:
    too_big = HTTPException(413, f"a JSON body here may have at most {limit} bytes; send files as multipart")
    length = request.headers.get("content-length")
    if length is not None and (not length.isdigit() or int(length) > limit):
        raise too_big
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        chunks.append(chunk)
        size += len(chunk)
        if size > limit:
            raise too_big
    body = b"".join(chunks)
    content_type = request.headers.get("content-type", "application/json").split(";")[0].strip().lower()
    if content_type != "application/json":
        raise HTTPException(415, f"send the body as application/json, not {content_type[:60]}")
    if len(body) > 64 * 1024:  # a message with attachments: parsed off the loop, which keeps the link beating
        return await asyncio.to_thread(parse_json_object, body)
    return parse_json_object(body)


def _no_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    value: dict[str, Any] = {}
    for key, item in pairs:
        if key in value:
            raise ValueError(f"the key {key[:60]!r} appears twice")
        value[key] = item
    return value


def _no_constant(name: str) -> None:
    raise ValueError(f"{name} is not a JSON number")


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"{text[:40]} is too large a number")
    return value


def parse_json_object(body: bytes) -> dict[str, Any]:
    """A request body as one JSON object, strictly: no NaN or Infinity, no repeated key (which
    would silently win), no text that is not Unicode (a lone surrogate), no nesting so deep it
    exhausts the parser. Each is a 400 with the reason; none reaches the journal."""
    try:
        value = json.loads(
            body or b"{}", object_pairs_hook=_no_duplicate_keys, parse_constant=_no_constant, parse_float=_finite
        )
        # A lone surrogate ("\ud800") parses, but cannot be written as UTF-8 anywhere later.
        json.dumps(value, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        raise HTTPException(400, "the body holds text that is not valid Unicode (a lone surrogate)") from None
    except RecursionError:
        raise HTTPException(400, "the body is nested too deeply") from None
    except (ValueError, UnicodeDecodeError) as e:
        raise HTTPException(400, f"the body is not valid JSON: {e}") from None
    if not isinstance(value, dict):
        raise HTTPException(400, "the body must be a JSON object")
    return value


LOGIN_FORM_MAX = 64 * 1024


async def read_form(request: Request, *, login: bool = False) -> Any:
    """A form post. Only a caller with a bearer token or a session gets its body read (the CSRF
    token may travel inside the form, so that check follows); the login form itself is small."""
    if not login:
        caller(request)  # 401 before a byte of the body is read
    limit = LOGIN_FORM_MAX if login else MAX_REQUEST_BODY
    length = request.headers.get("content-length")
    if length is not None and (not length.isdigit() or int(length) > limit):
        raise HTTPException(413, "the login form is too large" if login else "the request is larger than 16 "
                            "attachments of 16 MiB")  # fmt: skip
    try:
        if login:
            return await request.form(max_files=0, max_fields=10, max_part_size=LOGIN_FORM_MAX)
        return await request.form(max_files=MAX_ATTACHMENTS, max_fields=50, max_part_size=MAX_ATTACHMENT_BYTES + 1024)
    except HTTPException:
        raise
    except Exception as e:  # python-multipart reports a malformed body in several types
        raise HTTPException(400, f"malformed form: {e}") from None


async def form_attachments(form: Any) -> list[list[Any]]:
    out: list[list[Any]] = []
    for item in form.getlist("attachment"):
        if isinstance(item, UploadFile) and item.filename:
            data = await item.read(MAX_ATTACHMENT_BYTES + 1)
            if len(data) > MAX_ATTACHMENT_BYTES:  # only the first 16 MiB + 1 were read: say the limit
                raise HTTPException(400, f"attachment {item.filename[:80]!r} is larger than the 16 MiB limit")
            out.append([item.filename, data])
    return out


def json_attachments(raw: Any) -> list[list[Any]]:
    if raw is None:
        return []
    if not isinstance(raw, list) or len(raw) > MAX_ATTACHMENTS:
        raise HTTPException(400, f"'attachments' must be a list of at most {MAX_ATTACHMENTS} {{name, data}} objects")
    out: list[list[Any]] = []
    for item in raw:
        if not (isinstance(item, dict) and isinstance(item.get("name"), str) and isinstance(item.get("data"), str)):
            raise HTTPException(400, 'each attachment must be {"name": text, "data": base64 text}')
        try:
            out.append([item["name"], base64.b64decode(item["data"], validate=True)])
        except (binascii.Error, ValueError):
            raise HTTPException(400, f"attachment {item['name']!r} is not valid base64") from None
    return out


# -- actions shared by the API and the console ------------------------------------------------


async def send_message(ctx: ApiContext, fields: dict[str, Any], by: Principal) -> str:
    """Journal a message (it then exists) and return its id; 400 with a reason if it is refused."""
    content = build_content(ctx.terminal.identity.name, fields, ctx.now_ns(), ctx.terminal.config.markings)
    loop = asyncio.get_running_loop()
    done: asyncio.Future[None] = loop.create_future()

    ctx.terminal.engine.submit(content, lambda error, _created: _settle(loop, done, error), by=by.label)
    await done
    return content.id


async def acknowledge(ctx: ApiContext, message_id: str, by: Principal, *, read_only: bool = False) -> None:
    """Acknowledge ("received and understood") an incoming message, or with ``read_only``
    record that a person opened it; either way a signed receipt goes back to the sender."""
    found = ctx.store.incoming(message_id)
    if found is None or found["kind"] != "message":
        raise HTTPException(404, f"no received message with id {message_id}")
    loop = asyncio.get_running_loop()
    done: asyncio.Future[None] = loop.create_future()
    action = ctx.terminal.engine.mark_read if read_only else ctx.terminal.engine.acknowledge
    action(message_id, by.label, lambda error: _settle(loop, done, error))
    await done


def _settle(loop: asyncio.AbstractEventLoop, future: asyncio.Future[None], error: Exception | None) -> None:
    """Engine callbacks run inside its commit; the waiting request resumes on the next turn."""

    def finish() -> None:
        if future.done():
            return
        if error is None:
            future.set_result(None)
        else:
            future.set_exception(error)

    loop.call_soon(finish)


def message_view(ctx: ApiContext, message_id: str) -> dict[str, Any]:
    found = ctx.store.message(message_id)
    if found is None:
        raise HTTPException(404, f"no message with id {message_id}")
    times = [
        ("created", found["created_at_ns"]), ("queued", found["queued_at_ns"]), ("sent", found["sent_at_ns"]),
        ("delivered", found["delivered_at_ns"]), ("received", found["received_at_ns"]),
        ("read", found["read_at_ns"]), ("acknowledged", found["acknowledged_at_ns"]),
    ]  # fmt: skip
    found["timeline"] = [
        {"event": name, "at": audit.rfc3339(ns), "at_ns": ns, **({"by": found["acknowledged_by"]}
                                                                 if name == "acknowledged" else {})}
        for name, ns in times if ns
    ]  # fmt: skip
    return dict(found)


def status_view(ctx: ApiContext) -> dict[str, Any]:
    return ctx.terminal.engine.status()


async def verify_journal(ctx: ApiContext) -> dict[str, Any]:
    path = ctx.terminal.journal.path

    def run() -> dict[str, Any]:
        journal = Journal(path, readonly=True)
        try:
            return audit.verify(journal).as_dict()
        finally:
            journal.close()

    return await asyncio.to_thread(run)
