"""The local control socket: how `hotline send`, `status` and programs talk to a running terminal.

A Unix socket in the home folder (mode 0600, so only the terminal's own user can
use it), carrying the same frames as the link (``wire``): requests
``{t: "req", id, op, args}`` and responses ``{t: "resp", id, ok, result | error}``.
Requests on one connection may be pipelined; responses carry the request id.

Operations:
    ping                     -> {name}
    ack {id, by?}            -> {id, acknowledged}: "received and understood", journaled,
                                and a signed receipt queued back to the sender
    send {to, precedence, lang, subject, body, attachments, id?, wait?}
                             -> {id, created}; after the journal commit, or with
                                wait="delivered" after the signed receipt is journaled
    status                   -> the engine's status
    reload                   -> re-read peers after `hotline pair`
"""

from __future__ import annotations

import asyncio
import os
import socket
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hotline.core.errors import ControlError, ControlTimeout, HotlineError, RemoteProtocolError
from hotline.core.model import (
    Attachment,
    MessageContent,
    Precedence,
    canonical_message_id,
    uuid7,
    validate_attachment_name,
)
from hotline.core.wire import FrameDecoder, encode_frame

if TYPE_CHECKING:
    from hotline.terminal.daemon import Terminal

MAX_CONTROL_FRAME = 40 * 1024 * 1024


def build_content(sender: str, args: dict[str, Any], now_ns: int, markings: Sequence[str]) -> MessageContent:
    """Turn request arguments into a validated message (the model checks every field).

    ``markings`` are the classifications this deployment sends; the first is the default.
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
    message_id = canonical_message_id(text("id")) if text("id") else uuid7(now_ns // 1_000_000, os.urandom(10))
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


async def serve_client(terminal: Terminal, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    decoder = FrameDecoder(MAX_CONTROL_FRAME)
    loop = asyncio.get_running_loop()

    def respond(req_id: Any, result: Any = None, error: str | None = None) -> None:
        if writer.is_closing():
            return
        frame: dict[str, Any] = {"t": "resp", "id": req_id, "ok": error is None}
        if error is None:
            frame["result"] = result
        else:
            frame["error"] = error
        writer.write(encode_frame(frame))

    def handle(frame: dict[str, Any]) -> None:
        req_id, op = frame.get("id"), frame.get("op")
        args = frame.get("args") or {}
        if not isinstance(args, dict):
            respond(req_id, error="'args' must be a map")
            return
        try:
            if op == "ping":
                respond(req_id, {"name": terminal.identity.name})
            elif op == "status":
                respond(req_id, terminal.engine.status())
            elif op == "ack":
                message_id, by = args.get("id"), args.get("by", "operator")
                if not isinstance(message_id, str) or not isinstance(by, str):
                    raise ControlError("ack needs 'id' (text) and optionally 'by' (text)")

                def acked(error: Exception | None) -> None:
                    if error is None:
                        loop.call_soon(respond, req_id, {"id": message_id, "acknowledged": True})
                    else:
                        loop.call_soon(lambda: respond(req_id, error=str(error)))

                terminal.engine.acknowledge(message_id, by[:200], acked)
            elif op == "alarms":
                respond(req_id, {"alarms": terminal.engine.alarms()})
            elif op == "reload":
                respond(req_id, {"changed": terminal.reload()})
            elif op == "send":
                content = build_content(
                    terminal.identity.name, args, terminal.clock.wall_ns(), terminal.config.markings
                )
                wait = args.get("wait", "accepted")

                def done(error: Exception | None, created: bool) -> None:
                    if error is not None:
                        respond(req_id, error=str(error))
                    elif wait == "delivered":
                        terminal.engine.on_delivered(
                            content.id,
                            lambda: respond(req_id, {"id": content.id, "created": created}),
                        )
                    else:
                        respond(req_id, {"id": content.id, "created": created})

                def committed(error: Exception | None, created: bool) -> None:
                    loop.call_soon(done, error, created)

                terminal.engine.submit(content, committed)
            else:
                respond(req_id, error=f"unknown operation {op!r}")
        except HotlineError as e:
            respond(req_id, error=str(e))

    try:
        while True:
            data = await reader.read(256 * 1024)
            if not data:
                break
            decoder.receive_data(data)
            while (frame := decoder.next_frame()) is not None:
                handle(frame)
            await writer.drain()
    except (RemoteProtocolError, ConnectionError) as e:
        if isinstance(e, RemoteProtocolError):
            respond(None, error=f"bad control request: {e}")
    finally:
        writer.close()


class ControlClient:
    """A blocking client for the control socket (used by the CLI, tests and benchmarks)."""

    def __init__(self, home: Path, timeout: float = 30.0) -> None:
        path = home / "control.sock"
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._sock.settimeout(timeout)
        try:
            self._sock.connect(str(path))
        except OSError as e:
            self._sock.close()
            raise ControlError(f"no running terminal on {home} ({e.strerror or e})") from None
        self._decoder = FrameDecoder(MAX_CONTROL_FRAME)
        self._next_id = 0
        self._results: dict[int, dict[str, Any]] = {}

    def close(self) -> None:
        self._sock.close()

    def __enter__(self) -> ControlClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def submit(self, op: str, **args: Any) -> int:
        """Send a request without waiting; collect it later with ``result``."""
        self._next_id += 1
        try:
            self._sock.sendall(encode_frame({"t": "req", "id": self._next_id, "op": op, "args": args}))
        except OSError as e:
            raise ControlError(f"control socket write failed: {e}") from None
        return self._next_id

    def result(self, req_id: int, deadline: float | None = None) -> Any:
        while req_id not in self._results:
            if deadline is not None:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise ControlTimeout(f"no answer to request {req_id} before the deadline")
                self._sock.settimeout(remaining)
            try:
                data = self._sock.recv(256 * 1024)
            except TimeoutError:
                raise ControlTimeout("the terminal did not answer in time") from None
            except OSError as e:
                raise ControlError(f"control socket read failed: {e}") from None
            if not data:
                raise ControlError("the terminal closed the control connection")
            self._decoder.receive_data(data)
            while (frame := self._decoder.next_frame()) is not None:
                if isinstance(frame.get("id"), int):
                    self._results[frame["id"]] = frame
        frame = self._results.pop(req_id)
        if not frame.get("ok"):
            raise ControlError(str(frame.get("error")))
        return frame.get("result")

    def request(self, op: str, **args: Any) -> Any:
        return self.result(self.submit(op, **args))
