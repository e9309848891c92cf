"""The desk in the console: the Calls page, a call's page (both readouts side by side), Commitments.

Plain HTML forms, like the rest of the console; each act goes through ``web.desk``
(the same acts, checks and refusals as the API) and back to the page it came
from. The lists live in fragments that the console's script refetches when the
terminal reports a ``desk`` event — a record journaled here or received from the
peer — so a request from the other side appears without a reload.
"""

from __future__ import annotations

from typing import Any

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from hotline.core.access import Permission
from hotline.desk.records import CommitmentKind, Disclosure, RecordType
from hotline.web.auth import authenticate
from hotline.web.console import _next, _page, render
from hotline.web.context import ApiContext, context
from hotline.web.desk import (
    CALL_ACTS,
    build_act,
    call_detail,
    calls_listing,
    commitments_listing,
    do_act,
    find_thread,
    resolve_commitment_call,
)
from hotline.web.forms import read_form
from hotline.web.i18n import localize

PRECEDENCES = ("routine", "priority", "immediate", "flash")
DISCLOSURES = tuple(d.value for d in Disclosure)
KINDS = tuple(k.value for k in CommitmentKind)
# The console's commitment buttons, as desk acts: fulfil, lapse and withdraw are status changes.
COMMITMENT_BUTTONS = {"agree": ("commitment.agree", ""), "decline": ("commitment.decline", ""),
                      "fulfil": ("commitment.status", "fulfilled"), "lapse": ("commitment.status", "lapsed"),
                      "withdraw": ("commitment.status", "withdrawn"), "round": ("commitment.round", "")}  # fmt: skip


def _calls_values(ctx: ApiContext) -> dict[str, Any]:
    calls = calls_listing(ctx)
    waiting = [c for c in calls if c["state"] in ("proposed", "countered", "unanswered")]
    waiting.sort(key=lambda c: (not c["ours_to_answer"], c["answer_by_ns"] or 2**63, c["proposed_at_ns"]))
    return {"calls": calls[::-1], "waiting": waiting, "live": [c for c in calls if c["state"] == "live"],
            "me": ctx.terminal.name}  # fmt: skip


def _form_values(form: Any) -> dict[str, Any]:
    return {k: v for k, v in form.items() if k not in ("csrf", "next") and isinstance(v, str)}


async def calls_page(request: Request) -> Response:
    session = await _page(request)
    ctx = context(request)
    return render(request, "calls.html", session, **_calls_values(ctx), **_propose_defaults(ctx))


def _propose_defaults(ctx: ApiContext, fields: dict[str, Any] | None = None, error: str = "") -> dict[str, Any]:
    return {"peers": ctx.terminal.peer_names(), "precedences": PRECEDENCES, "disclosures": DISCLOSURES,
            "fields": fields or {"precedence": "routine", "disclosure": "confidential", "answer_within": "30m"},
            "error": error}  # fmt: skip


async def propose_call(request: Request) -> Response:
    form = await read_form(request)
    session = await _page(request, Permission.SEND, form)
    ctx = context(request)
    fields = _form_values(form)
    try:
        await do_act(ctx, build_act("call.propose", fields, ctx.now_ns(), form=True), session.user)
    except HTTPException as e:  # shown on the form, with everything typed kept
        return render(request, "calls.html", session, status_code=e.status_code, **_calls_values(ctx),
                      **_propose_defaults(ctx, fields, localize(str(e.detail), session.user.lang)))  # fmt: skip
    return RedirectResponse("/calls", status_code=303)


async def call_act(request: Request) -> Response:
    act = request.path_params["act"]
    if act not in CALL_ACTS:
        raise HTTPException(404, f"no call action {act!r}")
    form = await read_form(request)
    who = await authenticate(request, Permission.SEND, form=form)
    ctx = context(request)
    call_id = find_thread(ctx.terminal.register(), request.path_params["id"], RecordType.CALL_PROPOSE)
    await do_act(ctx, build_act(f"call.{act}", _form_values(form), ctx.now_ns(), thread=call_id, form=True), who)
    return RedirectResponse(_next(request, f"/calls/{call_id}"), status_code=303)


async def call_page(request: Request) -> Response:
    session = await _page(request)
    ctx = context(request)
    call_id = find_thread(ctx.terminal.register(), request.path_params["id"], RecordType.CALL_PROPOSE)
    return render(request, "call.html", session, c=call_detail(ctx, call_id), me=ctx.terminal.name,
                  disclosures=DISCLOSURES, kinds=KINDS)  # fmt: skip


async def add_readout(request: Request) -> Response:
    form = await read_form(request)
    who = await authenticate(request, Permission.SEND, form=form)
    ctx = context(request)
    call_id = find_thread(ctx.terminal.register(), request.path_params["id"], RecordType.CALL_PROPOSE)
    await do_act(ctx, build_act("readout.add", _form_values(form), ctx.now_ns(), thread=call_id, form=True), who)
    return RedirectResponse(f"/calls/{call_id}", status_code=303)


async def commitments_page(request: Request) -> Response:
    session = await _page(request)
    ctx = context(request)
    return render(request, "commitments.html", session, items=commitments_listing(ctx), me=ctx.terminal.name,
                  peers=ctx.terminal.peer_names(), disclosures=DISCLOSURES, kinds=KINDS)  # fmt: skip


async def propose_commitment(request: Request) -> Response:
    form = await read_form(request)
    who = await authenticate(request, Permission.SEND, form=form)
    ctx = context(request)
    act = build_act("commitment.propose", _form_values(form), ctx.now_ns(), form=True)
    await resolve_commitment_call(ctx, act)
    await do_act(ctx, act, who)
    return RedirectResponse(_next(request, "/commitments"), status_code=303)


async def commitment_act(request: Request) -> Response:
    button = request.path_params["act"]
    if button not in COMMITMENT_BUTTONS:
        raise HTTPException(404, f"no commitment action {button!r}")
    name, status = COMMITMENT_BUTTONS[button]
    form = await read_form(request)
    who = await authenticate(request, Permission.SEND, form=form)
    ctx = context(request)
    item = find_thread(ctx.terminal.register(), request.path_params["id"], RecordType.COMMITMENT_PROPOSE)
    fields = _form_values(form)
    if status:
        fields["status"] = status
        fields["reason"] = fields.get("reason", "").strip() or f"marked {status} in the console by {who.label}"
    await do_act(ctx, build_act(name, fields, ctx.now_ns(), thread=item, form=True), who)
    return RedirectResponse(_next(request, "/commitments"), status_code=303)


# -- fragments, refetched live --------------------------------------------------------------------


async def calls_fragment(request: Request) -> Response:
    session = await _page(request)
    return render(request, "_calls.html", session, **_calls_values(context(request)))


async def call_fragment(request: Request) -> Response:
    session = await _page(request)
    ctx = context(request)
    call_id = find_thread(ctx.terminal.register(), request.query_params.get("id", ""), RecordType.CALL_PROPOSE)
    return render(request, "_call.html", session, c=call_detail(ctx, call_id), me=ctx.terminal.name)


async def commitments_fragment(request: Request) -> Response:
    session = await _page(request)
    ctx = context(request)
    return render(request, "_commitments.html", session, items=commitments_listing(ctx), me=ctx.terminal.name)


def routes() -> list[BaseRoute]:
    """Listed before the console's own routes (its ``/fragments/{name}`` would take these)."""
    return [
        Route("/calls", calls_page, methods=["GET"]),
        Route("/calls", propose_call, methods=["POST"]),
        Route("/calls/{id}", call_page, methods=["GET"]),
        Route("/calls/{id}/readouts", add_readout, methods=["POST"]),
        Route("/calls/{id}/{act}", call_act, methods=["POST"]),
        Route("/commitments", commitments_page, methods=["GET"]),
        Route("/commitments", propose_commitment, methods=["POST"]),
        Route("/commitments/{id}/{act}", commitment_act, methods=["POST"]),
        Route("/fragments/calls", calls_fragment, methods=["GET"]),
        Route("/fragments/call", call_fragment, methods=["GET"]),
        Route("/fragments/commitments", commitments_fragment, methods=["GET"]),
    ]
