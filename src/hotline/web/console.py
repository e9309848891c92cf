"""The operator console: server-rendered pages (Jinja2) with a little JavaScript.

Pages are plain HTML forms that work without script; the script adds live
updates (server-sent events from ``/api/events`` trigger a refetch of the
fragments marked ``data-live``) and the flash takeover: an unacknowledged
incoming flash message covers the screen with a visible and audible alert until
a person acknowledges it. Every string a person reads comes from a gettext
catalogue (``web/locale``, managed with Babel), in the user's own language.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any
from urllib.parse import quote

from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from hotline.core import times
from hotline.core.access import LANGUAGES, Permission, Principal, Session
from hotline.core.errors import HotlineError
from hotline.core.model import Precedence, canonical_message_id
from hotline.web.actions import MESSAGE_FIELDS, acknowledge, message_view, send_message, status_view, verify_journal
from hotline.web.auth import authenticate, current_session, end_session, set_session_cookie, start_session
from hotline.web.channels import channel_flashes
from hotline.web.context import ApiContext, context
from hotline.web.forms import form_attachments, read_form
from hotline.web.i18n import DEFAULT_LANG, N_, language_name, localize, negotiate, translations

WEB = Path(__file__).parent


# Words that templates translate by value (``_(m.state)``).
WORDS = [
    N_("flash"), N_("immediate"), N_("priority"), N_("routine"),
    N_("queued"), N_("sent"), N_("delivered"), N_("received"), N_("created"), N_("read"), N_("acknowledged"),
    N_("operator"), N_("supervisor"), N_("auditor"),
    # the desk: calls, commitments, disclosure levels
    N_("proposed"), N_("unanswered"), N_("countered"), N_("accepted"), N_("live"), N_("ended"), N_("declined"),
    N_("withdrawn"), N_("agreed"), N_("overdue"), N_("fulfilled"), N_("lapsed"),
    N_("public"), N_("confidential"), N_("secret"),
    N_("meeting"), N_("summit"), N_("exchange"), N_("moratorium"), N_("other"),
    N_("call.propose"), N_("call.accept"), N_("call.decline"), N_("call.counter"), N_("call.withdraw"),
    N_("call.start"), N_("call.end"), N_("call.note"), N_("readout"), N_("commitment.propose"),
    N_("commitment.agree"), N_("commitment.decline"), N_("commitment.status"), N_("commitment.round"),
    # channels: a member's state and link
    N_("joined"), N_("invited"), N_("left"), N_("removed"), N_("up"), N_("down"), N_("unknown (terminal stopped)"),
]  # fmt: skip


_MARKING_COLOURS = {"unclassified", "confidential", "secret", "top-secret"}


def marking_class(marking: str) -> str:
    """The CSS class for a marking's colour: its level before any caveat (SECRET//NOFORN is
    secret); a marking of another scheme gets the neutral colour."""
    level = marking.split("//", maxsplit=1)[0].strip().lower().replace(" ", "-")
    return level if level in _MARKING_COLOURS else "other"


@functools.cache
def environment(lang: str) -> Environment:
    env = Environment(
        loader=FileSystemLoader(WEB / "templates"),
        autoescape=select_autoescape(["html"]),
        extensions=["jinja2.ext.i18n"],
    )
    env.install_gettext_translations(translations(lang), newstyle=True)  # type: ignore[attr-defined]
    env.filters["marking"] = marking_class
    env.filters["when"] = lambda ns: times.rfc3339(ns).replace("T", " ")[:19] + "Z" if ns else "—"
    return env


def request_lang(request: Request, user: Principal | None) -> str:
    if user is not None:
        return user.lang
    asked = request.query_params.get("lang")
    if asked in LANGUAGES:
        return asked
    return negotiate(request.headers.get("accept-language", "")) or DEFAULT_LANG


def error_lang(request: Request) -> str:
    """The language a refusal is read in: a console user's own (by the session cookie), else the
    request's ``?lang=`` or Accept-Language (a program with a bearer token), else English."""
    found = current_session(request)
    return request_lang(request, found[1].user if found else None)


def render(
    request: Request, template: str, session: Session | None, status_code: int = 200, **values: Any
) -> HTMLResponse:
    user = session.user if session else None
    lang = request_lang(request, user)
    ctx: ApiContext = request.app.state.ctx
    if user is not None:
        values.setdefault("status", status_view(ctx))
    page = environment(lang).get_template(template).render(
        request=request, user=user, csrf=session.csrf if session else "", lang=lang,
        languages=[(code, language_name(code)) for code in LANGUAGES],
        terminal=ctx.terminal.name, may=(lambda p: user is not None and user.may(Permission(p))),
        **values,
    )  # fmt: skip
    return HTMLResponse(page, status_code=status_code, headers=SECURITY_HEADERS)


SECURITY_HEADERS = {
    "content-security-policy": "default-src 'self'; style-src 'self'; script-src 'self'; frame-ancestors 'none'",
    "x-content-type-options": "nosniff",
    "referrer-policy": "same-origin",
    "cache-control": "no-store",
}


def error_page(request: Request, status: int, detail: str) -> Response:
    """An error as a page, its ``detail`` (English) read in the user's language."""
    found = current_session(request)
    if status == 401 and request.method == "GET":
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return RedirectResponse(f"/login?next={quote(target, safe='/')}", status_code=303)
    # "code", not "status": that name is the status bar's (peers, paths, alarms) on every page.
    return render(request, "error.html", found[1] if found else None, status_code=status, code=status,
                  detail=localize(detail, request_lang(request, found[1].user if found else None)))  # fmt: skip


def _session(request: Request) -> Session:
    found = current_session(request)
    if found is None:
        raise HTTPException(401, "log in first")
    return found[1]


async def _page(request: Request, permission: Permission = Permission.READ, form: Any = None) -> Session:
    """The session behind a page, checked for ``permission`` (and for CSRF if it is a form post)."""
    session = _session(request)
    await authenticate(request, permission, form=form)
    return session


def _next(request: Request, default: str = "/") -> str:
    target = request.query_params.get("next", default)
    return target if target.startswith("/") and not target.startswith("//") else default


def _flashes(ctx: ApiContext) -> list[dict[str, Any]]:
    """Incoming flash messages no person has acknowledged yet, a channel's too: they take over the screen."""
    return [
        m for m in ctx.store.messages("in", None, 200)
        if m["precedence"] == "flash" and m["acknowledged_at_ns"] is None
    ] + channel_flashes(ctx)  # fmt: skip


def _boxes(ctx: ApiContext) -> dict[str, Any]:
    return {"inbox": ctx.store.messages("in", None, 50)[::-1], "outbox": ctx.store.messages("out", None, 50)[::-1]}


# -- pages ------------------------------------------------------------------------------------


async def login_page(request: Request) -> Response:
    if request.method == "GET":
        return render(request, "login.html", None, next=_next(request))
    form = await read_form(request, login=True)
    name, password = str(form.get("name", "")), str(form.get("password", ""))
    try:
        session_id, _ = await start_session(request, name, password)
    except HTTPException as e:
        retry_after = (e.headers or {}).get("Retry-After", "")
        page = render(request, "login.html", None, status_code=e.status_code, next=_next(request), name=name,
                      failed=e.status_code, retry_after=retry_after)  # fmt: skip
        if retry_after:
            page.headers["retry-after"] = retry_after
        return page
    response = RedirectResponse(_next(request), status_code=303)
    set_session_cookie(request, response, session_id)
    return response


async def logout_page(request: Request) -> Response:
    form = await read_form(request)
    await authenticate(request, Permission.READ, form=form)
    response = RedirectResponse("/login", status_code=303)
    end_session(request, response)
    return response


async def set_lang(request: Request) -> Response:
    form = await read_form(request)
    who = await authenticate(request, Permission.READ, form=form)
    if who.via == "session":
        context(request).access.set_lang(who.name, str(form.get("lang", "")))
    return RedirectResponse(_next(request), status_code=303)


async def index(request: Request) -> Response:
    session = await _page(request)
    return render(request, "index.html", session, **_boxes(context(request)))


async def message_page(request: Request) -> Response:
    session = await _page(request)
    ctx = context(request)
    m = message_view(ctx, canonical_message_id(request.path_params["id"]))
    if m["direction"] == "in" and not m["read_at_ns"] and session.user.may(Permission.SEND):
        # An operator has it in front of them: that is "read", and the sender is told so.
        await acknowledge(ctx, m["id"], session.user, read_only=True)
        m = message_view(ctx, m["id"])
    return render(request, "message.html", session, m=m)


async def compose_page(request: Request) -> Response:
    form = await read_form(request) if request.method == "POST" else None
    session = await _page(request, Permission.SEND, form)
    who = session.user
    ctx = context(request)
    peers = ctx.terminal.peer_names()
    markings = ctx.terminal.markings
    values: dict[str, Any] = {"peers": peers, "precedences": [p.label for p in Precedence], "markings": markings,
                              "error": None, "fields": {"precedence": "routine", "lang": session.user.lang,
                                                        "classification": markings[0]}}  # fmt: skip
    if form is None:
        values["fields"]["to"] = request.query_params.get("to", "")
        return render(request, "compose.html", session, **values)
    fields = {k: str(form.get(k, "")) for k in MESSAGE_FIELDS}
    given = {k: v for k, v in fields.items() if v}  # a field left out takes the API's default (routine, en)
    try:
        message_id = await send_message(ctx, {**given, "attachments": await form_attachments(form)}, who)
    except (HTTPException, HotlineError) as e:  # shown on the form, with everything typed kept
        detail = e.detail if isinstance(e, HTTPException) else str(e)
        values.update(fields=fields, error=localize(detail, who.lang))
        return render(request, "compose.html", session, status_code=400, **values)
    return RedirectResponse(f"/messages/{message_id}", status_code=303)


async def ack_page(request: Request) -> Response:
    form = await read_form(request)
    who = await authenticate(request, Permission.SEND, form=form)
    message_id = canonical_message_id(request.path_params["id"])
    await acknowledge(context(request), message_id, who)
    return RedirectResponse(_next(request, f"/messages/{message_id}"), status_code=303)


async def alarms_page(request: Request) -> Response:
    session = await _page(request)
    return render(request, "alarms.html", session, alarms=context(request).terminal.alarms())


async def journal_page(request: Request) -> Response:
    session = await _page(request, Permission.AUDIT)
    report = await verify_journal(context(request)) if request.query_params.get("verify") else None
    return render(request, "journal.html", session, report=report)


# -- fragments, refetched live ----------------------------------------------------------------


async def fragment(request: Request) -> Response:
    session = await _page(request)
    ctx = context(request)
    name = request.path_params["name"]
    if name == "status":
        return render(request, "_status.html", session, status=status_view(ctx))
    if name == "boxes":
        return render(request, "_boxes.html", session, **_boxes(ctx))
    if name == "alarms":
        return render(request, "_alarms.html", session, alarms=ctx.terminal.alarms())
    if name == "flash":
        return render(request, "_flash.html", session, flashes=_flashes(ctx), back=request.query_params.get("at", "/"))
    if name == "message":
        message_id = request.query_params.get("id", "")
        return render(request, "_timeline.html", session, m=message_view(ctx, message_id))
    raise HTTPException(404, "no such fragment")


def routes() -> list[BaseRoute]:
    return [
        Route("/", index, methods=["GET"]),
        Route("/login", login_page, methods=["GET", "POST"]),
        Route("/logout", logout_page, methods=["POST"]),
        Route("/lang", set_lang, methods=["POST"]),
        Route("/compose", compose_page, methods=["GET", "POST"]),
        Route("/messages/{id}", message_page, methods=["GET"]),
        Route("/messages/{id}/ack", ack_page, methods=["POST"]),
        Route("/alarms", alarms_page, methods=["GET"]),
        Route("/journal", journal_page, methods=["GET"]),
        Route("/fragments/{name}", fragment, methods=["GET"]),
        Mount("/static", StaticFiles(directory=WEB / "static"), name="static"),
    ]
