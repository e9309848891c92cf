"""The desk over HTTP: calls, readouts and commitments for programs (JSON) and the console.

The API and the console's forms both turn what a caller sent into a desk act
(``desk.acts``) here, and take it through the terminal's port (``desk``), which
checks, signs, journals and sends it. A malformed act — an unknown field, a text
where a time belongs — is the caller's mistake (400); an act the state of the call
or commitment does not allow (accepting a call already declined, agreeing to one's
own commitment) is a conflict (409), with the desk's own words; an id that names
nothing is 404. Times go out as ``*_ns`` with RFC 3339 text beside them
(``register.with_times``), and come in as either.
"""

from __future__ import annotations

from typing import Any

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from hotline.core.access import Permission, Principal
from hotline.core.errors import ConfigError, DeskError
from hotline.core.times import parse_duration, parse_time
from hotline.desk.acts import check_act
from hotline.desk.compare import differences, latest_readouts
from hotline.desk.records import DeskRecord, RecordType
from hotline.desk.register import Register, call_view, commitment_view, readout_view, with_times
from hotline.web.auth import authenticate
from hotline.web.context import ApiContext, context
from hotline.web.forms import read_json

# What a caller may send for each act (besides the id in the path); anything else is refused.
ACT_FIELDS: dict[str, tuple[str, ...]] = {
    "call.propose": ("to", "subject", "agenda", "at", "duration_s", "answer_by", "answer_within", "precedence",
                     "disclosure", "every"),
    "call.accept": ("at",), "call.decline": ("reason",), "call.counter": ("at", "reason"),
    "call.withdraw": ("reason",), "call.start": (), "call.end": (), "call.note": ("text",),
    "readout.add": ("lang", "disclosure", "text", "shared"),
    "commitment.propose": ("to", "call", "title", "detail", "owner", "due", "kind", "disclosure", "starts", "ends",
                           "rounds"),
    "commitment.agree": (), "commitment.decline": ("reason",), "commitment.status": ("status", "reason"),
    "commitment.round": ("round", "done_at", "note"),
}  # fmt: skip
TIME_FIELDS = ("at", "answer_by", "due", "starts", "ends", "done_at")
COUNT_FIELDS = ("duration_s", "rounds", "round")
CALL_ACTS = ("accept", "decline", "counter", "withdraw", "start", "end", "note")
COMMITMENT_ACTS = ("agree", "decline", "status", "round")
OPEN_CALL = ("proposed", "countered", "unanswered", "accepted", "live")


def _time(value: Any, name: str, form: bool) -> int:
    """A time as integer nanoseconds, or RFC 3339 text; a console form's datetime-local (no
    offset) is UTC, as the form says."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if not isinstance(value, str):
        raise HTTPException(400, f"{name!r} must be a time: RFC 3339 text or integer nanoseconds")
    text = value.strip()
    if form and len(text) in (16, 19) and text[10:11] == "T":
        text += "Z"
    try:
        return parse_time(text, repr(name))
    except ConfigError as e:
        raise HTTPException(400, str(e)) from None


def _count(value: Any, name: str) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().isdigit():
        return int(value.strip())
    if isinstance(value, str) and name == "duration_s":
        try:
            return parse_duration(value, repr(name))
        except ConfigError as e:
            raise HTTPException(400, str(e)) from None
    raise HTTPException(400, f"{name!r} must be a whole number")


def build_act(name: str, given: dict[str, Any], now_ns: int, *, thread: str = "", form: bool = False) -> dict[str, Any]:
    """The desk act for what a caller sent: only the act's fields, times and numbers read.
    From a form, an empty field is left out (the act's default applies)."""
    allowed = ACT_FIELDS[name]
    if form:
        given = {k: v for k, v in given.items() if k in allowed and v != ""}
        if name == "readout.add":
            given["shared"] = given.get("shared") in ("on", "true", "1", True)
    unknown = sorted(set(given) - set(allowed))
    if unknown:
        raise HTTPException(400, f"{name} takes {', '.join(allowed) or 'no fields'}; not {', '.join(unknown)}")
    act: dict[str, Any] = {"act": name}
    if thread:
        act["id"] = thread
    for key, value in given.items():
        if key in TIME_FIELDS:
            act[key] = _time(value, key, form)
        elif key in COUNT_FIELDS:
            act[key] = _count(value, key)
        elif key == "answer_within":
            seconds = _count(value, "duration_s") if isinstance(value, str) else _count(value, key)
            act["answer_by"] = now_ns + seconds * 1_000_000_000
        else:
            act[key] = value
    return act


async def do_act(ctx: ApiContext, act: dict[str, Any], who: Principal) -> DeskRecord:
    """Check the act's form (400), then have the terminal take it (409 if the desk refuses)."""
    try:
        check_act(act)
    except DeskError as e:
        raise HTTPException(400, str(e)) from None
    try:
        return await ctx.terminal.desk(act, by=who.label)
    except DeskError as e:
        raise HTTPException(409, str(e)) from None


def find_thread(register: Register, given: str, kind: RecordType) -> str:
    """The full id of the call (or commitment) an id, or its start, names; 404 if none."""
    what = "call" if kind is RecordType.CALL_PROPOSE else "commitment"
    try:
        thread = register.find(given)
    except DeskError as e:
        raise HTTPException(400 if "give more of the id" in str(e) else 404, str(e)) from None
    if register.thread_kind(thread) is not kind:
        raise HTTPException(404, f"no {what} with id {given}")
    return thread


def other_side(ctx: ApiContext, a: str, b: str) -> str:
    return b if a == ctx.terminal.name else a


# -- views --------------------------------------------------------------------------------------


def calls_listing(ctx: ApiContext) -> list[dict[str, Any]]:
    now = ctx.now_ns()
    me = ctx.terminal.name
    views = [call_view(c, now) for c in ctx.terminal.register().calls()]
    for v in views:
        v["peer"] = other_side(ctx, v["proposer"], v["responder"])
        v["ours_to_answer"] = v["turn"] == me
    return views


def call_detail(ctx: ApiContext, call_id: str) -> dict[str, Any]:
    """A call with the commitments made in it and the differences between the two readouts."""
    register = ctx.terminal.register()
    now = ctx.now_ns()
    call = register.call(call_id)
    view = call_view(call, now)
    made = [c for c in register.commitments() if c.call == call.id]
    view["peer"] = other_side(ctx, call.proposer, call.responder)
    view["ours_to_answer"] = view["turn"] == ctx.terminal.name
    view["commitments"] = [commitment_view(c, now) for c in made]
    latest = latest_readouts(call.readouts)
    view["sides"] = [  # this side first, then the other: their readouts side by side
        {"name": side, "readout": readout_view(latest[side]) if side in latest else None,
         "earlier": sum(1 for r in call.readouts if r.author == side) - (side in latest)}
        for side in sorted((call.proposer, call.responder), key=lambda s: s != ctx.terminal.name)
    ]  # fmt: skip
    view["differences"] = [
        {"kind": d.kind.value, "side": d.side, "other": d.other, "commitment": d.commitment,
         "commitment_id": d.commitment_id, "side_level": d.side_level, "other_level": d.other_level, "text": d.text}
        for d in differences((call.proposer, call.responder), call.readouts, made)
    ]  # fmt: skip
    return view


def commitments_listing(ctx: ApiContext) -> list[dict[str, Any]]:
    """Every commitment: overdue first, then those falling due soonest, then the rest."""
    now = ctx.now_ns()
    views = [commitment_view(c, now) for c in ctx.terminal.register().commitments()]
    for v in views:
        v["peer"] = other_side(ctx, v["proposer"], v["other"])
        v["due_soon"] = v["state"] == "agreed" and bool(v["due_ns"]) and v["due_ns"] - now <= 24 * 3600 * 10**9
    views.sort(key=lambda v: (v["state"] != "overdue", not v["due_soon"], v["state"] not in ("proposed", "agreed"),
                              v["due_ns"] or 2**63, v["proposed_at_ns"]))  # fmt: skip
    return views


def record_view(record: DeskRecord) -> dict[str, Any]:
    return {"id": record.id, "type": str(record.type), "thread": record.thread, "author": record.author,
            "shared": record.shared, "at_ns": record.at_ns}  # fmt: skip


# -- the JSON API -------------------------------------------------------------------------------


def ok(value: Any, status: int = 200) -> JSONResponse:
    return JSONResponse(with_times(value), status_code=status)


async def list_calls(request: Request) -> Response:
    await authenticate(request, Permission.READ)
    views = calls_listing(context(request))
    state = request.query_params.get("state")
    if state:
        wanted = set(OPEN_CALL) if state == "open" else {state}
        views = [v for v in views if v["state"] in wanted]
    return ok({"calls": views, "total": len(views)})


async def get_call(request: Request) -> Response:
    await authenticate(request, Permission.READ)
    ctx = context(request)
    call_id = find_thread(ctx.terminal.register(), request.path_params["id"], RecordType.CALL_PROPOSE)
    return ok(call_detail(ctx, call_id))


async def post_call(request: Request) -> Response:
    who = await authenticate(request, Permission.SEND)
    ctx = context(request)
    record = await do_act(ctx, build_act("call.propose", await read_json(request), ctx.now_ns()), who)
    return ok({**call_detail(ctx, record.thread), "record": record_view(record)}, 201)


def _call_act(act: str) -> Any:
    async def handler(request: Request) -> Response:
        who = await authenticate(request, Permission.SEND)
        ctx = context(request)
        call_id = find_thread(ctx.terminal.register(), request.path_params["id"], RecordType.CALL_PROPOSE)
        body = await read_json(request)
        record = await do_act(ctx, build_act(f"call.{act}", body, ctx.now_ns(), thread=call_id), who)
        return ok({**call_detail(ctx, call_id), "record": record_view(record)})

    handler.__name__ = f"post_call_{act}"
    return handler


async def post_readout(request: Request) -> Response:
    who = await authenticate(request, Permission.SEND)
    ctx = context(request)
    call_id = find_thread(ctx.terminal.register(), request.path_params["id"], RecordType.CALL_PROPOSE)
    record = await do_act(ctx, build_act("readout.add", await read_json(request), ctx.now_ns(), thread=call_id), who)
    return ok({**call_detail(ctx, call_id), "record": record_view(record)}, 201)


async def list_commitments(request: Request) -> Response:
    await authenticate(request, Permission.READ)
    views = commitments_listing(context(request))
    return ok({"commitments": views, "total": len(views)})


async def post_commitment(request: Request) -> Response:
    who = await authenticate(request, Permission.SEND)
    ctx = context(request)
    body = await read_json(request)
    act = build_act("commitment.propose", body, ctx.now_ns())
    await resolve_commitment_call(ctx, act)
    record = await do_act(ctx, act, who)
    view = commitment_view(ctx.terminal.register().commitment(record.thread), ctx.now_ns())
    return ok({**view, "record": record_view(record)}, 201)


async def resolve_commitment_call(ctx: ApiContext, act: dict[str, Any]) -> None:
    """A commitment made in a call: the call's full id, and its other side unless ``to`` says."""
    given = act.get("call")
    if not given:
        return
    if not isinstance(given, str):
        raise HTTPException(400, "'call' must be a call's id")
    register = ctx.terminal.register()
    act["call"] = find_thread(register, given, RecordType.CALL_PROPOSE)
    if not act.get("to"):
        call = register.call(act["call"])
        act["to"] = other_side(ctx, call.proposer, call.responder)


def _commitment_act(act: str) -> Any:
    async def handler(request: Request) -> Response:
        who = await authenticate(request, Permission.SEND)
        ctx = context(request)
        item = find_thread(ctx.terminal.register(), request.path_params["id"], RecordType.COMMITMENT_PROPOSE)
        body = await read_json(request)
        record = await do_act(ctx, build_act(f"commitment.{act}", body, ctx.now_ns(), thread=item), who)
        view = commitment_view(ctx.terminal.register().commitment(item), ctx.now_ns())
        return ok({**view, "record": record_view(record)})

    handler.__name__ = f"post_commitment_{act}"
    return handler


def endpoints() -> list[tuple[str, str, str, Permission, Any, str]]:
    """(method, path, summary, permission, handler, body) for ``api.ENDPOINTS``."""
    bodies = {"accept": "{at}", "decline": "{reason}", "counter": "{at, reason}", "withdraw": "{reason}",
              "start": "{}", "end": "{}", "note": "{text}", "agree": "{}", "status": "{status, reason}",
              "round": "{round, done_at, note}"}  # fmt: skip
    out: list[tuple[str, str, str, Permission, Any, str]] = [
        ("GET", "/api/calls", "Calls: requests, answers and sessions (?state=open|proposed|live...)",
         Permission.READ, list_calls, ""),
        ("POST", "/api/calls", "Propose a call to a peer", Permission.SEND, post_call,
         "{to, subject, agenda, at, duration_s, answer_by | answer_within, precedence, disclosure, every}"),
        ("GET", "/api/calls/{id}", "A call: session, history, both readouts, commitments, their differences",
         Permission.READ, get_call, ""),
    ]  # fmt: skip
    for act in CALL_ACTS:
        out.append(("POST", f"/api/calls/{{id}}/{act}", f"call.{act} (the desk's state machine decides; 409 if not)",
                    Permission.SEND, _call_act(act), bodies[act]))  # fmt: skip
    out += [
        ("POST", "/api/calls/{id}/readouts", "Add this side's readout of a call (shared: sent to the peer)",
         Permission.SEND, post_readout, "{lang, disclosure, text, shared}"),
        ("GET", "/api/commitments", "Commitments, overdue and due soonest first", Permission.READ,
         list_commitments, ""),
        ("POST", "/api/commitments", "Propose a commitment (agreed once the other side countersigns)",
         Permission.SEND, post_commitment, "{to | call, title, detail, owner, due, kind, disclosure, starts, ends, "
         "rounds}"),
    ]  # fmt: skip
    for act in COMMITMENT_ACTS:
        out.append(("POST", f"/api/commitments/{{id}}/{act}", f"commitment.{act}", Permission.SEND,
                    _commitment_act(act), bodies.get(act, "{reason}")))  # fmt: skip
    return out
