"""Formatted notifications over HTTP: the form types, the notifications held, sending and acknowledging.

Like the rest of the desk (``web.desk``), a notification becomes a desk act
(``{"act": "notify", ...}``) taken through the terminal's port, which checks, signs,
journals and sends it, as the CLI does. Its form is checked against the form type
first, in the caller's language: a form that fails is the caller's mistake (400),
answered with every failing field as ``errors: [{path, text}]`` and nothing
journaled. An id that names no notification is 404; an act the desk refuses in
the notification's present state (acknowledging one's own, or twice) is 409.

Everything is read in the caller's language: ``?lang=``, else a console user's
own, else the request's Accept-Language, else English. Codes and numbers travel;
labels and the names of codes come from each form type's catalogues.
"""

from __future__ import annotations

import re
from typing import Any

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from hotline.core.access import Permission, Principal
from hotline.core.errors import ConfigError, DeskError
from hotline.core.times import parse_time, rfc3339
from hotline.desk.forms import FieldError, FormRegistry, FormType
from hotline.desk.notices import notice_view, refusals_sent, tallies
from hotline.desk.records import DeskRecord, RecordType
from hotline.desk.register import with_times
from hotline.web.auth import authenticate
from hotline.web.context import ApiContext, context
from hotline.web.desk import do_act, ok, record_view
from hotline.web.forms import read_json
from hotline.web.i18n import localize

NOTIFY_FIELDS = ("form", "to", "data", "answers")
_LANG_TAG = re.compile(r"^[A-Za-z]{2,3}(-[A-Za-z0-9]{2,8}){0,2}$")


class FormRefused(HTTPException):
    """A form its type refuses: 400, with each failing field named in the caller's language
    (``errors``, ``in_lang``) and, for programs and logs, the detail in English."""

    def __init__(self, form: FormType, errors: list[FieldError], errors_en: list[FieldError]) -> None:
        super().__init__(400, f"the {form.id} form is refused: " + "; ".join(e.text for e in errors_en))
        self.errors = errors
        self.in_lang = f"the {form.id} form is refused: " + "; ".join(e.text for e in errors)


def caller_lang(request: Request, who: Principal) -> str:
    """The language the caller reads forms in."""
    asked = request.query_params.get("lang", "")
    if _LANG_TAG.match(asked):
        return asked
    if who.via == "session":
        return who.lang
    for part in request.headers.get("accept-language", "").split(","):
        tag = part.split(";")[0].strip()
        if _LANG_TAG.match(tag):
            return tag
    return "en"


def form_listing(forms: FormRegistry, lang: str) -> list[dict[str, Any]]:
    """Every form type with its fields described in ``lang`` (for a generated form)."""
    return [
        {"id": t.id, "title": t.title(lang), "precedence": t.precedence.label, "handling_s": t.handling_s,
         "lead_s": t.lead_s, "lead_field": t.lead_field, "answers": t.answers, "sha256": t.digest.hex(),
         "fields": t.fields(lang)}
        for t in sorted(forms.types.values(), key=lambda t: t.id)
    ]  # fmt: skip


def notifications_listing(ctx: ApiContext, lang: str) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Every notification held, newest first, rendered in ``lang``; and the peer's notifications this
    side could not take in (refused here, with the reason)."""
    register, forms, now = ctx.terminal.register(), ctx.terminal.forms(), ctx.now_ns()
    answered = register.answered_by()
    views = [with_times(notice_view(n, forms, lang, now, answered.get(n.id))) for n in register.notices()]
    for v in views:
        v["ours_to_ack"] = v["peer"] == ctx.terminal.name and v["status"] == "open"
        known = forms.types.get(v["form"])
        v["precedence"] = known.precedence.label if known else "routine"
    views.reverse()
    refused_here = [
        {"id": r.thread, "form": r.fields["form"], "title": _title(forms, r.fields["form"], lang),
         "refused": r.fields["reason"], "refused_at_ns": r.at_ns, "refused_at": rfc3339(r.at_ns), "author": r.peer}
        for r in refusals_sent(register.threads(RecordType.NOTIFICATION_REFUSED), ctx.terminal.name)
    ][::-1]  # fmt: skip
    return views, refused_here


def _title(forms: FormRegistry, form_id: str, lang: str) -> str:
    form = forms.types.get(form_id)
    return form.title(lang) if form else form_id


def filtered(views: list[dict[str, Any]], kind: str = "", since: str = "", until: str = "") -> list[dict[str, Any]]:
    """Only one form type, and only those sent at or after ``since`` and before ``until`` (RFC 3339 or a date)."""
    if kind:
        views = [v for v in views if v["form"] == kind]
    try:
        if since:
            start = parse_time(since, "'from'")
            views = [v for v in views if v["sent_at_ns"] >= start]
        if until:
            end = parse_time(until, "'to'")
            views = [v for v in views if v["sent_at_ns"] < end]
    except ConfigError as e:
        raise HTTPException(400, str(e)) from None
    return views


def find_notification(ctx: ApiContext, given: str) -> str:
    """The full id of the notification an id, or its start, names; 404 if none."""
    register = ctx.terminal.register()
    try:
        thread = register.find(given)
    except DeskError as e:
        if "give more of the id" in str(e):
            raise HTTPException(400, str(e)) from None
        raise HTTPException(404, f"no notification with id {given}; see GET /api/notifications") from None
    if register.thread_kind(thread) is not RecordType.NOTIFICATION:
        raise HTTPException(404, f"no notification with id {given}; see GET /api/notifications")
    return thread


def notification_detail(ctx: ApiContext, notice_id: str, lang: str) -> dict[str, Any]:
    """One notification in ``lang``, with what it answers and what answers it (id, title, status), and
    the form types that answer it (a response the reader may send)."""
    views, _ = notifications_listing(ctx, lang)
    by_id = {v["id"]: v for v in views}
    view = by_id.get(notice_id)
    if view is None:
        raise HTTPException(404, f"no notification with id {notice_id}; see GET /api/notifications")

    def brief(other: str) -> dict[str, Any]:
        found = by_id.get(other, {})
        return {"id": other, "form": found.get("form", ""), "title": found.get("title", other),
                "status": found.get("status", ""), "author": found.get("author", ""),
                "data": found.get("data", {}), "fields": found.get("fields", [])}  # fmt: skip

    forms = ctx.terminal.forms()
    view["answers_view"] = brief(view["answers"]) if view["answers"] else None
    view["answered_by_view"] = [brief(other) for other in view["answered_by"]]
    view["responses"] = [
        {"id": t.id, "title": t.title(lang)} for t in sorted(forms.types.values(), key=lambda t: t.id)
        if t.answers == view["form"]
    ]  # fmt: skip
    return view


def check_notification(ctx: ApiContext, given: dict[str, Any], lang: str) -> dict[str, Any]:
    """The ``notify`` act for what a caller sent, its form checked in ``lang`` (``FormRefused``, 400)."""
    unknown = sorted(set(given) - set(NOTIFY_FIELDS))
    if unknown:
        raise HTTPException(400, f"a notification takes {', '.join(NOTIFY_FIELDS)}; not {', '.join(unknown)}")
    form_id, to, data, answers = (given.get(k) for k in NOTIFY_FIELDS)
    if not isinstance(form_id, str) or not form_id:
        raise HTTPException(400, "'form' (the form type) is required; see GET /api/forms")
    forms = ctx.terminal.forms()
    if form_id not in forms.types:
        raise HTTPException(400, f"no form type {form_id!r}; see GET /api/forms")
    form = forms.types[form_id]
    if not isinstance(to, str) or not to:
        raise HTTPException(400, "'to' (the peer's name) is required; see GET /api/peers")
    if to.strip().lower() not in ctx.terminal.peer_names():
        raise HTTPException(400, f"no peer named {to!r}; see GET /api/peers")
    if not isinstance(data, dict):
        raise HTTPException(400, "'data' must be the form's fields, a JSON object")
    if answers is not None and not isinstance(answers, str):
        raise HTTPException(400, "'answers' must be the id of the notification this one answers")
    errors = form.validate(data, lang, forms.areas)
    if errors:
        raise FormRefused(form, errors, errors if lang == "en" else form.validate(data, "en", forms.areas))
    if answers and not form.answers:
        raise HTTPException(400, f"a {form.id} answers nothing; send it without 'answers'")
    if form.answers and not answers:
        raise HTTPException(400, f"a {form.id} answers a {form.answers}: name it in 'answers'")
    act: dict[str, Any] = {"act": "notify", "to": to, "form": form.id, "data": data, "answers": "", "ui_lang": lang}
    if answers:
        act["answers"] = find_notification(ctx, answers)
    return act


async def send_notification(ctx: ApiContext, given: dict[str, Any], who: Principal, lang: str) -> DeskRecord:
    return await do_act(ctx, check_notification(ctx, given, lang), who)


async def acknowledge_notification(ctx: ApiContext, notice_id: str, who: Principal) -> DeskRecord:
    return await do_act(ctx, {"act": "notification.ack", "id": notice_id, "by": who.label}, who)


# -- the JSON API -------------------------------------------------------------------------------


async def list_forms(request: Request) -> Response:
    who = await authenticate(request, Permission.READ)
    forms = context(request).terminal.forms()
    lang = caller_lang(request, who)
    return ok({"types": form_listing(forms, lang), "areas": sorted(forms.areas), "lang": lang})


async def list_notifications(request: Request) -> Response:
    who = await authenticate(request, Permission.READ)
    q = request.query_params
    views, refused_here = notifications_listing(context(request), caller_lang(request, who))
    views = filtered(views, q.get("type", ""), q.get("from", ""), q.get("to", ""))
    return ok({"notifications": views, "refused_here": refused_here, "tallies": tallies(views),
               "total": len(views)})  # fmt: skip


async def get_notification(request: Request) -> Response:
    who = await authenticate(request, Permission.READ)
    ctx = context(request)
    notice_id = find_notification(ctx, request.path_params["id"])
    return ok(notification_detail(ctx, notice_id, caller_lang(request, who)))


async def post_notification(request: Request) -> Response:
    who = await authenticate(request, Permission.SEND)
    ctx = context(request)
    lang = caller_lang(request, who)
    body = await read_json(request)
    try:
        record = await send_notification(ctx, body, who, lang)
    except FormRefused as e:
        errors = [{"path": x.path, "text": x.text} for x in e.errors]
        return JSONResponse({"error": localize(e.in_lang, lang), "error_en": e.detail, "errors": errors},
                            status_code=400)  # fmt: skip
    return ok({**notification_detail(ctx, record.thread, lang), "record": record_view(record)}, 201)


async def post_notification_ack(request: Request) -> Response:
    who = await authenticate(request, Permission.SEND)
    ctx = context(request)
    notice_id = find_notification(ctx, request.path_params["id"])
    body = await read_json(request) if request.headers.get("content-length", "0") != "0" else {}
    if body:
        raise HTTPException(400, "an acknowledgement takes no fields: it is signed for the caller")
    record = await acknowledge_notification(ctx, notice_id, who)
    return ok({**notification_detail(ctx, notice_id, caller_lang(request, who)), "record": record_view(record)})


def endpoints() -> list[tuple[str, str, str, Permission, Any, str]]:
    """(method, path, summary, permission, handler, body) for ``api.ENDPOINTS``."""
    return [
        ("GET", "/api/forms", "Form types of formatted notifications, with their fields in the caller's language "
         "(?lang=)", Permission.READ, list_forms, ""),
        ("GET", "/api/notifications", "Formatted notifications, newest first, with tallies (?type=&from=&to=)",
         Permission.READ, list_notifications, ""),
        ("POST", "/api/notifications", "Send a formatted notification (400 with errors [{path, text}] if its form "
         "fails)", Permission.SEND, post_notification, "{form, to, data, answers}"),
        ("GET", "/api/notifications/{id}", "A notification rendered in the caller's language, with its answers",
         Permission.READ, get_notification, ""),
        ("POST", "/api/notifications/{id}/ack", "Acknowledge a notification received (signed, sent back)",
         Permission.SEND, post_notification_ack, "{}"),
    ]  # fmt: skip
