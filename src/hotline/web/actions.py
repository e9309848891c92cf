"""What the API and the console both do: send, acknowledge or open a message, and the views
of a message, the status and the journal's verification. Each asks the terminal through
its ``TerminalPort`` and says who asked.
"""

from __future__ import annotations

import asyncio
import secrets
from typing import Any

from starlette.exceptions import HTTPException

from hotline.core.access import Principal
from hotline.core.compose import build_content
from hotline.core.times import rfc3339
from hotline.desk.records import RecordType, decode_record
from hotline.storage import audit
from hotline.storage.backend import open_storage
from hotline.web.context import ApiContext

# What a person fills in to send a message, in the API and on the compose page alike.
MESSAGE_FIELDS = ("to", "precedence", "lang", "classification", "subject", "body")


async def send_message(ctx: ApiContext, fields: dict[str, Any], by: Principal) -> str:
    """Journal a message (it then exists) and return its id; 400 with a reason if it is refused."""
    terminal = ctx.terminal
    content = build_content(terminal.name, fields, ctx.now_ns(), terminal.markings, secrets.token_bytes)
    await terminal.send(content, by=by.label)
    return content.id


async def acknowledge(ctx: ApiContext, message_id: str, by: Principal, *, read_only: bool = False) -> None:
    """Acknowledge ("received and understood") an incoming message, or with ``read_only``
    record that a person opened it; either way a signed receipt goes back to the sender. A
    channel's message is named by its own id or its carrier's (``web.channels``)."""
    carrier = ctx.store.carrier_of(message_id) or message_id  # a channel's message: the one that brought it
    found = ctx.store.incoming(carrier)
    if found is None or (found["kind"] != "message" and not _carries_channel_message(ctx, carrier)):
        raise HTTPException(404, f"no received message with id {message_id}")
    if read_only:
        await ctx.terminal.mark_read(message_id, by.label)
    else:
        await ctx.terminal.acknowledge(message_id, by.label)


def _carries_channel_message(ctx: ApiContext, message_id: str) -> bool:
    carried = ctx.store.carried_record(message_id)
    return carried is not None and decode_record(carried[0]).type is RecordType.CHANNEL_MESSAGE


def message_view(ctx: ApiContext, message_id: str) -> dict[str, Any]:
    found = ctx.store.message(message_id)
    if found is None:
        raise HTTPException(404, f"no message with id {message_id}")
    moments = [
        ("created", found["created_at_ns"]), ("queued", found["queued_at_ns"]), ("sent", found["sent_at_ns"]),
        ("delivered", found["delivered_at_ns"]), ("received", found["received_at_ns"]),
        ("read", found["read_at_ns"]), ("acknowledged", found["acknowledged_at_ns"]),
    ]  # fmt: skip
    found["timeline"] = [
        {"event": name, "at": rfc3339(ns), "at_ns": ns, **({"by": found["acknowledged_by"]}
                                                                 if name == "acknowledged" else {})}
        for name, ns in moments if ns
    ]  # fmt: skip
    return dict(found)


def status_view(ctx: ApiContext) -> dict[str, Any]:
    return ctx.terminal.status()


async def verify_journal(ctx: ApiContext) -> dict[str, Any]:
    """Verify the whole journal in a thread, on a read-only connection of its own."""
    path = ctx.terminal.journal_path

    def run() -> dict[str, Any]:
        with open_storage(path, readonly=True) as storage:
            return audit.verify(storage.record).as_dict()

    return await asyncio.to_thread(run)
