"""Formatted notifications in the console: the list with its tallies, a notification's page, and a
form generated from the form type's schema.

The "New notification" page draws its inputs from ``FormType.fields(lang)``: an
enumeration is a select naming its codes in the reader's language, a time a UTC
date-time input, a place latitude and longitude (or a named area), a list one
item a line (a list of codes, a multiple select), and required fields are
marked. The form is checked by the server, in the reader's language, not by the
browser (whose own messages speak the browser's language): a refused form comes
back with each error beside its field and everything typed kept. Sending and
acknowledging go through ``web.notify``, as the API's do.
"""

from __future__ import annotations

from typing import Any

from starlette.datastructures import FormData
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from hotline.core.access import Permission
from hotline.desk.forms import FieldError, FormType
from hotline.desk.notices import tallies
from hotline.web.auth import authenticate
from hotline.web.console import _page, render, request_lang
from hotline.web.context import ApiContext, context
from hotline.web.forms import read_form
from hotline.web.i18n import localize
from hotline.web.notify import (
    FormRefused,
    acknowledge_notification,
    find_notification,
    notification_detail,
    notifications_listing,
    send_notification,
)

BAR_WIDTH = 120  # px, the longest bar of a tally
PREFIX = "f:"  # the names of the generated inputs: f:<field path>[.lat|.lon|.area]


# -- the list and its tallies ---------------------------------------------------------------------


def _bar(count: int, top: int) -> int:
    return max(2, round(count * BAR_WIDTH / top)) if count and top else 0


def tally_rows(views: list[dict[str, Any]], titles: dict[str, str]) -> dict[str, Any]:
    """The tallies as rows a template draws as bars: per type and month, late per type, and violation
    reports by status."""
    t = tallies(views)
    per = [(form, month, n) for form, months in t["per_type_and_month"].items() for month, n in months.items()]
    per.sort(key=lambda row: (row[1], titles.get(row[0], row[0])), reverse=True)
    top = max((n for _, _, n in per), default=0)
    late = sorted(t["late"].items())
    late_top = max((n for _, n in late), default=0)
    reports = t["violation_reports"]
    reports_top = max(reports.values(), default=0)
    return {
        "per_month": [{"form": f, "title": titles.get(f, f), "month": m, "count": n, "width": _bar(n, top)}
                      for f, m, n in per],
        "late": [{"form": f, "title": titles.get(f, f), "count": n, "width": _bar(n, late_top)} for f, n in late],
        "reports": [{"status": s, "count": reports[s], "width": _bar(reports[s], reports_top)}
                    for s in ("answered", "disputed", "open")],
        "total": t["total"],
    }  # fmt: skip


def _list_values(ctx: ApiContext, lang: str) -> dict[str, Any]:
    views, refused_here = notifications_listing(ctx, lang)
    titles = {t.id: t.title(lang) for t in ctx.terminal.forms().types.values()}
    return {"notices": views, "refused_here": refused_here, "tally": tally_rows(views, titles),
            "me": ctx.terminal.name}  # fmt: skip


async def notifications_page(request: Request) -> Response:
    session = await _page(request)
    ctx = context(request)
    return render(request, "notifications.html", session, **_list_values(ctx, request_lang(request, session.user)))


async def notifications_fragment(request: Request) -> Response:
    session = await _page(request)
    ctx = context(request)
    return render(request, "_notifications.html", session, **_list_values(ctx, request_lang(request, session.user)))


# -- one notification -----------------------------------------------------------------------------


async def notification_page(request: Request) -> Response:
    session = await _page(request)
    ctx = context(request)
    notice_id = find_notification(ctx, request.path_params["id"])
    n = notification_detail(ctx, notice_id, request_lang(request, session.user))
    return render(request, "notification.html", session, n=n, me=ctx.terminal.name)


async def notification_fragment(request: Request) -> Response:
    session = await _page(request)
    ctx = context(request)
    notice_id = find_notification(ctx, request.query_params.get("id", ""))
    n = notification_detail(ctx, notice_id, request_lang(request, session.user))
    return render(request, "_notification.html", session, n=n, me=ctx.terminal.name)


async def ack_notification(request: Request) -> Response:
    form = await read_form(request)
    who = await authenticate(request, Permission.SEND, form=form)
    ctx = context(request)
    notice_id = find_notification(ctx, request.path_params["id"])
    await acknowledge_notification(ctx, notice_id, who)
    return RedirectResponse(f"/notifications/{notice_id}", status_code=303)


# -- the generated form ---------------------------------------------------------------------------


def _number(text: str) -> Any:
    """A number as typed; text that is not one stays text, and the form's schema names the field."""
    try:
        return int(text)
    except ValueError:
        pass
    try:
        return float(text)
    except ValueError:
        return text


def _utc_time(text: str) -> str:
    """A date-time input's value (no offset: the form says UTC) as RFC 3339; other text as typed."""
    if len(text) == 16 and text[10:11] == "T":
        return text + ":00Z"
    if len(text) == 19 and text[10:11] == "T":
        return text + "Z"
    return text


def _put(data: dict[str, Any], path: str, value: Any) -> None:
    parts = path.split(".")
    node = data
    for part in parts[:-1]:
        node = node.setdefault(part, {})
    node[parts[-1]] = value


def form_data(fields: list[dict[str, Any]], form: FormData) -> tuple[dict[str, Any], dict[str, Any]]:
    """The form's data from a generated form's inputs (an empty input is left out), and what was typed
    in each input (to show it again)."""
    data: dict[str, Any] = {}
    typed: dict[str, Any] = {}
    for f in fields:
        name = PREFIX + f["path"]
        if f["kind"] == "place":
            lat, lon, area = (str(form.get(f"{name}.{part}", "")).strip() for part in ("lat", "lon", "area"))
            typed.update({f"{name}.lat": lat, f"{name}.lon": lon, f"{name}.area": area})
            if area:
                _put(data, f["path"], {"area": area})
            elif lat or lon:
                _put(data, f["path"], {k: _number(v) for k, v in (("lat", lat), ("lon", lon)) if v})
            continue
        if f["kind"] == "list" and f.get("choices"):
            chosen = [str(v) for v in form.getlist(name) if str(v)]
            typed[name] = chosen
            if chosen:
                _put(data, f["path"], chosen)
            continue
        text = str(form.get(name, ""))
        typed[name] = text
        if not text.strip():
            continue
        if f["kind"] == "list":
            lines = [line.strip() for line in text.splitlines() if line.strip()]
            numeric = f.get("item_kind") in ("integer", "number")
            _put(data, f["path"], [_number(line) if numeric else line for line in lines])
        elif f["kind"] in ("integer", "number"):
            _put(data, f["path"], _number(text.strip()))
        elif f["kind"] == "date-time":
            _put(data, f["path"], _utc_time(text.strip()))
        elif f["kind"] == "enum":
            _put(data, f["path"], text.strip())
        else:
            _put(data, f["path"], text)
    return data, typed


def errors_by_field(fields: list[dict[str, Any]], errors: list[FieldError]) -> tuple[dict[str, list[str]], list[str]]:
    """Each error beside the field it concerns (a place's lat, lon or area, a list's item: the field
    itself; a group of fields left out whole: its first field); those that name no field, for the top
    of the form."""
    paths = sorted((f["path"] for f in fields), key=len, reverse=True)
    beside: dict[str, list[str]] = {}
    rest: list[str] = []
    for e in errors:
        owner = next((p for p in paths if e.path == p or e.path.startswith(p + ".")), None)
        if owner is None and e.path:
            owner = next((f["path"] for f in fields if f["path"].startswith(e.path + ".")), None)
        if owner is None:
            rest.append(e.text)
        else:
            beside.setdefault(owner, []).append(e.text)
    return beside, rest


def _new_values(ctx: ApiContext, lang: str, form: FormType | None, given: dict[str, str]) -> dict[str, Any]:
    forms = ctx.terminal.forms()
    chooser = [{"id": t.id, "title": t.title(lang), "answers": t.answers}
               for t in sorted(forms.types.values(), key=lambda t: t.title(lang))]  # fmt: skip
    values: dict[str, Any] = {
        "chooser": chooser, "form": None, "peers": ctx.terminal.peer_names(), "to": given.get("to", ""),
        "answers": given.get("answers", ""), "answered": None, "typed": {}, "beside": {}, "errors": [], "error": "",
        "areas": sorted(forms.areas),
    }  # fmt: skip
    if form is not None:
        values["form"] = {"id": form.id, "title": form.title(lang), "answers": form.answers,
                          "precedence": form.precedence.label, "fields": form.fields(lang)}  # fmt: skip
    if values["answers"]:
        try:
            values["answered"] = notification_detail(ctx, find_notification(ctx, values["answers"]), lang)
        except HTTPException:
            values["answered"] = None
    return values


def _chosen_form(ctx: ApiContext, form_id: str) -> FormType | None:
    if not form_id:
        return None
    found = ctx.terminal.forms().types.get(form_id)
    if found is None:
        raise HTTPException(404, f"no form type {form_id!r}")
    return found


async def new_notification_page(request: Request) -> Response:
    session = await _page(request, Permission.SEND)
    ctx = context(request)
    q = request.query_params
    values = _new_values(ctx, request_lang(request, session.user), _chosen_form(ctx, q.get("form", "")),
                         {"to": q.get("to", ""), "answers": q.get("answers", "")})  # fmt: skip
    return render(request, "notify.html", session, **values)


async def send_notification_form(request: Request) -> Response:
    form = await read_form(request)
    session = await _page(request, Permission.SEND, form)
    ctx = context(request)
    lang = request_lang(request, session.user)
    chosen = _chosen_form(ctx, str(form.get("form", "")))
    if chosen is None:
        raise HTTPException(400, "choose a form type")
    given = {"to": str(form.get("to", "")), "answers": str(form.get("answers", ""))}
    values = _new_values(ctx, lang, chosen, given)
    data, values["typed"] = form_data(values["form"]["fields"], form)
    body = {"form": chosen.id, "to": given["to"], "data": data, **({"answers": given["answers"]}
                                                                   if given["answers"] else {})}  # fmt: skip
    try:
        record = await send_notification(ctx, body, session.user, lang)
    except FormRefused as e:  # each error beside its field, with everything typed kept
        values["beside"], values["errors"] = errors_by_field(values["form"]["fields"], e.errors)
        return render(request, "notify.html", session, status_code=400, **values)
    except HTTPException as e:
        values["error"] = localize(str(e.detail), lang)
        return render(request, "notify.html", session, status_code=e.status_code, **values)
    return RedirectResponse(f"/notifications/{record.thread}", status_code=303)


def routes() -> list[BaseRoute]:
    """Listed before the console's own routes (its ``/fragments/{name}`` would take these)."""
    return [
        Route("/notifications", notifications_page, methods=["GET"]),
        Route("/notifications/new", new_notification_page, methods=["GET"]),
        Route("/notifications/new", send_notification_form, methods=["POST"]),
        Route("/notifications/{id}", notification_page, methods=["GET"]),
        Route("/notifications/{id}/ack", ack_notification, methods=["POST"]),
        Route("/fragments/notifications", notifications_fragment, methods=["GET"]),
        Route("/fragments/notification", notification_fragment, methods=["GET"]),
    ]
