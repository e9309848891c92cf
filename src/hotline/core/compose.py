"""Composing a message from what a person or program asked for (the control socket, the API,
the console and ``hotline send`` alike).

Pure: the time and the randomness for a new message id are passed in.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from hotline.core.errors import ControlError
from hotline.core.model import (
    Attachment,
    MessageContent,
    Precedence,
    canonical_message_id,
    uuid7,
    validate_attachment_name,
)


def build_content(
    sender: str, args: dict[str, Any], now_ns: int, markings: Sequence[str], randbytes: Callable[[int], bytes]
) -> MessageContent:
    """Turn request arguments into a validated message (the model checks every field).

    ``markings`` are the classifications this deployment sends; the first is the default.
    ``randbytes(n)`` gives the random part of a new id (``os.urandom``), unless ``args`` names one.
    """

    def text(key: str, default: str = "") -> str:
        value = args.get(key, default)
        if not isinstance(value, str):
            raise ControlError(f"{key!r} must be text")
        return value

    raw_attachments = args.get("attachments", [])
    if not isinstance(raw_attachments, list):
        raise ControlError("'attachments' must be a list of [name, bytes]")
    attachments = []
    for item in raw_attachments:
        if not (isinstance(item, list) and len(item) == 2 and isinstance(item[0], str) and isinstance(item[1], bytes)):
            raise ControlError("each attachment must be [name, bytes]")
        validate_attachment_name(item[0])
        attachments.append(Attachment(name=item[0], data=item[1]))
    asked = text("classification")
    # "secret" means SECRET: a marking is matched regardless of case, and always written as configured.
    classification = next((m for m in markings if m.casefold() == asked.casefold()), asked) if asked else markings[0]
    if classification not in markings:
        raise ControlError(
            f"unknown classification {classification[:80]!r}; this terminal marks messages "
            f"{', '.join(markings)} ([messages] markings in config.toml)"
        )
    message_id = canonical_message_id(text("id")) if text("id") else uuid7(now_ns // 1_000_000, randbytes(10))
    return MessageContent(
        id=message_id,
        sender=sender,
        recipient=text("to").strip().lower(),  # peer names are lower case: "Moscow" can only mean moscow
        precedence=Precedence.parse(text("precedence", "routine")),
        lang=text("lang", "en"),
        subject=text("subject"),
        body=text("body"),
        created_at_ns=now_ns,
        attachments=tuple(attachments),
        classification=classification,
    )
