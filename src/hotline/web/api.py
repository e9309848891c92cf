"""The HTTP API: JSON over HTTP for programs, and for the console's script.

The endpoint table (``ENDPOINTS``) names each call's permission and generates
``/openapi.json``; who is asking is ``web.auth``'s to find out, reading bodies
``web.forms``'s, and the actions shared with the console are ``web.actions``.
Every write is journaled with who made it. The handlers ask the terminal through
its ``TerminalPort``, in the same event loop (no locks); anything that may take
long — verifying or exporting a large journal — runs in a thread on its own
read-only connection so heartbeats never wait for it. ``web.server`` serves it.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse

from hotline.core.access import GRANTS, Permission, Role, new_password_hash
from hotline.core.access import validate_console_lang as validate_lang
from hotline.core.model import MAX_ATTACHMENTS, canonical_message_id, safe_file_name, validate_name
from hotline.crypto.identity import ContactCard, fingerprint
from hotline.engine.pairing import peer_listing
from hotline.storage import audit
from hotline.storage.backend import open_storage
from hotline.web import channels, desk, notify
from hotline.web.actions import MESSAGE_FIELDS, acknowledge, message_view, send_message, status_view, verify_journal
from hotline.web.auth import SESSION_COOKIE, authenticate, end_session, set_session_cookie, start_session
from hotline.web.context import context
from hotline.web.forms import MAX_JSON_SEND_BODY, form_attachments, json_attachments, read_form, read_json
from hotline.web.metrics import get_metrics

log = logging.getLogger(__name__)

SSE_STATUS_EVERY_S = 2.0
SEND_FIELDS = (*MESSAGE_FIELDS, "id")  # a program may also choose the id, to retry idempotently


# -- the JSON API -----------------------------------------------------------------------------

Handler = Callable[[Request], Awaitable[Response]]


@dataclass(frozen=True)
class Endpoint:
    method: str
    path: str
    summary: str
    permission: Permission | None  # None: no login needed
    handler: Handler
    body: str = ""  # a short description of the request body, for the schema


def ok(value: Any, status: int = 200) -> JSONResponse:
    return JSONResponse(value, status_code=status)


async def login(request: Request) -> Response:
    body = await read_json(request)
    name, password = body.get("name"), body.get("password")
    if not isinstance(name, str) or not isinstance(password, str):
        raise HTTPException(400, 'send {"name": text, "password": text}')
    session_id, session = await start_session(request, name, password)
    user = session.user
    response = ok({"user": user.name, "role": user.role.value, "lang": user.lang, "csrf": session.csrf})
    set_session_cookie(request, response, session_id)
    return response


async def logout(request: Request) -> Response:
    await authenticate(request, Permission.READ)
    if request.headers.get("authorization"):
        raise HTTPException(400, "a bearer token has no session to end; revoke it with DELETE /api/tokens/{id}")
    response = ok({"logged_out": True})
    end_session(request, response)
    return response


async def whoami(request: Request) -> Response:
    who = await authenticate(request, Permission.READ)
    return ok({"name": who.name, "role": who.role.value, "via": who.via, "lang": who.lang,
               "may": sorted(p.value for p in Permission if who.may(p)),
               "markings": list(context(request).terminal.markings)})  # fmt: skip


async def get_status(request: Request) -> Response:
    await authenticate(request, Permission.READ)
    return ok(status_view(context(request)))


async def get_peers(request: Request) -> Response:
    await authenticate(request, Permission.READ)
    return ok({"peers": peer_listing(context(request).store)})


async def post_peer(request: Request) -> Response:
    """Pair with a peer's contact card (a supervisor's job); the terminal dials it at once."""
    who = await authenticate(request, Permission.ADMINISTER)
    body = await read_json(request)
    text = body.get("card")
    if not isinstance(text, str) or not text:
        raise HTTPException(400, 'send {"card": the peer\'s contact card, as the text `hotline card` printed}')
    card = ContactCard.from_json(text)
    result = context(request).terminal.pair(card, by=who.label)  # and dials it at once
    return ok(
        {"name": card.name, "fingerprint": fingerprint(card.identity_key), "safety_number": result.safety_number,
         "already": result.already, "replaced": result.replaced is not None},
        200 if result.already else 201,
    )  # fmt: skip


async def post_verify_peer(request: Request) -> Response:
    who = await authenticate(request, Permission.ADMINISTER)
    body = await read_json(request)
    heard = body.get("safety_number")
    if not isinstance(heard, str):
        raise HTTPException(400, 'send {"safety_number": the 60 digits the other operator read out}')
    context(request).terminal.confirm_safety_number(request.path_params["name"], heard, by=who.label)
    return ok({"name": request.path_params["name"], "verified": True})


async def get_alarms(request: Request) -> Response:
    await authenticate(request, Permission.READ)
    return ok({"alarms": context(request).terminal.alarms()})


def _int_param(request: Request, name: str, default: int, low: int, high: int) -> int:
    raw = request.query_params.get(name)
    if raw is None:
        return default
    if not (raw.isascii() and raw.isdigit()) or not low <= int(raw) <= high:
        raise HTTPException(400, f"{name!r} must be a whole number from {low} to {high}")
    return int(raw)


async def list_messages(request: Request) -> Response:
    await authenticate(request, Permission.READ)
    box = request.query_params.get("box", "inbox")
    if box not in {"inbox", "outbox"}:
        raise HTTPException(400, "'box' must be inbox or outbox")
    limit = _int_param(request, "limit", 100, 1, 1000)
    peer = request.query_params.get("peer") or None
    rows = context(request).store.messages("in" if box == "inbox" else "out", peer, limit)
    return ok({"box": box, "messages": rows})


async def get_message(request: Request) -> Response:
    await authenticate(request, Permission.READ)
    return ok(message_view(context(request), canonical_message_id(request.path_params["id"])))


async def get_attachment(request: Request) -> Response:
    await authenticate(request, Permission.READ)
    index = request.path_params["index"]
    store = context(request).store
    message_id = canonical_message_id(request.path_params["id"])
    message_id = store.carrier_of(message_id) or message_id  # a channel message's files ride its carrier
    found = store.attachment(message_id, index) if index < MAX_ATTACHMENTS else None
    if found is None:
        raise HTTPException(404, "no such attachment")
    name, data = found
    name = safe_file_name(name)  # what a browser saves: never a device name ("con") or a control character
    # An ASCII fallback, and the real name (Cyrillic, say) in RFC 6266's filename*.
    fallback = "".join(c for c in name if c.isascii() and (c.isalnum() or c in "._- ")) or "attachment"
    disposition = f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(name, safe='')}"
    return Response(
        data,
        media_type="application/octet-stream",
        headers={"content-disposition": disposition, "x-content-type-options": "nosniff"},
    )


async def post_message(request: Request) -> Response:
    ctx = context(request)
    if request.headers.get("content-type", "").startswith("multipart/form-data"):
        form = await read_form(request)
        who = await authenticate(request, Permission.SEND, form=form)
        fields = {k: form.get(k) for k in SEND_FIELDS if form.get(k)}
        fields["attachments"] = await form_attachments(form)
    else:
        who = await authenticate(request, Permission.SEND)
        body = await read_json(request, MAX_JSON_SEND_BODY)
        fields = {k: v for k, v in body.items() if k in SEND_FIELDS}
        fields["attachments"] = json_attachments(body.get("attachments"))
    to = fields.get("to")
    if to is not None and not isinstance(to, str):
        raise HTTPException(400, f"'to' must be one peer's name as text, not {_json_kind(to)}; see GET /api/peers")
    if not to:
        raise HTTPException(400, "'to' (the peer's name) is required; see GET /api/peers")
    message_id = await send_message(ctx, fields, who)
    return ok({"id": message_id, "state": "queued"}, 201)


def _json_kind(value: object) -> str:
    """How a JSON value reads to the person who sent it."""
    if isinstance(value, bool):
        return "true or false"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, list):
        return "a list"
    return "an object" if isinstance(value, dict) else "something else"


async def post_ack(request: Request) -> Response:
    who = await authenticate(request, Permission.SEND)
    message_id = canonical_message_id(request.path_params["id"])
    store = context(request).store
    already = bool((store.message(message_id) or {}).get("acknowledged_at_ns"))
    await acknowledge(context(request), message_id, who)
    found = store.message(message_id) or {}
    by = found.get("acknowledged_by") or who.label  # a second acknowledgement changes nothing: say whose stands
    return ok({"id": message_id, "acknowledged": True, "by": by, "already": already})


async def get_verify(request: Request) -> Response:
    await authenticate(request, Permission.AUDIT)
    report = await verify_journal(context(request))
    return ok(report)


async def get_export(request: Request) -> Response:
    await authenticate(request, Permission.AUDIT)
    path = context(request).terminal.journal_path
    start = _int_param(request, "from", 1, 1, 2**62)

    async def lines() -> AsyncIterator[bytes]:
        with open_storage(path, readonly=True) as storage:
            batch: list[str] = []
            for line in audit.export_lines(storage.record, start):
                batch.append(line + "\n")
                if len(batch) >= 500:
                    yield "".join(batch).encode()
                    batch = []
                    await asyncio.sleep(0)  # let the link breathe between batches
            yield "".join(batch).encode()

    return StreamingResponse(lines(), media_type="application/x-ndjson")


async def list_users(request: Request) -> Response:
    await authenticate(request, Permission.ADMINISTER)
    return ok({"users": context(request).access.users()})


async def post_user(request: Request) -> Response:
    who = await authenticate(request, Permission.ADMINISTER)
    body = await read_json(request)
    name, role, password, lang = (body.get("name"), body.get("role"), body.get("password"),
                                  body.get("lang", "en"))  # fmt: skip
    if not (isinstance(name, str) and isinstance(role, str) and isinstance(password, str) and isinstance(lang, str)):
        raise HTTPException(400, 'send {"name", "role", "password"} as text, and optionally "lang"')
    ctx = context(request)
    parsed_role = Role.parse_user(role)
    validate_name(name, "user name")  # refused before, not after, ~0.1 s of hashing
    validate_lang(lang)
    password_hash = await asyncio.to_thread(new_password_hash, password)  # off the event loop
    ctx.access.add_user(name, parsed_role, password_hash, lang, by=who.label, at_ns=ctx.now_ns())
    return ok({"name": name, "role": parsed_role.value, "lang": lang}, 201)


async def delete_user(request: Request) -> Response:
    who = await authenticate(request, Permission.ADMINISTER)
    ctx = context(request)
    ctx.access.remove_user(request.path_params["name"], by=who.label, at_ns=ctx.now_ns())
    return ok({"removed": request.path_params["name"]})


async def list_tokens(request: Request) -> Response:
    await authenticate(request, Permission.ADMINISTER)
    return ok({"tokens": context(request).access.tokens()})


async def post_token(request: Request) -> Response:
    who = await authenticate(request, Permission.ADMINISTER)
    body = await read_json(request)
    role, label = body.get("role"), body.get("label", "")
    if not isinstance(role, str) or not isinstance(label, str):
        raise HTTPException(400, 'send {"role": operator|supervisor|auditor|monitor, "label": text}')
    ctx = context(request)
    parsed_role = Role.parse(role)
    token_id, secret = ctx.access.create_token(parsed_role, label, by=who.label, at_ns=ctx.now_ns())
    return ok({"id": token_id, "role": parsed_role.value, "token": secret}, 201)


async def delete_token(request: Request) -> Response:
    who = await authenticate(request, Permission.ADMINISTER)
    ctx = context(request)
    ctx.access.revoke_token(request.path_params["id"], by=who.label, at_ns=ctx.now_ns())
    return ok({"revoked": request.path_params["id"]})


async def events(request: Request) -> Response:
    """Server-sent events: every engine event as it is committed, and a status line every 2 s.

    The caller's credentials are checked again before every event; once they no longer hold,
    the stream sends `expired` and ends."""
    await authenticate(request, Permission.READ)
    ctx = context(request)

    async def stream() -> AsyncIterator[str]:
        with ctx.hub.subscribe() as queue:
            yield "retry: 1000\n\n"
            while not ctx.hub.closing.is_set():
                try:
                    event = await asyncio.wait_for(queue.get(), SSE_STATUS_EVERY_S)
                except TimeoutError:
                    event = {"event": "status", "alarms": len(ctx.terminal.alarms())}
                try:  # a stream outlives its check: a logout, expiry or revoked token ends it here
                    await authenticate(request, Permission.READ)
                except HTTPException as e:
                    yield f"event: expired\ndata: {json.dumps({'error': e.detail})}\n\n"
                    return
                name = str(event.get("event", "message"))
                yield f"event: {name}\ndata: {json.dumps(event, default=str)}\n\n"
                if name == "closing":
                    return

    return StreamingResponse(stream(), media_type="text/event-stream", headers={"cache-control": "no-store"})


ENDPOINTS = [
    Endpoint("POST", "/api/session", "Log in (console session cookie; returns the CSRF token)", None, login,
             "{name, password}"),
    Endpoint("DELETE", "/api/session", "Log out", Permission.READ, logout),
    Endpoint("GET", "/api/whoami", "Who is asking, what they may do, and the markings they may send",
             Permission.READ, whoami),
    Endpoint("GET", "/api/status", "Peers, paths (state, RTT, active), queues and open alarms", Permission.READ,
             get_status),
    Endpoint("GET", "/api/peers", "Paired peers with fingerprints, safety numbers and paths", Permission.READ,
             get_peers),
    Endpoint("POST", "/api/peers", "Pair with a peer's contact card; returns the safety number",
             Permission.ADMINISTER, post_peer, "{card}"),
    Endpoint("POST", "/api/peers/{name}/verify", "Record that the safety number was compared aloud",
             Permission.ADMINISTER, post_verify_peer, "{safety_number}"),
    Endpoint("GET", "/api/alarms", "Open alarms", Permission.READ, get_alarms),
    Endpoint("GET", "/api/messages", "List messages (?box=inbox|outbox, ?peer=, ?limit=)", Permission.READ,
             list_messages),
    Endpoint("POST", "/api/messages", "Send a message (JSON with base64 attachments, or multipart)",
             Permission.SEND, post_message, "{to, precedence, classification, lang, subject, body, attachments}"),
    Endpoint("GET", "/api/messages/{id}", "One message with its attachments and receipt timeline", Permission.READ,
             get_message),
    Endpoint("GET", "/api/messages/{id}/attachments/{index:int}", "Download an attachment", Permission.READ,
             get_attachment),
    Endpoint("POST", "/api/messages/{id}/ack", "Acknowledge (received and understood); signs a receipt back",
             Permission.SEND, post_ack),
    Endpoint("GET", "/api/journal/verify", "Verify the hash chain and every signature", Permission.AUDIT,
             get_verify),
    Endpoint("GET", "/api/journal/export", "Export the journal as JSON lines (?from=SEQ)", Permission.AUDIT,
             get_export),
    Endpoint("GET", "/api/users", "List users", Permission.ADMINISTER, list_users),
    Endpoint("POST", "/api/users", "Add a user", Permission.ADMINISTER, post_user,
             "{name, role, password, lang}"),
    Endpoint("DELETE", "/api/users/{name}", "Remove a user", Permission.ADMINISTER, delete_user),
    Endpoint("GET", "/api/tokens", "List API tokens (never their secrets)", Permission.ADMINISTER, list_tokens),
    Endpoint("POST", "/api/tokens", "Create an API token (the secret is shown once)", Permission.ADMINISTER,
             post_token, "{role, label}"),
    Endpoint("DELETE", "/api/tokens/{id}", "Revoke an API token", Permission.ADMINISTER, delete_token),
    Endpoint("GET", "/api/events", "Server-sent events: received, delivered, acknowledged, alarm, desk, status",
             Permission.READ, events),
    *(Endpoint(*row) for row in desk.endpoints()),
    *(Endpoint(*row) for row in notify.endpoints()),
    *(Endpoint(*row) for row in channels.endpoints()),
    Endpoint("GET", "/metrics", "Prometheus metrics: paths, round trips, queues, message counts, alarms, journal",
             Permission.METRICS, get_metrics),
]  # fmt: skip


def openapi_schema() -> dict[str, Any]:
    paths: dict[str, dict[str, Any]] = {}
    for e in ENDPOINTS:
        path = e.path.replace(":int}", "}")
        operation: dict[str, Any] = {
            "summary": e.summary,
            "operationId": e.handler.__name__,
            "responses": {
                "200" if e.method != "POST" or e.permission is None else "201": {"description": "success"},
                "400": {"description": 'bad input, with {"error": reason}'},
                "401": {"description": "not logged in, or an unknown token"},
                "403": {"description": "the role may not do this, or the CSRF token is missing"},
                "421": {"description": "the Host header is not a loopback name (the console listens on loopback)"},
            },
        }
        if e.path.startswith(("/api/calls", "/api/commitments", "/api/notifications")):
            operation["responses"]["404"] = {"description": "no call, commitment or notification with that id"}
            if e.method == "POST":
                operation["responses"]["409"] = {"description": "the desk refuses the act in the present state of "
                                                  "the call, commitment or notification, with its reason"}  # fmt: skip
        if e.body:
            operation["responses"]["413"] = {"description": "the body is larger than this endpoint takes"}
            operation["responses"]["415"] = {"description": "the body is not application/json"}
        params = [p for p in e.path.split("/") if p.startswith("{")]
        if params:
            operation["parameters"] = [
                {"name": p.split(":")[0].strip("{}"), "in": "path", "required": True,
                 "schema": {"type": "integer", "minimum": 0} if p.endswith(":int}") else {"type": "string"}}
                for p in params
            ]  # fmt: skip
        if e.permission is None:
            operation["security"] = []
        else:
            operation["description"] = f"Requires the {e.permission.value!r} permission: " + ", ".join(
                r.value for r in Role if e.permission in GRANTS[r]
            )
        if e.body:
            operation["requestBody"] = {"description": e.body, "content": {"application/json": {"schema": {}}}}
        paths.setdefault(path, {})[e.method.lower()] = operation
    return {
        "openapi": "3.1.0",
        "info": {"title": "Hotline terminal API", "version": "1"},
        "components": {
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer"},
                "session": {"type": "apiKey", "in": "cookie", "name": SESSION_COOKIE},
            }
        },
        "security": [{"bearer": []}, {"session": []}],
        "paths": paths,
    }


async def get_openapi(request: Request) -> Response:
    return ok(openapi_schema())
