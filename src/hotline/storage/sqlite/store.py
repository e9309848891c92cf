"""What a terminal records, in SQLite: peers, messages, receipts, alarms, link events and operator actions.

``Store`` is the ``TerminalStore`` of ``hotline.storage.base`` (peers, messages,
alarms, events). Each method that changes state appends the journal entry that
explains the change and updates the derived rows in the same transaction, so
the record and the working state can never disagree after a crash. Callers open
the transaction (``journal.transaction()``); this lets the terminal group many
changes into one commit.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from typing import Any

from hotline.core.alarms import AlarmChange
from hotline.core.errors import DeliveryError, JournalError
from hotline.core.model import Attachment, MessageContent, MessageKind, MessageState, Precedence, ReceiptKind
from hotline.core.wire import pack, unpack
from hotline.crypto.envelope import Receipt
from hotline.storage.records import LINK_KINDS, Arrival, Cursors, PeerRow, Sealed, content_fields
from hotline.storage.sqlite.journal import Journal
from hotline.storage.sqlite.keys import KeyRecords


class Store(KeyRecords):
    def __init__(self, journal: Journal) -> None:
        self.journal = journal

    # -- terminal and peers -----------------------------------------------------------------

    def record_created(self, name: str, identity_key: bytes, dh_key: bytes, cert_der: bytes, at_ns: int) -> None:
        self.journal.append(
            "terminal.created",
            {"name": name, "identity_key": identity_key, "dh_key": dh_key, "cert": cert_der},
            at_ns,
        )

    def add_peer(
        self,
        name: str,
        card_json: str,
        identity_key: bytes,
        safety_number: str,
        session: bytes,
        at_ns: int,
        fresh: bool = False,
    ) -> bool:
        """Pin a peer's card. Re-pairing replaces the key, the session and the cursors.

        Returns True if this replaced an earlier pairing with a different key.
        """
        old = self.peer(name)
        entry = self.journal.append(
            "peer.paired",
            {
                "name": name,
                "card": card_json,
                "identity_key": identity_key,
                "safety_number": safety_number,
                **({"fresh": True} if fresh else {}),
            },
            at_ns,
            peer=name,
        )
        self.journal.execute(
            "INSERT OR REPLACE INTO peers(name, card, identity_key, safety_number, paired_at_ns, entry) "
            "VALUES (?,?,?,?,?,?)",
            (name, card_json, identity_key, safety_number, at_ns, entry),
        )
        rekeyed = old is not None and old.identity_key != identity_key
        if old is None or rekeyed or fresh:
            self._forget_cutoffs(name)
            # A new pairing is a new stream: messages sealed for the old key but never
            # delivered go back to the queue and are sealed afresh for the new key.
            self.journal.execute(
                "UPDATE messages SET state = 'queued', seq = NULL, envelope = NULL, stream_hash = NULL, "
                "sent_at_ns = NULL WHERE direction = 'out' AND peer = ? AND state = 'sent'",
                (name,),
            )
            self.journal.execute("UPDATE messages SET seq = NULL WHERE peer = ? AND seq IS NOT NULL", (name,))
            self.journal.execute("INSERT OR REPLACE INTO cursors(peer) VALUES (?)", (name,))
            self.journal.execute("INSERT OR REPLACE INTO sessions(peer, state) VALUES (?, ?)", (name, session))
        return rekeyed

    def peer(self, name: str) -> PeerRow | None:
        row = self.journal.execute(
            "SELECT name, card, identity_key, safety_number, paired_at_ns, verified_at_ns FROM peers WHERE name = ?",
            (name,),
        ).fetchone()
        return None if row is None else PeerRow(row[0], row[1], bytes(row[2]), row[3], row[4], row[5])

    def peers(self) -> list[PeerRow]:
        rows = self.journal.execute(
            "SELECT name, card, identity_key, safety_number, paired_at_ns, verified_at_ns FROM peers ORDER BY name"
        ).fetchall()
        return [PeerRow(r[0], r[1], bytes(r[2]), r[3], r[4], r[5]) for r in rows]

    def mark_verified(self, name: str, at_ns: int, by: str = "") -> None:
        """An operator confirmed, by voice, that both sides show the same safety number."""
        peer = self.peer(name)
        if peer is None:
            raise DeliveryError(f"no peer named {name!r}; see `hotline peers`")
        detail = {"action": "verify-peer", "peer": name, "safety_number": peer.safety_number}
        self.journal.append("operator.action", {**detail, "by": by} if by else detail, at_ns)
        self.journal.execute("UPDATE peers SET verified_at_ns = ? WHERE name = ?", (at_ns, name))

    def load_session(self, peer: str) -> bytes:
        row = self.journal.execute("SELECT state FROM sessions WHERE peer = ?", (peer,)).fetchone()
        if row is None:
            raise JournalError(f"no ratchet session for peer {peer!r}; pair with it first")
        return bytes(row[0])

    def save_session(self, peer: str, state: bytes) -> None:
        self.journal.execute("UPDATE sessions SET state = ? WHERE peer = ?", (state, peer))

    def cursors(self, peer: str) -> Cursors:
        row = self.journal.execute(
            "SELECT out_next_seq, out_acked, out_stream_hash, in_upto, in_stream_hash, last_receipt_out, "
            "last_receipt_in, last_contact_ns FROM cursors WHERE peer = ?",
            (peer,),
        ).fetchone()
        if row is None:
            raise JournalError(f"no cursors for peer {peer!r}; pair with it first")
        return Cursors(
            row[0], row[1], bytes(row[2]), row[3], bytes(row[4]),
            None if row[5] is None else bytes(row[5]),
            None if row[6] is None else bytes(row[6]),
            row[7],
        )  # fmt: skip

    def in_stream_hash_at(self, peer: str, seq: int) -> bytes | None:
        row = self.journal.execute(
            "SELECT stream_hash FROM messages WHERE direction = 'in' AND peer = ? AND seq = ?", (peer, seq)
        ).fetchone()
        return None if row is None or row[0] is None else bytes(row[0])

    _RESTORED = "restored:"

    def mark_restored(self, backup_at_ns: int, source: str, by: str, at_ns: int) -> list[str]:
        names = [p.name for p in self.peers()]
        detail: dict[str, Any] = {"action": "restore", "backup_at_ns": backup_at_ns, "source": source,
                                  "peers": names, "note": "restored: re-key before sending"}  # fmt: skip
        self.journal.append("operator.action", {**detail, "by": by} if by else detail, at_ns)
        for name in names:
            self.journal.set_meta(self._RESTORED + name, pack(backup_at_ns))
        return names

    def restored_at(self, peer: str) -> int | None:
        value = self.journal.get_meta(self._RESTORED + peer)
        if value is None:
            return None
        at = unpack(value)
        return at if isinstance(at, int) else None

    def restart_stream(self, peer: str, session: bytes, held: int, detail: dict[str, Any], at_ns: int) -> list[str]:
        self.journal.append("peer.rekeyed", {"peer": peer, "held": held, **detail}, at_ns, peer=peer)
        self._forget_cutoffs(peer)
        self.journal.execute(
            "UPDATE messages SET state = 'delivered', delivered_at_ns = ? "
            "WHERE direction = 'out' AND peer = ? AND state = 'sent' AND seq <= ?",
            (at_ns, peer, held),
        )
        requeued = [
            r[0]
            for r in self.journal.execute(
                "SELECT id FROM messages WHERE direction = 'out' AND peer = ? AND seq > ? "
                "AND state IN ('sent', 'delivered') ORDER BY seq",
                (peer, held),
            )
        ]
        self.journal.execute(
            "UPDATE messages SET state = 'queued', envelope = NULL, stream_hash = NULL, sent_at_ns = NULL, "
            "delivered_at_ns = NULL WHERE direction = 'out' AND peer = ? AND seq > ? "
            "AND state IN ('sent', 'delivered')",
            (peer, held),
        )
        self.journal.execute("UPDATE messages SET seq = NULL WHERE peer = ? AND seq IS NOT NULL", (peer,))
        self.journal.execute("INSERT OR REPLACE INTO cursors(peer) VALUES (?)", (peer,))
        self.journal.execute("INSERT OR REPLACE INTO sessions(peer, state) VALUES (?, ?)", (peer, session))
        self.journal.execute("DELETE FROM meta WHERE key = ?", (self._RESTORED + peer,))
        return requeued

    # -- outgoing messages ------------------------------------------------------------------

    def accept(self, content: MessageContent, at_ns: int) -> bool:
        """Journal a message for sending. Returns False if this exact id was already accepted.

        The id doubles as an idempotency key: a client that lost the answer to a
        ``send`` can repeat it with the same id and nothing is sent twice.
        """
        result = self.accept_batch([content], at_ns)[0]
        if isinstance(result, DeliveryError):
            raise result
        return result

    def accept_batch(self, contents: Sequence[MessageContent], at_ns: int) -> list[bool | DeliveryError]:
        """``accept`` for a flush's worth of messages: a few statements for all of them, not several each."""
        paired = {name for name in {c.recipient for c in contents} if self.peer(name) is not None}
        held: dict[str, tuple[Any, ...]] = {
            row[0]: tuple(row[1:])
            for row in self.journal.execute(
                "SELECT id, direction, peer, subject, body, classification FROM messages "
                "WHERE id IN (SELECT value FROM json_each(?))",
                (json.dumps([c.id for c in contents]),),
            )
        }
        results: list[bool | DeliveryError] = []
        new: list[MessageContent] = []
        for content in contents:
            mine = ("out", content.recipient, content.subject, content.body, content.classification)
            if content.recipient not in paired:
                results.append(DeliveryError(f"no peer named {content.recipient!r}; see `hotline peers`"))
            elif content.id not in held:
                held[content.id] = mine  # the same id again later in this batch is a repeat of it
                new.append(content)
                results.append(True)
            elif held[content.id] == mine:
                results.append(False)
            else:
                results.append(DeliveryError(f"message id {content.id} is already used by a different message"))
        if not new:
            return results
        entries = self.journal.append_batch([("message.accepted", content_fields(c), c.recipient) for c in new], at_ns)
        self.journal.executemany(
            "INSERT INTO messages(id, direction, peer, precedence, lang, subject, body, created_at_ns, state, "
            "queued_at_ns, order_key, kind, classification) VALUES (?, 'out', ?, ?, ?, ?, ?, ?, 'queued', ?, ?, ?, ?)",
            [(c.id, c.recipient, int(c.precedence), c.lang, c.subject, c.body, c.created_at_ns, at_ns, entry,
              c.kind.value, c.classification) for c, entry in zip(new, entries, strict=True)],
        )  # fmt: skip
        self._insert_attachments(new)
        items = [(c.id, c.receipt) for c in new if c.kind is not MessageKind.MESSAGE]
        if items:
            self.journal.executemany("INSERT INTO receipt_items(id, receipt) VALUES (?, ?)", items)
        return results

    def queued(self, peer: str) -> list[tuple[str, Precedence, int]]:
        rows = self.journal.execute(
            "SELECT id, precedence, order_key FROM messages WHERE direction = 'out' AND peer = ? "
            "AND state = 'queued' ORDER BY order_key",
            (peer,),
        ).fetchall()
        return [(r[0], Precedence(r[1]), r[2]) for r in rows]

    def load_content(self, message_id: str, own_name: str) -> MessageContent:
        row = self.journal.execute(
            "SELECT direction, peer, precedence, lang, subject, body, created_at_ns, kind, classification "
            "FROM messages WHERE id = ?",
            (message_id,),
        ).fetchone()
        if row is None:
            raise JournalError(f"message {message_id} is not in the journal")
        direction, peer = row[0], row[1]
        attachments = tuple(
            Attachment(name=r[0], data=bytes(r[1]))
            for r in self.journal.execute(
                "SELECT name, data FROM attachments WHERE message_id = ? ORDER BY idx",
                (message_id,),
            )
        )
        sender, recipient = (own_name, peer) if direction == "out" else (peer, own_name)
        kind = MessageKind(row[7])
        receipt = b""
        if kind is not MessageKind.MESSAGE:
            found = self.journal.execute("SELECT receipt FROM receipt_items WHERE id = ?", (message_id,)).fetchone()
            receipt = b"" if found is None else bytes(found[0])
        return MessageContent(
            id=message_id, sender=sender, recipient=recipient, precedence=Precedence(row[2]), lang=row[3],
            subject=row[4], body=row[5], created_at_ns=row[6], attachments=attachments, kind=kind, receipt=receipt,
            classification=row[8],
        )  # fmt: skip

    def record_sealed(
        self, message_id: str, peer: str, seq: int, envelope: bytes, stream_hash: bytes, at_ns: int
    ) -> None:
        self.record_sealed_batch(peer, [Sealed(message_id, seq, envelope, stream_hash)], at_ns)

    def record_sealed_batch(self, peer: str, sealed: Sequence[Sealed], at_ns: int) -> None:
        if not sealed:
            return
        self.journal.append_batch(
            [("message.sealed", {"id": s.message_id, "seq": s.seq, "envelope": s.envelope, "sh": s.stream_hash}, peer)
             for s in sealed], at_ns,
        )  # fmt: skip
        self.journal.executemany(
            "UPDATE messages SET seq = ?, envelope = ?, stream_hash = ?, state = 'sent', sent_at_ns = ? "
            "WHERE id = ? AND state = 'queued'",
            [(s.seq, s.envelope, s.stream_hash, at_ns, s.message_id) for s in sealed],
        )
        last = sealed[-1]  # the cursor moves once per batch: the batch's last envelope says where it stands
        self.journal.execute(
            "UPDATE cursors SET out_next_seq = ?, out_stream_hash = ? WHERE peer = ?",
            (last.seq + 1, last.stream_hash, peer),
        )

    def unacked(self, peer: str) -> dict[int, bytes]:
        rows = self.journal.execute(
            "SELECT seq, envelope FROM messages WHERE direction = 'out' AND peer = ? AND state = 'sent' ORDER BY seq",
            (peer,),
        ).fetchall()
        return {r[0]: bytes(r[1]) for r in rows}

    def stream_hash_at(self, peer: str, seq: int) -> bytes | None:
        row = self.journal.execute(
            "SELECT stream_hash FROM messages WHERE direction = 'out' AND peer = ? AND seq = ?",
            (peer, seq),
        ).fetchone()
        return None if row is None or row[0] is None else bytes(row[0])

    def record_delivered(self, peer: str, receipt: bytes, upto: int, at_ns: int) -> list[str]:
        """Journal a verified delivery receipt; mark the messages it covers delivered."""
        self.journal.append(
            "receipt.received",
            {"kind": "delivered", "upto": upto, "receipt": receipt},
            at_ns,
            peer=peer,
        )
        # Bounded below by what was already acknowledged: ``seq <= upto`` alone walks the index over
        # every message ever delivered to this peer on each receipt (quadratic over a long stream).
        rows = self.journal.execute(
            "UPDATE messages SET state = 'delivered', delivered_at_ns = ? "
            "WHERE direction = 'out' AND peer = ? AND state = 'sent' "
            "AND seq > (SELECT out_acked FROM cursors WHERE peer = ?) AND seq <= ? RETURNING seq, id",
            (at_ns, peer, peer, upto),
        ).fetchall()
        ids = [r[1] for r in sorted(rows)]
        self.journal.execute(
            "UPDATE cursors SET out_acked = max(out_acked, ?), last_receipt_in = ?, last_contact_ns = ? WHERE peer = ?",
            (upto, receipt, at_ns, peer),
        )
        return ids

    def _insert_attachments(self, contents: Sequence[MessageContent]) -> None:
        rows = [
            (c.id, i, a.name, hashlib.sha256(a.data).digest(), a.data)
            for c in contents
            for i, a in enumerate(c.attachments)
        ]
        if rows:
            self.journal.executemany(
                "INSERT INTO attachments(message_id, idx, name, sha256, data) VALUES (?,?,?,?,?)", rows
            )

    # -- incoming messages ------------------------------------------------------------------

    def record_received(
        self, content: MessageContent, seq: int, envelope: bytes, stream_hash: bytes, at_ns: int
    ) -> None:
        self.record_received_batch(content.sender, [Arrival(content, seq, envelope, stream_hash)], at_ns)

    def record_received_batch(self, peer: str, arrivals: Sequence[Arrival], at_ns: int) -> None:
        if not arrivals:
            return
        entries = self.journal.append_batch([self._arrival_entry(peer, a) for a in arrivals], at_ns)
        received = [(a, entry) for a, entry in zip(arrivals, entries, strict=True) if not a.duplicate]
        self.journal.executemany(
            "INSERT INTO messages(id, direction, peer, seq, precedence, lang, subject, body, created_at_ns, state, "
            "received_at_ns, envelope, stream_hash, order_key, kind, classification) "
            "VALUES (?, 'in', ?, ?, ?, ?, ?, ?, ?, 'received', ?, ?, ?, ?, ?, ?)",
            [(c.id, peer, a.seq, int(c.precedence), c.lang, c.subject, c.body, c.created_at_ns, at_ns, a.envelope,
              a.stream_hash, entry, c.kind.value, c.classification) for a, entry in received for c in (a.content,)],
        )  # fmt: skip
        self._insert_attachments([a.content for a, _ in received])
        last = arrivals[-1]  # the cursor moves once per batch, to the last envelope of it
        self._move_in_cursor(peer, last.seq, last.stream_hash, at_ns)

    @staticmethod
    def _arrival_entry(peer: str, arrival: Arrival) -> tuple[str, dict[str, Any], str]:
        if arrival.duplicate:
            body = _duplicate_body(arrival.content.id, arrival.seq, arrival.envelope, arrival.stream_hash)
            return ("message.duplicate", body, peer)
        fields = content_fields(arrival.content)
        fields.update({"seq": arrival.seq, "envelope": arrival.envelope, "sh": arrival.stream_hash})
        return ("message.received", fields, peer)

    def record_receipt_sent(self, peer: str, receipt: bytes, upto: int, at_ns: int) -> None:
        self.journal.append(
            "receipt.sent",
            {"kind": "delivered", "upto": upto, "receipt": receipt},
            at_ns,
            peer=peer,
        )
        self.journal.execute("UPDATE cursors SET last_receipt_out = ? WHERE peer = ?", (receipt, peer))

    def record_duplicate(self, peer: str, message_id: str, seq: int, envelope: bytes, stream_hash: bytes,
                         at_ns: int) -> None:  # fmt: skip
        self.journal.append("message.duplicate", _duplicate_body(message_id, seq, envelope, stream_hash), at_ns,
                            peer=peer)  # fmt: skip
        self._move_in_cursor(peer, seq, stream_hash, at_ns)

    def _move_in_cursor(self, peer: str, seq: int, stream_hash: bytes, at_ns: int) -> None:
        self.journal.execute(
            "UPDATE cursors SET in_upto = ?, in_stream_hash = ?, last_contact_ns = ? WHERE peer = ?",
            (seq, stream_hash, at_ns, peer),
        )

    # -- read and acknowledged receipts ----------------------------------------------------

    def has_message(self, message_id: str) -> bool:
        """Any message, receipt carrier or test with this id, either direction."""
        return self.journal.execute("SELECT 1 FROM messages WHERE id = ?", (message_id,)).fetchone() is not None

    def message_state(self, message_id: str) -> str | None:
        row = self.journal.execute("SELECT state FROM messages WHERE id = ?", (message_id,)).fetchone()
        return None if row is None else str(row[0])

    def awaiting_ack(self, message_id: str) -> tuple[str, str] | None:
        """(direction, subject) of a message still waiting for a person's acknowledgement, else None."""
        row = self.journal.execute(
            "SELECT direction, subject FROM messages WHERE id = ? AND acknowledged_at_ns IS NULL", (message_id,)
        ).fetchone()
        return None if row is None else (str(row[0]), str(row[1]))

    def incoming(self, message_id: str) -> dict[str, Any] | None:
        row = self.journal.execute(
            "SELECT peer, seq, stream_hash, precedence, acknowledged_at_ns, kind, read_at_ns FROM messages "
            "WHERE id = ? AND direction = 'in'",
            (message_id,),
        ).fetchone()
        if row is None:
            return None
        return {"peer": row[0], "seq": row[1], "stream_hash": bytes(row[2]), "precedence": Precedence(row[3]),
                "acknowledged_at_ns": row[4], "kind": row[5], "read_at_ns": row[6]}  # fmt: skip

    def record_acknowledged_here(self, message_id: str, by: str, at_ns: int) -> None:
        """A person here acknowledged an incoming message ("received and understood")."""
        self.journal.append("operator.action", {"action": "acknowledge", "id": message_id, "by": by}, at_ns)
        self.journal.execute(
            "UPDATE messages SET acknowledged_at_ns = ?, acknowledged_by = ?, read_at_ns = coalesce(read_at_ns, ?) "
            "WHERE id = ? AND direction = 'in'",
            (at_ns, by, at_ns, message_id),
        )

    def record_read_here(self, message_id: str, by: str, at_ns: int) -> None:
        """A person here opened an incoming message for the first time."""
        self.journal.append("operator.action", {"action": "read", "id": message_id, "by": by}, at_ns)
        self.journal.execute(
            "UPDATE messages SET read_at_ns = ? WHERE id = ? AND direction = 'in' AND read_at_ns IS NULL",
            (at_ns, message_id),
        )

    def record_person_receipt(self, peer: str, receipt: Receipt, at_ns: int) -> bool:
        """The peer's signed read or acknowledged receipt for one of our messages.

        False if it names no message we sent that peer (logged by the caller, not journaled).
        """
        row = self.journal.execute(
            "SELECT 1 FROM messages WHERE id = ? AND direction = 'out' AND peer = ?", (receipt.message_id, peer)
        ).fetchone()
        if row is None:
            return False
        self.journal.append(
            "receipt.received",
            {"kind": str(receipt.kind), "id": receipt.message_id, "by": receipt.by, "receipt": receipt.raw},
            at_ns,
            peer=peer,
        )
        if receipt.kind is ReceiptKind.ACKNOWLEDGED:
            self.journal.execute(
                "UPDATE messages SET acknowledged_at_ns = ?, acknowledged_by = ?, "
                "read_at_ns = coalesce(read_at_ns, ?) WHERE id = ? AND acknowledged_at_ns IS NULL",
                (at_ns, receipt.by, at_ns, receipt.message_id),
            )
        else:
            self.journal.execute(
                "UPDATE messages SET read_at_ns = ? WHERE id = ? AND read_at_ns IS NULL", (at_ns, receipt.message_id)
            )
        return True

    # -- link events and operator actions ---------------------------------------------------

    def record_link(self, kind: str, peer: str, detail: dict[str, Any], at_ns: int) -> None:
        if kind not in LINK_KINDS:
            raise JournalError(f"unknown link event kind {kind!r}")
        self.journal.append(kind, detail, at_ns, peer=peer)

    def record_alarm(self, change: AlarmChange) -> None:
        a = change.alarm
        if change.raised:
            self.journal.append(
                "alarm.raised", {"kind": a.kind, "subject": a.subject, "detail": a.detail}, change.at_ns, peer=a.peer
            )
            self.journal.execute(
                "INSERT OR REPLACE INTO alarms(kind, peer, subject, detail, raised_ns) VALUES (?,?,?,?,?)",
                (a.kind, a.peer, a.subject, a.detail, a.raised_ns),
            )
        else:
            self.journal.append(
                "alarm.cleared", {"kind": a.kind, "subject": a.subject, "reason": change.reason}, change.at_ns,
                peer=a.peer,
            )  # fmt: skip
            self.journal.execute(
                "DELETE FROM alarms WHERE kind = ? AND peer = ? AND subject = ?", (a.kind, a.peer, a.subject)
            )

    def active_alarms(self) -> list[dict[str, Any]]:
        rows = self.journal.execute(
            "SELECT kind, peer, subject, detail, raised_ns FROM alarms ORDER BY raised_ns"
        ).fetchall()
        return [
            {"id": "/".join(x for x in r[:3] if x), "kind": r[0], "peer": r[1], "subject": r[2], "detail": r[3],
             "raised_ns": r[4]}
            for r in rows
        ]  # fmt: skip

    def unacknowledged(self) -> list[tuple[str, str, str, int]]:
        """Messages (both ways) still waiting for a person's acknowledgement: id, peer, precedence, since."""
        rows = self.journal.execute(
            "SELECT id, peer, precedence, coalesce(received_at_ns, queued_at_ns) FROM messages "
            "WHERE kind = 'message' AND acknowledged_at_ns IS NULL"
        ).fetchall()
        return [(r[0], r[1], Precedence(r[2]).label, r[3]) for r in rows]

    # -- the desk: calls, readouts, commitments ------------------------------------------------

    def record_desk(self, record_id: str, signed: bytes, direction: str, message_id: str, at_ns: int) -> None:
        if direction == "local":
            entry = self.journal.append("desk.record", {"id": record_id, "record": signed}, at_ns)
        else:
            found = self.journal.execute("SELECT order_key FROM messages WHERE id = ?", (message_id,)).fetchone()
            if found is None:
                raise JournalError(f"desk record {record_id} names message {message_id}, which is not journaled")
            entry = found[0]
        self.journal.execute(
            "INSERT OR IGNORE INTO desk_records(id, direction, message_id, signed, at_ns, entry) VALUES (?,?,?,?,?,?)",
            (record_id, direction, message_id or None, signed, at_ns, entry),
        )

    def desk_records(self) -> list[bytes]:
        return [bytes(r[0]) for r in self.journal.execute("SELECT signed FROM desk_records ORDER BY entry, id")]

    def record_carriers(self, direction: str = "out", signed: bytes | None = None) -> list[dict[str, Any]]:
        if direction == "out":
            sql = ("SELECT r.receipt, m.id, m.peer, m.state, m.delivered_at_ns, m.read_at_ns, m.acknowledged_at_ns, "
                   "m.acknowledged_by, m.received_at_ns FROM messages m JOIN receipt_items r ON r.id = m.id "
                   "WHERE m.direction = 'out' AND m.kind = 'record'")  # fmt: skip
            only = " AND r.receipt = ?"
        else:
            sql = ("SELECT d.signed, m.id, m.peer, m.state, m.delivered_at_ns, m.read_at_ns, m.acknowledged_at_ns, "
                   "m.acknowledged_by, m.received_at_ns FROM messages m JOIN desk_records d ON d.message_id = m.id "
                   "WHERE m.direction = 'in' AND d.direction = 'in'")  # fmt: skip
            only = " AND d.signed = ?"
        args: tuple[bytes, ...] = ()
        if signed is not None:
            sql, args = sql + only, (signed,)
        keys = ("signed", "id", "peer", "state", "delivered_at_ns", "read_at_ns", "acknowledged_at_ns",
                "acknowledged_by", "received_at_ns")  # fmt: skip
        rows = self.journal.execute(sql + " ORDER BY m.order_key", args)
        return [{**dict(zip(keys, r, strict=True)), "signed": bytes(r[0])} for r in rows]

    def carried_record(self, message_id: str) -> tuple[bytes, str] | None:
        found = self.journal.execute(
            "SELECT r.receipt, 'out' FROM messages m JOIN receipt_items r ON r.id = m.id "
            "WHERE m.id = ? AND m.kind = 'record' "
            "UNION ALL SELECT signed, 'in' FROM desk_records WHERE message_id = ? AND direction = 'in'",
            (message_id, message_id),
        ).fetchone()
        return None if found is None else (bytes(found[0]), str(found[1]))

    def carrier_of(self, record_id: str) -> str | None:
        found = self.journal.execute(
            "SELECT message_id FROM desk_records WHERE id = ? AND direction IN ('in', 'out')", (record_id,)
        ).fetchone()
        return None if found is None else str(found[0])

    def record_operator(self, action: str, detail: dict[str, Any], at_ns: int) -> None:
        self.journal.append("operator.action", {"action": action, **detail}, at_ns)

    # -- reading ----------------------------------------------------------------------------

    _MESSAGE_COLUMNS = (
        "SELECT id, peer, seq, precedence, lang, subject, body, created_at_ns, state, queued_at_ns, "
        "sent_at_ns, delivered_at_ns, received_at_ns, acknowledged_at_ns, acknowledged_by, "
        "(SELECT count(*) FROM attachments a WHERE a.message_id = m.id), direction, read_at_ns, classification "
        "FROM messages m "
    )

    @staticmethod
    def _message_row(r: Any) -> dict[str, Any]:
        return {
            "id": r[0], "peer": r[1], "seq": r[2], "precedence": Precedence(r[3]).label, "lang": r[4],
            "subject": r[5], "body": r[6], "created_at_ns": r[7], "state": MessageState(r[8]).value,
            "queued_at_ns": r[9], "sent_at_ns": r[10], "delivered_at_ns": r[11], "received_at_ns": r[12],
            "acknowledged_at_ns": r[13], "acknowledged_by": r[14], "attachments": r[15], "read_at_ns": r[17],
            "classification": r[18],
        }  # fmt: skip

    def messages(self, direction: str, peer: str | None = None, limit: int = 100) -> list[dict[str, Any]]:
        sql = self._MESSAGE_COLUMNS + "WHERE direction = ? AND kind = 'message'"
        params: list[Any] = [direction]
        if peer is not None:
            sql += " AND peer = ?"
            params.append(peer)
        sql += " ORDER BY order_key DESC LIMIT ?"
        params.append(limit)
        out = [self._message_row(r) for r in self.journal.execute(sql, tuple(params)).fetchall()]
        out.reverse()
        return out

    def message_count(self, direction: str, peer: str | None = None) -> int:
        sql = "SELECT count(*) FROM messages WHERE direction = ? AND kind = 'message'"
        params: tuple[Any, ...] = (direction,) if peer is None else (direction, peer)
        return int(self.journal.execute(sql + (" AND peer = ?" if peer is not None else ""), params).fetchone()[0])

    def message(self, message_id: str) -> dict[str, Any] | None:
        """One message (either direction) with its attachments' names, sizes and digests."""
        r = self.journal.execute(
            self._MESSAGE_COLUMNS + "WHERE id = ? AND kind IN ('message', 'record')", (message_id,)
        ).fetchone()
        if r is None:
            return None
        found = self._message_row(r)
        found["direction"] = r[16]
        found["attachments"] = [
            {"index": a[0], "name": a[1], "size": a[2], "sha256": bytes(a[3]).hex()}
            for a in self.journal.execute(
                "SELECT idx, name, length(data), sha256 FROM attachments WHERE message_id = ? ORDER BY idx",
                (message_id,),
            )
        ]
        return found

    def attachment(self, message_id: str, index: int) -> tuple[str, bytes] | None:
        row = self.journal.execute(
            "SELECT a.name, a.data FROM attachments a JOIN messages m ON m.id = a.message_id "
            "WHERE a.message_id = ? AND a.idx = ? AND m.kind IN ('message', 'record')",
            (message_id, index),
        ).fetchone()
        return None if row is None else (row[0], bytes(row[1]))

    def queue_depth(self, peer: str) -> dict[str, int]:
        rows = self.journal.execute(
            "SELECT state, count(*) FROM messages WHERE direction = 'out' AND peer = ? GROUP BY state",
            (peer,),
        ).fetchall()
        depth = {"queued": 0, "sent": 0, "delivered": 0}
        depth.update({r[0]: r[1] for r in rows})
        return depth

    def tallies(self) -> list[dict[str, Any]]:
        groups: dict[tuple[str, str, int], dict[str, Any]] = {}
        for peer, direction, precedence, state, count, acknowledged in self.journal.execute(
            "SELECT peer, direction, precedence, state, count(*), count(acknowledged_at_ns) FROM messages "
            "WHERE kind = 'message' GROUP BY peer, direction, precedence, state"
        ):
            group = groups.setdefault((peer, direction, precedence), {
                "peer": peer, "direction": direction, "precedence": Precedence(precedence).label,
                "queued": 0, "sent": 0, "delivered": 0, "received": 0, "acknowledged": 0,
            })  # fmt: skip
            group[MessageState(state).value] += count
            group["acknowledged"] += acknowledged
        return [groups[k] for k in sorted(groups)]

    def received_count(self, peer: str) -> int:
        return int(
            self.journal.execute(
                "SELECT count(*) FROM messages WHERE direction = 'in' AND peer = ?", (peer,)
            ).fetchone()[0]
        )


def _duplicate_body(message_id: str, seq: int, envelope: bytes, stream_hash: bytes) -> dict[str, Any]:
    return {"id": message_id, "seq": seq, "envelope": envelope, "sh": stream_hash}
