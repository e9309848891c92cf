"""Channels over HTTP: the list, one channel with each member's receipts, writing and acknowledging.

A channel's page is ``desk.channels.channel_document`` — members with their link
and membership state, the messages in the causal order, for this terminal's own
messages each member's delivered / read / acknowledged, for the others' whether a
person here has read and acknowledged it — read from the terminal's record. A
message is written as the ``channel.message`` desk act (checked, signed once,
fanned out to each member over its own link), an acknowledgement goes back to its
author over this terminal's link to it (``TerminalPort.acknowledge`` on the
message's id). Operators write and acknowledge; auditors read.
"""

from __future__ import annotations

from typing import Any

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from hotline.core.access import Permission, Principal
from hotline.core.errors import DeskError
from hotline.desk.channels import Channel, channel_document, channel_summary, find_message
from hotline.desk.records import RecordType, decode_record
from hotline.web.actions import acknowledge
from hotline.web.auth import authenticate
from hotline.web.context import ApiContext, context
from hotline.web.desk import do_act, ok
from hotline.web.forms import read_json

MESSAGE_FIELDS = ("text", "subject", "precedence", "lang")


def find_channel(ctx: ApiContext, name: str) -> Channel:
    """The channel a name (or id) names here; 404 if none."""
    register = ctx.terminal.register()
    try:
        return register.channel(register.find_channel(name))
    except DeskError as e:
        raise HTTPException(404, str(e)) from None


def channels_listing(ctx: ApiContext) -> list[dict[str, Any]]:
    """Each channel this terminal holds (``channel_summary``)."""
    me, sent, received = ctx.terminal.name, ctx.store.record_carriers("out"), ctx.store.record_carriers("in")
    links = _links(ctx)
    return [channel_summary(channel_document(c, me, sent, received, links)) for c in ctx.terminal.register().channels()]


def _links(ctx: ApiContext) -> dict[str, str]:
    return {str(p["name"]): str(p.get("link", "down")) for p in ctx.terminal.status().get("peers", [])}


def channel_detail(ctx: ApiContext, channel: Channel) -> dict[str, Any]:
    store = ctx.store
    return channel_document(channel, ctx.terminal.name, store.record_carriers("out"), store.record_carriers("in"),
                            _links(ctx))  # fmt: skip


def message_act(channel: Channel, given: dict[str, Any]) -> dict[str, Any]:
    """The ``channel.message`` act for what a caller sent (400 for anything else)."""
    unknown = sorted(set(given) - set(MESSAGE_FIELDS))
    if unknown:
        raise HTTPException(400, f"a channel message takes {', '.join(MESSAGE_FIELDS)}; not {', '.join(unknown)}")
    if not str(given.get("text", "")).strip():
        raise HTTPException(400, "a channel message needs its text")
    return {"act": "channel.message", "channel": channel.id, **{k: v for k, v in given.items() if v != ""}}


async def acknowledge_message(ctx: ApiContext, channel: Channel, given: str, who: Principal, *,
                              read_only: bool = False) -> str:  # fmt: skip
    """Acknowledge (or mark read) a member's message named by its id or ``author#seq``; its id."""
    try:
        message = find_message(channel, given)
    except DeskError as e:
        raise HTTPException(404, str(e)) from None
    if message.author == ctx.terminal.name:
        raise HTTPException(409, f"{message.author}#{message.seq} is this terminal's own; its members acknowledge it")
    await acknowledge(ctx, message.record.id, who, read_only=read_only)
    return message.record.id


async def mark_all_read(ctx: ApiContext, view: dict[str, Any], who: Principal) -> bool:
    """An operator has the channel in front of them: every member's message not yet read here is
    read, and its author told so (a signed read receipt, once), as a message opened in the console."""
    unread = [m["id"] for m in view["messages"] if "mine" in m and m["mine"] and not m["mine"]["read_at_ns"]]
    for message_id in unread:
        await ctx.terminal.mark_read(message_id, who.label)
    return bool(unread)


def channel_flashes(ctx: ApiContext) -> list[dict[str, Any]]:
    """Members' FLASH messages to a channel that no person here has acknowledged yet, shaped as the
    console's flash takeover shows a message: each member acknowledges a channel FLASH."""
    register, found = ctx.terminal.register(), []
    for row in ctx.store.record_carriers("in"):
        record = decode_record(row["signed"])
        f = record.fields
        if record.type is not RecordType.CHANNEL_MESSAGE or f["precedence"] != "flash" or row["acknowledged_at_ns"]:
            continue
        name = register.first(record.thread).fields["name"] if record.thread in register else "?"
        found.append({"id": record.id, "peer": f"{record.author} · #{name}", "lang": f["lang"], "subject": f["subject"],
                      "body": f["text"], "received_at_ns": row["received_at_ns"], "classification": ""})  # fmt: skip
    return found


# -- the JSON API -------------------------------------------------------------------------------


async def list_channels(request: Request) -> Response:
    await authenticate(request, Permission.READ)
    views = channels_listing(context(request))
    return ok({"channels": views, "total": len(views)})


async def get_channel(request: Request) -> Response:
    await authenticate(request, Permission.READ)
    ctx = context(request)
    return ok(channel_detail(ctx, find_channel(ctx, request.path_params["name"])))


async def post_channel_message(request: Request) -> Response:
    who = await authenticate(request, Permission.SEND)
    ctx = context(request)
    channel = find_channel(ctx, request.path_params["name"])
    record = await do_act(ctx, message_act(channel, await read_json(request)), who)
    view = channel_detail(ctx, find_channel(ctx, channel.id))
    return ok({"message": next(m for m in view["messages"] if m["id"] == record.id), "channel": view["name"]}, 201)


async def post_channel_ack(request: Request) -> Response:
    who = await authenticate(request, Permission.SEND)
    ctx = context(request)
    channel = find_channel(ctx, request.path_params["name"])
    message_id = await acknowledge_message(ctx, channel, request.path_params["id"], who)
    view = channel_detail(ctx, channel)
    return ok({"message": next(m for m in view["messages"] if m["id"] == message_id)})


def endpoints() -> list[tuple[str, str, str, Permission, Any, str]]:
    """(method, path, summary, permission, handler, body) for ``api.ENDPOINTS``."""
    return [
        ("GET", "/api/channels", "Channels this terminal is in or was: members, messages, acknowledgements awaited",
         Permission.READ, list_channels, ""),
        ("GET", "/api/channels/{name}", "A channel: members and their links, messages in causal order, and each "
         "member's delivered / read / acknowledged for ours", Permission.READ, get_channel, ""),
        ("POST", "/api/channels/{name}/messages", "Write to a channel: signed once, sent to each member",
         Permission.SEND, post_channel_message, "{text, subject, precedence, lang}"),
        ("POST", "/api/channels/{name}/messages/{id}/ack", "Acknowledge a member's message (id or AUTHOR#SEQ); "
         "the signed receipt goes to its author", Permission.SEND, post_channel_ack, "{}"),
    ]  # fmt: skip
