"""Real keys, envelopes and receipts for storage tests, and the journal of tests/vectors/journal_v1.sql.

A store keeps signed envelopes and receipts, and ``storage.audit.verify`` checks
every signature and stream hash in the record; so tests that want a record to
verify feed the store what a terminal would: ``Conversation`` holds both sides'
keys and ratchets (washington is "us", moscow the peer) and makes them.

Run as a script, it writes the journal of the compatibility vector and prints
its SQL dump:

    PYTHONPATH=src:tests python tests/storage_scenario.py > tests/vectors/journal_v1.sql

``tests/vectors/journal_v1.sql`` was made that way from commit 0a94113, the last
before the storage moved behind ``hotline.storage.base`` (with the access model's
import from ``hotline.storage.sqlite.access``, where it lived then): a journal a
terminal of that release wrote, which every later one must open and verify.
"""

from __future__ import annotations

import sqlite3
import sys
import tempfile
from pathlib import Path

from hotline.core.access import Role, hash_password
from hotline.core.alarms import Alarm, AlarmChange
from hotline.core.model import (
    EMPTY_STREAM_HASH,
    Address,
    Attachment,
    MessageContent,
    Precedence,
    ReceiptKind,
    next_stream_hash,
)
from hotline.crypto import envelope as env
from hotline.crypto.identity import Identity, make_card, safety_number
from hotline.crypto.ratchet import Ratchet, initial_secret, is_initiator
from hotline.storage.sqlite.access import Access
from hotline.storage.sqlite.journal import Journal
from hotline.storage.sqlite.store import Store

T0 = 1_800_000_000_000_000_000
SECOND = 1_000_000_000


def _ratchet(own: Identity, peer: Identity) -> Ratchet:
    secret = initial_secret(own.public_key, own.dh_key, peer.public_key, peer.dh_public)
    start = Ratchet.initiator if is_initiator(own.public_key, peer.public_key) else Ratchet.responder
    return start(secret, own.dh_key, peer.dh_public)


class Conversation:
    """Both sides of one pairing, sealing and signing as their terminals would."""

    def __init__(self, us: str = "washington", them: str = "moscow") -> None:
        self.us = Identity.generate(us)
        self.them = Identity.generate(them)
        self.card_json = make_card(
            self.them, (Address("primary", "127.0.0.1", 7402),), "2026-11-24T00:00:00Z"
        ).to_json()
        self.safety_number = safety_number(self.us.public_key, us.encode(), self.them.public_key, them.encode())
        self._ours = _ratchet(self.us, self.them)
        self._theirs = _ratchet(self.them, self.us)
        self.out_hashes: dict[int, bytes] = {0: EMPTY_STREAM_HASH}  # our stream, by sequence number
        self.in_hashes: dict[int, bytes] = {0: EMPTY_STREAM_HASH}  # theirs

    def session(self) -> bytes:
        """What a store keeps as the session (the engine seals it first; a store never looks inside)."""
        return self._ours.to_bytes()

    def message(self, n: int, *, incoming: bool = False, attachments: tuple[Attachment, ...] = ()) -> MessageContent:
        sender, recipient = (self.them.name, self.us.name) if incoming else (self.us.name, self.them.name)
        return MessageContent(
            id=f"0190f2a0-0000-7000-8000-{n + (500 if incoming else 0):012d}", sender=sender, recipient=recipient,
            precedence=Precedence.FLASH if n == 1 else Precedence.ROUTINE, lang="en", subject=f"subject {n}",
            body=f"message {n} from {sender}", created_at_ns=T0 + n, attachments=attachments,
            classification="UNCLASSIFIED",
        )  # fmt: skip

    def seal_out(self, content: MessageContent, seq: int) -> tuple[bytes, bytes]:
        """Our envelope for ``seq`` and our stream hash after it."""
        envelope = env.seal(self.us, self._ours, content, seq)
        self.out_hashes[seq] = next_stream_hash(self.out_hashes[seq - 1], envelope)
        return envelope, self.out_hashes[seq]

    def seal_in(self, content: MessageContent, seq: int) -> tuple[bytes, bytes]:
        """The peer's envelope for ``seq`` and its stream hash after it."""
        envelope = env.seal(self.them, self._theirs, content, seq)
        self.in_hashes[seq] = next_stream_hash(self.in_hashes[seq - 1], envelope)
        return envelope, self.in_hashes[seq]

    def their_delivery_receipt(self, upto: int, at_ns: int) -> bytes:
        """The peer's signed receipt for our envelopes up to ``upto``."""
        return env.make_receipt(
            self.them, kind=ReceiptKind.DELIVERED, sender=self.them.name, recipient=self.us.name, upto=upto,
            stream_hash=self.out_hashes[upto], at_ns=at_ns,
        )  # fmt: skip

    def our_delivery_receipt(self, upto: int, at_ns: int) -> bytes:
        return env.make_receipt(
            self.us, kind=ReceiptKind.DELIVERED, sender=self.us.name, recipient=self.them.name, upto=upto,
            stream_hash=self.in_hashes[upto], at_ns=at_ns,
        )  # fmt: skip

    def their_person_receipt(self, kind: ReceiptKind, message_id: str, seq: int, at_ns: int) -> env.Receipt:
        """The peer's signed read or acknowledged receipt for our message ``seq``, as verified."""
        raw = env.make_receipt(
            self.them, kind=kind, sender=self.them.name, recipient=self.us.name, upto=seq,
            stream_hash=self.out_hashes[seq], at_ns=at_ns, message_id=message_id, by="duty officer",
        )  # fmt: skip
        return env.open_receipt(raw, self.them.public_key)


def fill_v1(path: Path) -> Conversation:
    """The compatibility vector's journal: one of each thing a terminal records."""
    talk = Conversation()
    journal = Journal(path, synchronous="NORMAL")
    store, access = Store(journal), Access(journal)
    us = talk.us
    with journal.transaction():
        store.record_created(us.name, us.public_key, us.dh_public, us.cert_der, T0)
        store.add_peer("moscow", talk.card_json, talk.them.public_key, talk.safety_number, talk.session(), T0 + 1)
        store.mark_verified("moscow", T0 + 2, by="alice")
        journal.set_meta("note", b"written by the release before the storage interfaces")
    with journal.transaction():
        out = talk.message(1, attachments=(Attachment("map.txt", b"grid square 7"),))
        store.accept(out, T0 + SECOND)
        store.record_operator("send", {"id": out.id, "by": "alice"}, T0 + SECOND)
        store.accept(talk.message(2), T0 + SECOND)
        store.record_link("link.up", "moscow", {"path": "primary", "address": "127.0.0.1:7402"}, T0 + 2 * SECOND)
        envelope, sh = talk.seal_out(out, 1)
        store.record_sealed(out.id, "moscow", 1, envelope, sh, T0 + 2 * SECOND)
        store.save_session("moscow", talk.session())
    with journal.transaction():
        store.record_delivered("moscow", talk.their_delivery_receipt(1, T0 + 3 * SECOND), 1, T0 + 3 * SECOND)
        incoming = talk.message(1, incoming=True)
        envelope, sh = talk.seal_in(incoming, 1)
        store.record_received(incoming, 1, envelope, sh, T0 + 3 * SECOND)
        store.record_receipt_sent("moscow", talk.our_delivery_receipt(1, T0 + 3 * SECOND), 1, T0 + 3 * SECOND)
        store.record_acknowledged_here(incoming.id, "alice", T0 + 4 * SECOND)
        ack = talk.their_person_receipt(ReceiptKind.ACKNOWLEDGED, out.id, 1, T0 + 5 * SECOND)
        store.record_person_receipt("moscow", ack, T0 + 5 * SECOND)
        alarm = Alarm("path-down", "moscow", "backup", "no connection on backup", T0 + 6 * SECOND)
        store.record_alarm(AlarmChange(alarm, True, T0 + 6 * SECOND))
        other = Alarm("test-failed", "moscow", "primary", "test unanswered", T0 + 7 * SECOND)
        store.record_alarm(AlarmChange(other, True, T0 + 7 * SECOND))
        store.record_alarm(AlarmChange(other, False, T0 + 8 * SECOND, "answered"))
        store.record_link("link.down", "moscow", {"path": "primary", "reason": "cable cut"}, T0 + 9 * SECOND)
    access.add_user("alice", Role.OPERATOR, hash_password("correct horse battery"), "ru", by="cli:root", at_ns=T0)
    access.create_token(Role.AUDITOR, "exporter", by="alice", at_ns=T0 + SECOND)
    journal.close()
    return talk


if __name__ == "__main__":
    with tempfile.TemporaryDirectory() as folder:
        fill_v1(Path(folder) / "journal.sqlite")
        db = sqlite3.connect(Path(folder) / "journal.sqlite")
        sys.stdout.write("".join(f"{line}\n" for line in db.iterdump()))
        db.close()
