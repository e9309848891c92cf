"""The terminal as the servers beside it see it: the control socket, the HTTP API and console.

``TerminalPort`` is all they may use of a running terminal — reading its record,
its status and alarms, and asking it to act. They never reach into the engine:
what the engine does inside its group commit, and when a waiting caller may
resume, is the terminal's business (``daemon.Terminal`` implements the port).

Everything here runs on the terminal's event loop. The ``async`` operations
return once their effect is journaled (``send`` with ``wait_delivered``: once
the peer's signed receipt is), and raise the engine's refusal, a
``HotlineError`` whose text says why, if there is one.

A *service* is a server run beside the terminal: a callable that takes the port
and returns a coroutine that serves until it is cancelled. Whoever starts the
terminal chooses them (``hotline.app``); the terminal knows none of them by name.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any, Protocol

from hotline.core.model import MessageContent
from hotline.crypto.identity import ContactCard
from hotline.desk.forms import FormRegistry
from hotline.desk.records import DeskRecord
from hotline.desk.register import Register
from hotline.engine.engine import Listener
from hotline.engine.pairing import PairResult
from hotline.storage.base import AccessStore, TerminalStore


class TerminalPort(Protocol):
    @property
    def name(self) -> str:
        """This terminal's name, the sender of every message it sends."""
        ...

    @property
    def markings(self) -> tuple[str, ...]:
        """The classifications this deployment sends, lowest first; the first is the default."""
        ...

    @property
    def store(self) -> TerminalStore:
        """The record, for reading: messages, attachments, peers. Writes go through the methods below."""
        ...

    @property
    def access(self) -> AccessStore:
        """Users, sessions and API tokens, kept in the terminal's journal."""
        ...

    @property
    def journal_path(self) -> Path:
        """The journal's file, for a long read (verify, export) on a connection of its own."""
        ...

    def now_ns(self) -> int:
        """The wall clock, in integer nanoseconds (UTC)."""
        ...

    def status(self) -> dict[str, Any]:
        """Peers, paths (state, RTT, active), queues and open alarms."""
        ...

    def alarms(self) -> list[dict[str, Any]]:
        """The alarms now active, oldest first."""
        ...

    def peer_names(self) -> list[str]:
        """The paired peers a message may go to, sorted."""
        ...

    async def accept_damage(self, reason: str, by: str) -> dict[str, Any]:
        """A supervisor accepts the damage the journal check found: journaled, and appending resumes."""
        ...

    def reload(self) -> list[str]:
        """Re-read the peers from the journal (after a pairing); returns the names that changed."""
        ...

    def pair(self, card: ContactCard, by: str) -> PairResult:
        """Pin a peer's card (already verified) in the journal and dial it at once."""
        ...

    def confirm_safety_number(self, peer: str, heard: str, by: str) -> None:
        """Record that the operators compared the safety number aloud, if the digits heard match."""
        ...

    def subscribe(self, listener: Listener) -> None:
        """Call ``listener(event)`` with every engine event (received, delivered, alarm...) once durable."""
        ...

    def unsubscribe(self, listener: Listener) -> None:
        """Stop calling ``listener``; nothing happens if it was not subscribed."""
        ...

    async def send(self, content: MessageContent, by: str = "", wait_delivered: bool = False) -> bool:
        """Journal a message (it then exists); True if it is new, False if that id was already sent.

        ``by`` names who sent it (a console user or token), journaled beside it."""
        ...

    async def acknowledge(self, message_id: str, by: str) -> None:
        """A person acknowledges ("received and understood") an incoming message; a signed receipt goes back."""
        ...

    async def mark_read(self, message_id: str, by: str) -> None:
        """A person opened an incoming message; a signed read receipt goes back (once)."""
        ...

    async def desk(self, act: dict[str, Any], by: str = "", wait_delivered: bool = False) -> DeskRecord:
        """Take a desk act (``desk.acts``: propose or answer a call, add a readout, propose or agree a
        commitment, write to a channel...): checked, signed, journaled, and sent to the peer (a
        channel's: to each member) if it is shared. Returns the record once journaled — with
        ``wait_delivered``, once every peer it went to has signed its delivery; ``DeskError`` says
        why an act is refused."""
        ...

    def register(self) -> Register:
        """The desk's calls and commitments as this terminal holds them now (for reading)."""
        ...

    def forms(self) -> FormRegistry:
        """The form types of formatted notifications this terminal holds (the engine's own)."""
        ...

    async def backup(self, dest: Path) -> dict[str, Any]:
        """A consistent hot backup of this terminal's home to ``dest`` (``terminal.backup``)."""
        ...

    async def raise_alarm(self, kind: str, peer: str, subject: str, detail: str) -> None:
        """Raise an alarm a person must see; raising one already open changes nothing."""
        ...

    async def clear_alarm(self, kind: str, peer: str, subject: str, reason: str) -> None:
        """Clear an open alarm, saying why; clearing one not open changes nothing."""
        ...


Service = Callable[[TerminalPort], Coroutine[Any, Any, None]]
"""A server beside the terminal: given the port, it serves until cancelled."""
