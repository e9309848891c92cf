"""Channels in the console: the Channels list and a channel's page.

A channel's page shows its members with their link and membership state, its
messages in the causal order every member shows, and for each of this terminal's
own messages a mark per member — delivered, read, acknowledged — and for each
member's message an Acknowledge button. Opening the page is reading: an operator
who has the channel in front of them marks each member's message read (a signed
read receipt goes to its author, once), as opening a message does. The lists live
in fragments the console's script refetches on the terminal's events (a record
received, a receipt back, a link change), so a member's message and its marks
appear without a reload. Plain HTML forms, like the rest of the console.
"""

from __future__ import annotations

from typing import Any

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from hotline.core.access import Permission
from hotline.core.model import Precedence
from hotline.web.auth import authenticate
from hotline.web.channels import (
    MESSAGE_FIELDS,
    acknowledge_message,
    channel_detail,
    channels_listing,
    find_channel,
    mark_all_read,
    message_act,
)
from hotline.web.console import _next, _page, render
from hotline.web.context import context
from hotline.web.desk import do_act
from hotline.web.forms import read_form
from hotline.web.i18n import localize


async def channels_page(request: Request) -> Response:
    session = await _page(request)
    return render(request, "channels.html", session, channels=channels_listing(context(request)))


async def _channel_values(request: Request, name: str) -> dict[str, Any]:
    """The channel's document; an operator looking at it has read every member's message in it."""
    session = await _page(request)
    ctx = context(request)
    channel = find_channel(ctx, name)
    view = channel_detail(ctx, channel)
    if session.user.may(Permission.SEND) and await mark_all_read(ctx, view, session.user):
        view = channel_detail(ctx, channel)
    return {"c": view, "me": ctx.terminal.name}


async def channel_page(request: Request) -> Response:
    session = await _page(request)
    values = await _channel_values(request, request.path_params["name"])
    return render(request, "channel.html", session, precedences=[p.label for p in Precedence],
                  fields={"precedence": "routine"}, error="", **values)  # fmt: skip


async def post_message(request: Request) -> Response:
    form = await read_form(request)
    session = await _page(request, Permission.SEND, form)
    ctx = context(request)
    channel = find_channel(ctx, request.path_params["name"])
    fields = {k: str(form.get(k, "")) for k in MESSAGE_FIELDS}
    fields["lang"] = fields["lang"] or session.user.lang
    try:
        await do_act(ctx, message_act(channel, fields), session.user)
    except HTTPException as e:  # shown on the form, with everything typed kept
        values = await _channel_values(request, channel.id)
        return render(request, "channel.html", session, status_code=e.status_code,
                      precedences=[p.label for p in Precedence], fields=fields,
                      error=localize(str(e.detail), session.user.lang), **values)  # fmt: skip
    return RedirectResponse(f"/channels/{channel.name}", status_code=303)


async def ack_message(request: Request) -> Response:
    form = await read_form(request)
    who = await authenticate(request, Permission.SEND, form=form)
    ctx = context(request)
    channel = find_channel(ctx, request.path_params["name"])
    await acknowledge_message(ctx, channel, request.path_params["id"], who)
    return RedirectResponse(_next(request, f"/channels/{channel.name}"), status_code=303)


# -- fragments, refetched live --------------------------------------------------------------------


async def channels_fragment(request: Request) -> Response:
    session = await _page(request)
    return render(request, "_channels.html", session, channels=channels_listing(context(request)))


async def channel_fragment(request: Request) -> Response:
    session = await _page(request)
    values = await _channel_values(request, request.query_params.get("name", ""))
    return render(request, "_channel.html", session, **values)


def routes() -> list[BaseRoute]:
    """Listed before the console's own routes (its ``/fragments/{name}`` would take these)."""
    return [
        Route("/channels", channels_page, methods=["GET"]),
        Route("/channels/{name}", channel_page, methods=["GET"]),
        Route("/channels/{name}", post_message, methods=["POST"]),
        Route("/channels/{name}/ack/{id}", ack_message, methods=["POST"]),
        Route("/fragments/channels", channels_fragment, methods=["GET"]),
        Route("/fragments/channel", channel_fragment, methods=["GET"]),
    ]
