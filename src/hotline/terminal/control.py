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
    alarms                   -> {alarms}: the alarms now active
    reload                   -> re-read peers after `hotline pair`
    desk {act, by?, wait?}   -> {id, thread, type, shared}: a call, readout, commitment or
                                channel act (``desk.acts``), signed and journaled, and sent if
                                shared; with wait="delivered", once every peer it went to (each
                                member of a channel) has signed its delivery
    backup {path}            -> what was written (entries, size, head hash): a consistent hot
                                backup of the home (``terminal.backup``), taken off the loop
    accept-damage {reason, by?}
                             -> {accepted, journal}: a supervisor accepts the damage the
                                journal check found (journaled); appending resumes

The operations are the table ``OPERATIONS``; each uses only the ``TerminalPort``.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from hotline.core import compose
from hotline.core.errors import ControlError, ControlTimeout, HotlineError, RemoteProtocolError
from hotline.core.wire import FrameDecoder, encode_frame
from hotline.terminal.port import TerminalPort

log = logging.getLogger(__name__)

MAX_CONTROL_FRAME = 40 * 1024 * 1024


# -- operations: each takes the request's args and returns its result, or raises a HotlineError --

Operation = Callable[[TerminalPort, dict[str, Any]], Awaitable[Any]]


async def _ping(terminal: TerminalPort, args: dict[str, Any]) -> Any:
    return {"name": terminal.name}


async def _status(terminal: TerminalPort, args: dict[str, Any]) -> Any:
    return terminal.status()


async def _ack(terminal: TerminalPort, args: dict[str, Any]) -> Any:
    message_id, by = args.get("id"), args.get("by", "operator")
    if not isinstance(message_id, str) or not isinstance(by, str):
        raise ControlError("ack needs 'id' (text) and optionally 'by' (text)")
    await terminal.acknowledge(message_id, by[:200])
    return {"id": message_id, "acknowledged": True}


async def _alarms(terminal: TerminalPort, args: dict[str, Any]) -> Any:
    return {"alarms": terminal.alarms()}


async def _reload(terminal: TerminalPort, args: dict[str, Any]) -> Any:
    return {"changed": terminal.reload()}


async def _send(terminal: TerminalPort, args: dict[str, Any]) -> Any:
    content = compose.build_content(terminal.name, args, terminal.now_ns(), terminal.markings, os.urandom)
    created = await terminal.send(content, wait_delivered=args.get("wait", "accepted") == "delivered")
    return {"id": content.id, "created": created}


async def _accept_damage(terminal: TerminalPort, args: dict[str, Any]) -> Any:
    reason, by = args.get("reason"), args.get("by", "supervisor")
    if not isinstance(reason, str) or not reason.strip() or not isinstance(by, str):
        raise ControlError("accept-damage needs 'reason' (text, not empty) and optionally 'by' (text)")
    return await terminal.accept_damage(reason.strip()[:1000], by[:200])


async def _backup(terminal: TerminalPort, args: dict[str, Any]) -> Any:
    path = args.get("path")
    if not isinstance(path, str) or not os.path.isabs(path):
        raise ControlError("backup needs 'path': the absolute path of a new file")
    return await terminal.backup(Path(path))


async def _desk(terminal: TerminalPort, args: dict[str, Any]) -> Any:
    act, by = args.get("act"), args.get("by", "operator")
    if not isinstance(act, dict) or not isinstance(by, str):
        raise ControlError("desk needs 'act' (a map: {act: NAME, ...}) and optionally 'by' (text)")
    record = await terminal.desk(act, by[:200], wait_delivered=args.get("wait", "accepted") == "delivered")
    return {"id": record.id, "thread": record.thread, "type": str(record.type), "shared": record.shared}


OPERATIONS: dict[str, Operation] = {
    "ping": _ping,
    "status": _status,
    "ack": _ack,
    "alarms": _alarms,
    "reload": _reload,
    "send": _send,
    "accept-damage": _accept_damage,
    "desk": _desk,
    "backup": _backup,
}


async def serve_client(terminal: TerminalPort, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    decoder = FrameDecoder(MAX_CONTROL_FRAME)
    loop = asyncio.get_running_loop()
    pending: set[asyncio.Task[None]] = set()  # each request's task, held until it has answered

    def respond(req_id: Any, result: Any = None, error: str | None = None) -> None:
        if writer.is_closing():
            return
        frame: dict[str, Any] = {"t": "resp", "id": req_id, "ok": error is None}
        if error is None:
            frame["result"] = result
        else:
            frame["error"] = error
        writer.write(encode_frame(frame))

    async def answer(frame: dict[str, Any]) -> None:
        req_id, op = frame.get("id"), frame.get("op")
        args = frame.get("args") or {}
        try:
            if not isinstance(args, dict):
                raise ControlError("'args' must be a map")
            operation = OPERATIONS.get(op) if isinstance(op, str) else None
            if operation is None:
                raise ControlError(f"unknown operation {op!r}")
            result = await operation(terminal, args)
        except HotlineError as e:
            respond(req_id, error=str(e))
        except Exception:  # a bug, not a refusal: logged, and the connection ends
            log.exception("control request %r failed", op)
            writer.close()
        else:
            respond(req_id, result)

    def handle(frame: dict[str, Any]) -> None:
        # One task per request, started in the order they arrived: a quick answer (ping, status)
        # goes back in that order; one that waits on a commit or a receipt (send, ack) holds up no other.
        task = loop.create_task(answer(frame))
        pending.add(task)
        task.add_done_callback(pending.discard)

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
        # Requests still being answered run on (a send the client did not wait for is still
        # journaled); their answers go nowhere.
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
