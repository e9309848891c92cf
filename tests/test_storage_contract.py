"""The storage contract: what every backend must do, checked through the Protocols of hotline.storage.base.

Each test takes the ``backend`` fixture, parametrized over every implementation
(SQLite today; a PostgreSQL backend joins ``BACKENDS``), and uses only the
interfaces: ``Record``, ``TerminalStore`` (peers, messages, alarms, events) and
``AccessStore``. Records are filled with real envelopes and receipts
(``storage_scenario.Conversation``) so that ``storage.audit.verify`` checks
their chain and every signature, as it does for a terminal's journal.

The last tests are SQLite's own: a journal written before the storage moved
behind these interfaces (``tests/vectors/journal_v1.sql``) still opens, reads
and verifies, and a new journal has exactly its schema.
"""

from __future__ import annotations

import dataclasses
import hashlib
import itertools
import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from hotline.core.access import Principal, Role, check_password, new_password_hash
from hotline.core.alarms import Alarm, AlarmChange
from hotline.core.errors import AccessError, DeliveryError, JournalError, UnknownToken, UnknownUser
from hotline.core.model import EMPTY_STREAM_HASH, Attachment, MessageContent, MessageKind, Precedence, ReceiptKind
from hotline.storage.audit import verify
from hotline.storage.backend import Storage, open_storage
from hotline.storage.base import AccessStore, Record, TerminalStore
from hotline.storage.records import GENESIS_HASH, Arrival, Sealed, entry_hash
from storage_scenario import SECOND, T0, Conversation

VECTOR = Path(__file__).parent / "vectors" / "journal_v1.sql"

# Every backend, opened on a folder of its own; the same folder opens the same storage again.
BACKENDS: dict[str, Callable[[Path], Storage]] = {
    "sqlite": lambda folder: open_storage(folder / "journal.sqlite", synchronous="NORMAL"),
}


class Backend:
    """One backend's storage in a fresh place, which a test may close and open again."""

    def __init__(self, opener: Callable[[], Storage]) -> None:
        self._opener = opener
        self.storage = opener()

    @property
    def record(self) -> Record:
        return self.storage.record

    @property
    def store(self) -> TerminalStore:
        return self.storage.store

    @property
    def access(self) -> AccessStore:
        return self.storage.access

    def reopen(self) -> None:
        """As after a restart: everything committed is there, nothing else."""
        self.storage.close()
        self.storage = self._opener()


@pytest.fixture(params=sorted(BACKENDS))
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    opener = BACKENDS[request.param]
    found = Backend(lambda: opener(tmp_path))
    yield found
    found.storage.close()


def kinds(record: Record, start: int = 1) -> list[str]:
    return [e.kind for e in record.entries(start)]


def paired(b: Backend) -> Conversation:
    """The terminal created and the peer pinned, as after `hotline init` and `hotline pair`."""
    talk = Conversation()
    us = talk.us
    with b.record.transaction():
        b.store.record_created(us.name, us.public_key, us.dh_public, us.cert_der, T0)
        b.store.add_peer("moscow", talk.card_json, talk.them.public_key, talk.safety_number, talk.session(), T0 + 1)
    return talk


def assert_verifies(record: Record, signatures: int) -> None:
    report = verify(record)
    assert report.problems == []
    assert report.entries == record.entry_count()
    assert report.signatures == signatures


# -- the record -------------------------------------------------------------------------------


def test_appended_entries_form_a_hash_chain_that_verifies(backend: Backend) -> None:
    record = backend.record
    assert record.entry_count() == 0 and list(record.entries()) == [] and record.last() is None
    with record.transaction():
        first = record.append("operator.action", {"action": "note", "text": "Привет"}, T0)
        second = record.append("link.up", {"path": "primary"}, T0 + 1, peer="moscow")
    with record.transaction():
        third = record.append("operator.action", {"action": "note", "n": 3}, T0 + 2)
    assert (first, second, third) == (1, 2, 3)

    entries = list(record.entries())
    assert [(e.seq, e.kind, e.peer, e.at_ns) for e in entries] == [
        (1, "operator.action", "", T0), (2, "link.up", "moscow", T0 + 1), (3, "operator.action", "", T0 + 2),
    ]  # fmt: skip
    assert entries[0].decoded() == {"action": "note", "text": "Привет"}
    assert entries[0].prev == GENESIS_HASH
    for before, entry in itertools.pairwise(entries):
        assert entry.prev == before.hash
    for e in entries:
        assert e.hash == entry_hash(e.prev, e.seq, e.at_ns, e.kind, e.peer, e.body)
    assert [e.seq for e in record.entries(2)] == [2, 3]
    assert record.entry_count() == 3
    assert record.size_bytes() > 0
    assert record.last() == entries[-1]
    assert_verifies(record, signatures=0)

    backend.reopen()
    assert [e.hash for e in backend.record.entries()] == [e.hash for e in entries], "the chain is durable"
    with backend.record.transaction():
        assert backend.record.append("operator.action", {"action": "note"}, T0 + 3) == 4
    assert next(backend.record.entries(4)).prev == entries[-1].hash, "after a restart the chain goes on"


def test_a_write_outside_a_transaction_is_refused_and_leaves_nothing(backend: Backend) -> None:
    talk = paired(backend)
    before = backend.record.entry_count()
    with pytest.raises(JournalError, match="outside a transaction"):
        backend.record.append("operator.action", {"action": "note"}, T0)
    with pytest.raises(JournalError, match="outside a transaction"):
        backend.record.set_meta("k", b"v")
    with pytest.raises(JournalError, match="outside a transaction"):
        backend.store.accept(talk.message(1), T0)
    with pytest.raises(JournalError, match="outside a transaction"):
        backend.store.record_link("link.up", "moscow", {"path": "primary"}, T0)
    with pytest.raises(JournalError, match="outside a transaction"):
        backend.store.mark_verified("moscow", T0)
    assert backend.record.entry_count() == before
    assert backend.record.get_meta("k") is None
    assert not backend.store.has_message(talk.message(1).id)
    peer = backend.store.peer("moscow")
    assert peer is not None and peer.verified_at_ns is None


def test_an_error_inside_a_transaction_rolls_all_of_it_back(backend: Backend) -> None:
    talk = paired(backend)
    before = list(backend.record.entries())
    with pytest.raises(RuntimeError, match="crash"), backend.record.transaction():
        backend.store.accept(talk.message(1), T0 + SECOND)
        backend.record.set_meta("k", b"v")
        with backend.record.transaction():  # a nested transaction joins the outer one
            backend.store.add_peer("kyiv", talk.card_json, b"\x01" * 32, "1" * 60, b"s", T0 + SECOND)
        raise RuntimeError("crash")
    assert list(backend.record.entries()) == before
    assert not backend.store.has_message(talk.message(1).id)
    assert backend.store.queued("moscow") == []
    assert backend.store.peer("kyiv") is None
    assert backend.record.get_meta("k") is None
    with backend.record.transaction():  # and the record takes the next write as if nothing happened
        assert backend.record.append("operator.action", {"action": "note"}, T0) == len(before) + 1
    assert_verifies(backend.record, signatures=0)


def test_metadata_is_kept_beside_the_chain_not_in_it(backend: Backend) -> None:
    assert backend.record.get_meta("k") is None
    with backend.record.transaction():
        backend.record.set_meta("k", b"one")
        backend.record.set_meta("k", b"two")
    backend.reopen()
    assert backend.record.get_meta("k") == b"two"
    assert backend.record.entry_count() == 0


def test_a_reader_sees_what_is_committed_and_cannot_write(backend: Backend) -> None:
    with backend.record.transaction():
        backend.record.append("operator.action", {"action": "note"}, T0)
    reader = backend.record.reader()
    try:
        assert kinds(reader) == ["operator.action"]
        with backend.record.transaction():
            backend.record.append("link.up", {"path": "primary"}, T0 + 1, peer="moscow")
        assert kinds(reader) == ["operator.action", "link.up"]
        with pytest.raises(JournalError), reader.transaction():
            reader.append("operator.action", {"action": "forged"}, T0 + 2)
    finally:
        reader.close()
    assert backend.record.entry_count() == 2


# -- peers ------------------------------------------------------------------------------------


def test_a_peer_is_pinned_with_fresh_cursors_and_its_session(backend: Backend) -> None:
    talk = paired(backend)
    peer = backend.store.peer("moscow")
    assert peer is not None
    assert (peer.name, peer.card_json, peer.identity_key, peer.safety_number, peer.paired_at_ns) == (
        "moscow", talk.card_json, talk.them.public_key, talk.safety_number, T0 + 1,
    )  # fmt: skip
    assert peer.verified_at_ns is None
    assert backend.store.peer("kyiv") is None
    cursors = backend.store.cursors("moscow")
    assert (cursors.out_next_seq, cursors.out_acked, cursors.in_upto) == (1, 0, 0)
    assert cursors.out_stream_hash == cursors.in_stream_hash == EMPTY_STREAM_HASH
    assert (cursors.last_receipt_out, cursors.last_receipt_in, cursors.last_contact_ns) == (None, None, None)
    assert backend.store.load_session("moscow") == talk.session()
    with backend.record.transaction():
        backend.store.save_session("moscow", b"the next state")
    assert backend.store.load_session("moscow") == b"the next state"
    with pytest.raises(JournalError, match="pair with it first"):
        backend.store.load_session("kyiv")
    with pytest.raises(JournalError, match="pair with it first"):
        backend.store.cursors("kyiv")

    assert kinds(backend.record) == ["terminal.created", "peer.paired"]
    body = list(backend.record.entries())[1].decoded()
    assert body["identity_key"] == talk.them.public_key and body["safety_number"] == talk.safety_number


def test_peers_are_listed_by_name_and_verified_by_an_operator(backend: Backend) -> None:
    talk = paired(backend)
    with backend.record.transaction():
        backend.store.add_peer("kyiv", talk.card_json, b"\x02" * 32, "2" * 60, b"k", T0 + 2)
        backend.store.mark_verified("moscow", T0 + 3, by="alice")
    assert [p.name for p in backend.store.peers()] == ["kyiv", "moscow"]
    moscow = backend.store.peer("moscow")
    assert moscow is not None and moscow.verified_at_ns == T0 + 3
    kyiv = backend.store.peer("kyiv")
    assert kyiv is not None and kyiv.verified_at_ns is None
    last = list(backend.record.entries())[-1]
    assert last.kind == "operator.action"
    assert last.decoded() == {
        "action": "verify-peer", "peer": "moscow", "safety_number": talk.safety_number, "by": "alice",
    }  # fmt: skip
    with pytest.raises(DeliveryError, match="no peer named 'minsk'"), backend.record.transaction():
        backend.store.mark_verified("minsk", T0 + 4)


def test_re_pairing_the_same_key_keeps_the_stream_and_a_new_key_starts_a_new_one(backend: Backend) -> None:
    talk = paired(backend)
    first, second = talk.message(1), talk.message(2)
    with backend.record.transaction():
        backend.store.accept(first, T0 + SECOND)
        backend.store.accept(second, T0 + SECOND)
        envelope, sh = talk.seal_out(first, 1)
        backend.store.record_sealed(first.id, "moscow", 1, envelope, sh, T0 + 2 * SECOND)
        backend.store.save_session("moscow", b"advanced")
    with backend.record.transaction():
        replaced = backend.store.add_peer(
            "moscow", talk.card_json, talk.them.public_key, talk.safety_number, b"ignored", T0 + 3 * SECOND
        )
    assert replaced is False
    assert backend.store.load_session("moscow") == b"advanced", "the same key keeps its session"
    assert backend.store.cursors("moscow").out_next_seq == 2
    assert backend.store.unacked("moscow") == {1: envelope}

    with backend.record.transaction():
        replaced = backend.store.add_peer("moscow", talk.card_json, b"\x03" * 32, "3" * 60, b"fresh", T0 + 4 * SECOND)
    assert replaced is True
    peer = backend.store.peer("moscow")
    assert peer is not None and peer.identity_key == b"\x03" * 32 and peer.paired_at_ns == T0 + 4 * SECOND
    assert backend.store.load_session("moscow") == b"fresh"
    cursors = backend.store.cursors("moscow")
    assert (cursors.out_next_seq, cursors.out_stream_hash) == (1, EMPTY_STREAM_HASH)
    assert backend.store.unacked("moscow") == {}, "nothing stays sealed for the old key"
    assert [q[0] for q in backend.store.queued("moscow")] == [first.id, second.id], "both go out again, in order"
    assert backend.store.message_state(first.id) == "queued"
    assert backend.store.stream_hash_at("moscow", 1) is None
    assert kinds(backend.record).count("peer.paired") == 3


# -- messages ---------------------------------------------------------------------------------


def test_a_message_goes_from_accepted_to_queued_sealed_and_delivered(backend: Backend) -> None:
    talk = paired(backend)
    store = backend.store
    attachment = Attachment("map.txt", b"grid square 7")
    flash, routine = talk.message(1, attachments=(attachment,)), talk.message(2)
    with backend.record.transaction():
        assert store.accept(routine, T0 + SECOND) is True
        assert store.accept(flash, T0 + SECOND) is True
    with backend.record.transaction():
        assert store.accept(flash, T0 + 2 * SECOND) is False, "the same message again is a no-op"
    with pytest.raises(DeliveryError, match="already used by a different message"), backend.record.transaction():
        store.accept(dataclasses.replace(flash, body="something else"), T0 + 2 * SECOND)
    with pytest.raises(DeliveryError, match="no peer named 'kyiv'"), backend.record.transaction():
        store.accept(dataclasses.replace(flash, recipient="kyiv"), T0 + 2 * SECOND)
    assert kinds(backend.record).count("message.accepted") == 2

    queued = store.queued("moscow")
    assert [q[0] for q in queued] == [routine.id, flash.id], "in the order accepted"
    assert [q[1] for q in queued] == [Precedence.ROUTINE, Precedence.FLASH]
    assert store.load_content(flash.id, "washington") == flash
    assert store.has_message(flash.id) and not store.has_message("0190f2a0-0000-7000-8000-999999999999")
    assert store.message_state(flash.id) == "queued"
    assert store.message_state("0190f2a0-0000-7000-8000-999999999999") is None
    assert store.queue_depth("moscow") == {"queued": 2, "sent": 0, "delivered": 0}
    with pytest.raises(JournalError, match="not in the journal"):
        store.load_content("0190f2a0-0000-7000-8000-999999999999", "washington")

    with backend.record.transaction():
        envelope, sh = talk.seal_out(flash, 1)
        store.record_sealed(flash.id, "moscow", 1, envelope, sh, T0 + 3 * SECOND)
    assert [q[0] for q in store.queued("moscow")] == [routine.id]
    assert store.message_state(flash.id) == "sent"
    assert store.unacked("moscow") == {1: envelope}
    assert store.stream_hash_at("moscow", 1) == sh
    assert store.stream_hash_at("moscow", 2) is None
    cursors = store.cursors("moscow")
    assert (cursors.out_next_seq, cursors.out_acked, cursors.out_stream_hash) == (2, 0, sh)
    assert store.queue_depth("moscow") == {"queued": 1, "sent": 1, "delivered": 0}

    receipt = talk.their_delivery_receipt(1, T0 + 4 * SECOND)
    with backend.record.transaction():
        assert store.record_delivered("moscow", receipt, 1, T0 + 4 * SECOND) == [flash.id]
    with backend.record.transaction():
        assert store.record_delivered("moscow", receipt, 1, T0 + 5 * SECOND) == [], "delivered once"
    assert store.message_state(flash.id) == "delivered"
    assert store.unacked("moscow") == {}
    cursors = store.cursors("moscow")
    assert (cursors.out_acked, cursors.last_receipt_in, cursors.last_contact_ns) == (1, receipt, T0 + 5 * SECOND)
    assert store.queue_depth("moscow") == {"queued": 1, "sent": 0, "delivered": 1}
    counts = {"queued": 0, "sent": 0, "delivered": 0, "received": 0, "acknowledged": 0}
    assert store.tallies() == [
        {"peer": "moscow", "direction": "out", "precedence": "routine", **counts, "queued": 1},
        {"peer": "moscow", "direction": "out", "precedence": "flash", **counts, "delivered": 1},
    ]

    listing = store.messages("out")
    assert [m["id"] for m in listing] == [routine.id, flash.id], "oldest first"
    row = listing[1]
    assert {k: row[k] for k in ("peer", "seq", "precedence", "subject", "body", "state", "attachments")} == {
        "peer": "moscow", "seq": 1, "precedence": "flash", "subject": "subject 1", "body": flash.body,
        "state": "delivered", "attachments": 1,
    }  # fmt: skip
    assert (row["queued_at_ns"], row["sent_at_ns"], row["delivered_at_ns"]) == (
        T0 + SECOND, T0 + 3 * SECOND, T0 + 4 * SECOND,
    )  # fmt: skip
    assert row["classification"] == "UNCLASSIFIED" and row["received_at_ns"] is None
    assert [m["id"] for m in store.messages("out", limit=1)] == [flash.id], "the latest, when limited"
    assert store.messages("out", peer="kyiv") == [] and store.messages("in") == []
    found = store.message(flash.id)
    assert found is not None and found["direction"] == "out"
    assert found["attachments"] == [
        {
            "index": 0,
            "name": "map.txt",
            "size": len(attachment.data),
            "sha256": hashlib.sha256(attachment.data).hexdigest(),
        }
    ]
    assert store.attachment(flash.id, 0) == ("map.txt", b"grid square 7")
    assert store.attachment(flash.id, 1) is None
    assert store.message("0190f2a0-0000-7000-8000-999999999999") is None
    assert_verifies(backend.record, signatures=3)  # the envelope and both receipts


def test_a_batch_of_entries_is_appended_in_order_and_chained_like_single_ones(backend: Backend) -> None:
    record = backend.record
    with record.transaction():
        assert record.append("operator.action", {"action": "note", "n": 1}, T0) == 1
        assert record.append_batch([("link.up", {"path": "primary"}, "moscow"),
                                    ("operator.action", {"action": "note", "n": 3}, "")], T0 + 1) == [2, 3]  # fmt: skip
        assert record.append_batch([], T0 + 2) == []
        assert record.append("operator.action", {"action": "note", "n": 4}, T0 + 3) == 4
    entries = list(record.entries())
    assert [(e.seq, e.kind, e.peer, e.at_ns) for e in entries] == [
        (1, "operator.action", "", T0), (2, "link.up", "moscow", T0 + 1), (3, "operator.action", "", T0 + 1),
        (4, "operator.action", "", T0 + 3),
    ]  # fmt: skip
    for before, entry in itertools.pairwise(entries):
        assert entry.prev == before.hash
    assert_verifies(record, signatures=0)


def test_a_flush_of_messages_is_accepted_sealed_and_delivered_as_a_batch(backend: Backend) -> None:
    talk = paired(backend)
    store = backend.store
    earlier, first, second = talk.message(1), talk.message(2), talk.message(3)
    with backend.record.transaction():
        assert store.accept(earlier, T0 + SECOND) is True
    clash = dataclasses.replace(second, body="another body under the same id")
    stranger = dataclasses.replace(talk.message(4), recipient="kyiv")
    with backend.record.transaction():
        results = store.accept_batch([first, earlier, second, second, clash, stranger], T0 + 2 * SECOND)
    assert results[:4] == [True, False, True, False], "new, accepted before, new, the same again in the batch"
    assert isinstance(results[4], DeliveryError) and "already used by a different message" in str(results[4])
    assert isinstance(results[5], DeliveryError) and "no peer named 'kyiv'" in str(results[5])
    assert [q[0] for q in store.queued("moscow")] == [earlier.id, first.id, second.id]
    assert store.load_content(second.id, "washington") == second
    assert kinds(backend.record).count("message.accepted") == 3

    with backend.record.transaction():
        rows = []
        for seq, content in enumerate((earlier, first, second), start=1):
            envelope, sh = talk.seal_out(content, seq)
            rows.append(Sealed(content.id, seq, envelope, sh))
        store.record_sealed_batch("moscow", rows, T0 + 3 * SECOND)
        store.record_sealed_batch("moscow", [], T0 + 3 * SECOND)
    assert store.queued("moscow") == []
    assert store.unacked("moscow") == {row.seq: row.envelope for row in rows}
    cursors = store.cursors("moscow")
    assert (cursors.out_next_seq, cursors.out_stream_hash) == (4, rows[-1].stream_hash), "moved once, to the last"
    assert [store.stream_hash_at("moscow", row.seq) for row in rows] == [row.stream_hash for row in rows]

    with backend.record.transaction():
        assert store.record_delivered("moscow", talk.their_delivery_receipt(2, T0), 2, T0 + 4 * SECOND) == [
            earlier.id, first.id]  # fmt: skip
    with backend.record.transaction():
        assert store.record_delivered("moscow", talk.their_delivery_receipt(3, T0), 3, T0 + 5 * SECOND) == [
            second.id], "only what the receipt adds, however long the stream behind it"  # fmt: skip
    assert store.unacked("moscow") == {} and store.cursors("moscow").out_acked == 3
    assert_verifies(backend.record, signatures=5)  # three envelopes, two receipts


def test_a_flush_of_arrivals_is_journaled_in_stream_order_with_its_duplicates(backend: Backend) -> None:
    talk = paired(backend)
    store = backend.store
    one, two, three = (talk.message(n, incoming=True) for n in (1, 2, 3))
    sealed = [talk.seal_in(one, 1), talk.seal_in(two, 2), talk.seal_in(one, 3), talk.seal_in(three, 4)]
    arrivals = [
        Arrival(one, 1, *sealed[0]), Arrival(two, 2, *sealed[1]),
        Arrival(one, 3, *sealed[2], duplicate=True),  # sent again after a re-key: journaled, not delivered twice
        Arrival(three, 4, *sealed[3]),
    ]  # fmt: skip
    with backend.record.transaction():
        store.record_received_batch("moscow", arrivals, T0 + SECOND)
        store.record_received_batch("moscow", [], T0 + SECOND)
    assert kinds(backend.record)[-4:] == ["message.received", "message.received", "message.duplicate",
                                          "message.received"]  # fmt: skip
    cursors = store.cursors("moscow")
    assert (cursors.in_upto, cursors.in_stream_hash, cursors.last_contact_ns) == (4, sealed[3][1], T0 + SECOND)
    assert store.received_count("moscow") == 3
    assert [m["id"] for m in store.messages("in")] == [one.id, two.id, three.id]
    assert store.incoming(three.id) == {
        "peer": "moscow", "seq": 4, "stream_hash": sealed[3][1], "precedence": Precedence.ROUTINE,
        "acknowledged_at_ns": None, "kind": "message", "read_at_ns": None,
    }  # fmt: skip
    assert_verifies(backend.record, signatures=4)


def test_received_messages_receipts_and_acknowledgements(backend: Backend) -> None:
    talk = paired(backend)
    store = backend.store
    ours, theirs = talk.message(1), talk.message(1, incoming=True)
    with backend.record.transaction():
        store.accept(ours, T0 + SECOND)
        envelope, sh = talk.seal_out(ours, 1)
        store.record_sealed(ours.id, "moscow", 1, envelope, sh, T0 + SECOND)
        envelope, in_sh = talk.seal_in(theirs, 1)
        store.record_received(theirs, 1, envelope, in_sh, T0 + 2 * SECOND)
        our_receipt = talk.our_delivery_receipt(1, T0 + 2 * SECOND)
        store.record_receipt_sent("moscow", our_receipt, 1, T0 + 2 * SECOND)
    cursors = store.cursors("moscow")
    assert (cursors.in_upto, cursors.in_stream_hash, cursors.last_receipt_out) == (1, in_sh, our_receipt)
    assert cursors.last_contact_ns == T0 + 2 * SECOND
    assert store.received_count("moscow") == 1
    assert store.load_content(theirs.id, "washington") == theirs
    assert [m["id"] for m in store.messages("in")] == [theirs.id]
    assert store.messages("in")[0]["state"] == "received"
    incoming = store.incoming(theirs.id)
    assert incoming == {
        "peer": "moscow", "seq": 1, "stream_hash": in_sh, "precedence": Precedence.FLASH,
        "acknowledged_at_ns": None, "kind": "message", "read_at_ns": None,
    }  # fmt: skip
    assert store.incoming(ours.id) is None, "ours is not incoming"
    waiting = {row[0]: row for row in store.unacknowledged()}
    assert waiting == {
        ours.id: (ours.id, "moscow", "flash", T0 + SECOND),
        theirs.id: (theirs.id, "moscow", "flash", T0 + 2 * SECOND),
    }
    assert store.awaiting_ack(theirs.id) == ("in", "subject 1")

    with backend.record.transaction():
        store.record_read_here(theirs.id, "alice", T0 + 3 * SECOND)
        store.record_read_here(theirs.id, "bob", T0 + 4 * SECOND)  # the first reading stands
    incoming = store.incoming(theirs.id)
    assert incoming is not None and incoming["read_at_ns"] == T0 + 3 * SECOND
    assert incoming["acknowledged_at_ns"] is None
    with backend.record.transaction():
        store.record_acknowledged_here(theirs.id, "alice", T0 + 5 * SECOND)
    found = store.message(theirs.id)
    assert found is not None and found["direction"] == "in"
    assert (found["acknowledged_at_ns"], found["acknowledged_by"], found["read_at_ns"]) == (
        T0 + 5 * SECOND, "alice", T0 + 3 * SECOND,
    )  # fmt: skip
    assert store.awaiting_ack(theirs.id) is None

    entries = len(list(backend.record.entries()))
    stranger = talk.their_person_receipt(ReceiptKind.ACKNOWLEDGED, "0190f2a0-0000-7000-8000-999999999999", 1, T0)
    with backend.record.transaction():
        assert store.record_person_receipt("moscow", stranger, T0 + 6 * SECOND) is False
    assert backend.record.entry_count() == entries, "a receipt for no message of ours is not journaled"
    read = talk.their_person_receipt(ReceiptKind.READ, ours.id, 1, T0 + 6 * SECOND)
    ack = talk.their_person_receipt(ReceiptKind.ACKNOWLEDGED, ours.id, 1, T0 + 7 * SECOND)
    again = talk.their_person_receipt(ReceiptKind.READ, ours.id, 1, T0 + 8 * SECOND)
    with backend.record.transaction():
        assert store.record_person_receipt("moscow", read, T0 + 6 * SECOND) is True
        assert store.record_person_receipt("moscow", ack, T0 + 7 * SECOND) is True
        assert store.record_person_receipt("moscow", again, T0 + 8 * SECOND) is True  # journaled; first read stands
    found = store.message(ours.id)
    assert found is not None
    assert (found["read_at_ns"], found["acknowledged_at_ns"], found["acknowledged_by"]) == (
        T0 + 6 * SECOND, T0 + 7 * SECOND, "duty officer",
    )  # fmt: skip
    assert store.unacknowledged() == []
    counts = {"peer": "moscow", "precedence": "flash", "queued": 0, "sent": 0, "delivered": 0, "received": 0}
    assert store.tallies() == [
        {**counts, "direction": "in", "received": 1, "acknowledged": 1},
        {**counts, "direction": "out", "sent": 1, "acknowledged": 1},
    ], "acknowledged by a person at either end"
    assert [e.decoded()["kind"] for e in backend.record.entries() if e.kind == "receipt.received"] == [
        "read", "acknowledged", "read",
    ]  # fmt: skip
    assert_verifies(backend.record, signatures=6)


def test_a_receipt_carrier_goes_out_like_a_message_but_is_not_listed(backend: Backend) -> None:
    talk = paired(backend)
    raw = talk.their_delivery_receipt(0, T0)  # any signed receipt will do for the carrier
    carrier = MessageContent(
        id="0190f2a0-0000-7000-8000-000000000777", sender="washington", recipient="moscow",
        precedence=Precedence.ROUTINE, lang="zxx", subject="", body="", created_at_ns=T0,
        kind=MessageKind.RECEIPT, receipt=raw,
    )  # fmt: skip
    with backend.record.transaction():
        assert backend.store.accept(carrier, T0 + SECOND)
    assert backend.store.load_content(carrier.id, "washington").receipt == raw
    assert [q[0] for q in backend.store.queued("moscow")] == [carrier.id]
    assert backend.store.has_message(carrier.id)
    assert backend.store.messages("out") == [] and backend.store.message(carrier.id) is None
    assert backend.store.unacknowledged() == [], "nobody acknowledges a receipt"
    assert backend.store.tallies() == [], "nor counts one as a message"


# -- alarms and events ------------------------------------------------------------------------


def test_alarms_are_raised_cleared_and_restored_after_a_restart(backend: Backend) -> None:
    paired(backend)
    down = Alarm("path-down", "moscow", "backup", "no connection on backup", T0 + SECOND)
    dead = Alarm("all-paths-down", "moscow", "", "the line is dead", T0 + 2 * SECOND)
    with backend.record.transaction():
        backend.store.record_alarm(AlarmChange(down, True, T0 + SECOND))
        backend.store.record_alarm(AlarmChange(dead, True, T0 + 2 * SECOND))
    assert backend.store.active_alarms() == [down.as_dict(), dead.as_dict()]
    assert backend.store.active_alarms()[1]["id"] == "all-paths-down/moscow"
    with backend.record.transaction():
        backend.store.record_alarm(AlarmChange(dead, False, T0 + 3 * SECOND, "link up"))
    backend.reopen()
    assert backend.store.active_alarms() == [down.as_dict()]
    entries = [e for e in backend.record.entries() if e.kind.startswith("alarm.")]
    assert [(e.kind, e.peer) for e in entries] == [
        ("alarm.raised", "moscow"), ("alarm.raised", "moscow"), ("alarm.cleared", "moscow"),
    ]  # fmt: skip
    assert entries[2].decoded() == {"kind": "all-paths-down", "subject": "", "reason": "link up"}


def test_link_events_and_operator_actions_are_recorded_as_given(backend: Backend) -> None:
    talk = paired(backend)
    with backend.record.transaction():
        for kind in ("link.up", "link.switch", "link.test", "link.refused", "link.down"):
            backend.store.record_link(kind, "moscow", {"path": "primary", "what": kind}, T0 + SECOND)
        backend.store.record_operator("send", {"id": "x", "by": "alice"}, T0 + 2 * SECOND)
    with pytest.raises(JournalError, match="unknown link event kind"), backend.record.transaction():
        backend.store.record_link("link.sideways", "moscow", {}, T0)
    entries = list(backend.record.entries())
    assert entries[0].decoded() == {
        "name": "washington", "identity_key": talk.us.public_key, "dh_key": talk.us.dh_public,
        "cert": talk.us.cert_der,
    }  # fmt: skip
    links = [e for e in entries if e.kind.startswith("link.")]
    assert [(e.kind, e.peer, e.decoded()["what"]) for e in links] == [
        (k, "moscow", k) for k in ("link.up", "link.switch", "link.test", "link.refused", "link.down")
    ]
    assert (entries[-1].kind, entries[-1].peer, entries[-1].decoded()) == (
        "operator.action", "", {"action": "send", "id": "x", "by": "alice"},
    )  # fmt: skip
    assert_verifies(backend.record, signatures=0)


# -- users, tokens and sessions ----------------------------------------------------------------


def operator_actions(record: Record) -> list[dict[str, Any]]:
    return [e.decoded() for e in record.entries() if e.kind == "operator.action"]


def test_users_are_added_listed_changed_and_removed(backend: Backend) -> None:
    access = backend.access
    access.add_user("alice", Role.OPERATOR, new_password_hash("a long password"), "ru", by="cli:root", at_ns=T0)
    access.add_user("bob", Role.AUDITOR, new_password_hash("another password"), "en", by="alice", at_ns=T0 + 1)
    with pytest.raises(AccessError, match="already a user named 'alice'"):
        access.add_user("alice", Role.SUPERVISOR, new_password_hash("a long password"), "en", by="x", at_ns=T0)
    with pytest.raises(AccessError, match="the console speaks"):
        access.add_user("carol", Role.OPERATOR, new_password_hash("a long password"), "de", by="x", at_ns=T0)
    assert access.users() == [
        {"name": "alice", "role": "operator", "lang": "ru", "created_at_ns": T0},
        {"name": "bob", "role": "auditor", "lang": "en", "created_at_ns": T0 + 1},
    ]
    user, stored = access.password_record("alice")
    assert user == Principal("alice", Role.OPERATOR, lang="ru") and check_password("a long password", stored)
    nobody, decoy = access.password_record("mallory")
    assert nobody is None and decoy.startswith("scrypt$") and not check_password("a long password", decoy)
    assert access.authenticate("alice", "a long password") == user
    assert access.authenticate("alice", "a wrong password") is None
    assert access.authenticate("mallory", "a long password") is None

    access.set_lang("alice", "en")
    with pytest.raises(AccessError, match="the console speaks"):
        access.set_lang("alice", "fr")
    assert access.authenticate("alice", "a long password") == Principal("alice", Role.OPERATOR, lang="en")
    access.remove_user("bob", by="alice", at_ns=T0 + 2)
    with pytest.raises(UnknownUser, match="no user named 'bob'"):
        access.remove_user("bob", by="alice", at_ns=T0 + 3)
    assert [u["name"] for u in access.users()] == ["alice"]
    assert operator_actions(backend.record) == [
        {"action": "user.add", "user": "alice", "role": "operator", "by": "cli:root"},
        {"action": "user.add", "user": "bob", "role": "auditor", "by": "alice"},
        {"action": "user.remove", "user": "bob", "by": "alice"},
    ]
    assert_verifies(backend.record, signatures=0)


def test_tokens_are_created_found_listed_and_revoked(backend: Backend) -> None:
    access = backend.access
    token_id, secret = access.create_token(Role.AUDITOR, "  exporter  ", by="alice", at_ns=T0)
    other_id, other = access.create_token(Role.OPERATOR, "", by="alice", at_ns=T0 + 1)
    assert secret.startswith(f"hlt_{token_id}_") and token_id != other_id
    assert access.token_principal(secret) == Principal(token_id, Role.AUDITOR, via="token")
    assert access.token_principal(secret + "x") is None
    assert access.token_principal(secret[4:]) is None, "not a token's shape"
    with pytest.raises(AccessError, match="token label"):
        access.create_token(Role.OPERATOR, "bad\x00label", by="alice", at_ns=T0)
    assert access.tokens() == [
        {"id": token_id, "role": "auditor", "label": "exporter", "created_by": "alice", "created_at_ns": T0,
         "revoked_at_ns": None},
        {"id": other_id, "role": "operator", "label": "", "created_by": "alice", "created_at_ns": T0 + 1,
         "revoked_at_ns": None},
    ]  # fmt: skip
    access.revoke_token(token_id, by="alice", at_ns=T0 + 2)
    assert access.token_principal(secret) is None
    assert access.token_principal(other) is not None
    with pytest.raises(UnknownToken, match="no live token"):
        access.revoke_token(token_id, by="alice", at_ns=T0 + 3)
    assert access.tokens()[0]["revoked_at_ns"] == T0 + 2
    assert [a["action"] for a in operator_actions(backend.record)] == ["token.create", "token.create", "token.revoke"]
    assert all(secret not in repr(e.body) for e in backend.record.entries()), "the secret is never journaled"


def test_console_sessions_open_expire_close_and_end_with_their_user(backend: Backend) -> None:
    access = backend.access
    access.add_user("alice", Role.SUPERVISOR, new_password_hash("a long password"), "ru", by="cli:root", at_ns=T0)
    alice = access.authenticate("alice", "a long password")
    assert alice is not None
    session_id, session = access.open_session(alice, 60 * SECOND, T0, client="127.0.0.1")
    assert session.expires_at_ns == T0 + 60 * SECOND and session.user == alice
    assert access.session(session_id, T0 + 59 * SECOND) == session
    assert access.session(session_id, T0 + 60 * SECOND) is None, "expired"
    assert access.session(session_id + "x", T0) is None
    access.close_session(session_id, T0 + SECOND)
    assert access.session(session_id, T0 + 2 * SECOND) is None
    access.close_session(session_id, T0 + 3 * SECOND)  # already gone: nothing happens, nothing journaled

    second, _ = access.open_session(alice, 60 * SECOND, T0 + 4 * SECOND)
    access.remove_user("alice", by="cli:root", at_ns=T0 + 5 * SECOND)
    assert access.session(second, T0 + 6 * SECOND) is None, "a removed user's sessions end with them"
    access.add_user("alice", Role.OPERATOR, new_password_hash("a new password"), "en", by="cli:root", at_ns=T0)
    assert access.session(second, T0 + 6 * SECOND) is None, "and a new user of that name does not inherit them"
    assert [(a["action"], a.get("from")) for a in operator_actions(backend.record)] == [
        ("user.add", None), ("login", "127.0.0.1"), ("logout", None), ("login", ""), ("user.remove", None),
        ("user.add", None),
    ]  # fmt: skip


def test_a_login_throttle_is_journaled_as_given_and_names_no_person(backend: Backend) -> None:
    started = {"state": "started", "scope": "pair", "user": "alice", "from": "127.0.0.1", "failures": 5, "delay_s": 1.0}
    ended = {**started, "state": "ended", "refused": 25, "reason": "no failed login for 15 min"}
    backend.access.record_login_throttle(started, T0)
    backend.access.record_login_throttle(ended, T0 + SECOND)
    assert operator_actions(backend.record) == [
        {"action": "login.throttle", **started}, {"action": "login.throttle", **ended},
    ]  # fmt: skip
    assert_verifies(backend.record, signatures=0)


# -- SQLite: a journal from before the storage interfaces ---------------------------------------


def _load_vector(path: Path) -> None:
    db = sqlite3.connect(path)
    db.executescript(VECTOR.read_text())
    db.close()


def _schema(path: Path) -> list[tuple[str, str, str | None]]:
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    rows = db.execute("SELECT type, name, sql FROM sqlite_master ORDER BY type, name").fetchall()
    db.close()
    return [(str(t), str(n), s) for t, n, s in rows]


def test_a_journal_written_before_the_storage_interfaces_opens_reads_and_verifies(tmp_path: Path) -> None:
    path = tmp_path / "journal.sqlite"
    _load_vector(path)
    with open_storage(path, readonly=True) as old:
        report = verify(old.record)
        assert (report.problems, report.entries, report.signatures) == ([], 19, 5)
        assert old.record.get_meta("note") == b"written by the release before the storage interfaces"
        assert [p.name for p in old.store.peers()] == ["moscow"]
        moscow = old.store.peer("moscow")
        assert moscow is not None and moscow.verified_at_ns is not None
        assert [(m["subject"], m["state"]) for m in old.store.messages("out")] == [
            ("subject 1", "delivered"), ("subject 2", "queued"),
        ]  # fmt: skip
        first = old.store.messages("out")[0]["id"]
        assert old.store.attachment(first, 0) == ("map.txt", b"grid square 7")
        assert [m["acknowledged_by"] for m in old.store.messages("in")] == ["alice"]
        assert [(a["kind"], a["subject"]) for a in old.store.active_alarms()] == [("path-down", "backup")]
        assert old.access.authenticate("alice", "correct horse battery") == Principal("alice", Role.OPERATOR, "ru")
        assert [t["label"] for t in old.access.tokens()] == ["exporter"]
        cursors = old.store.cursors("moscow")
        assert (cursors.out_next_seq, cursors.out_acked, cursors.in_upto) == (2, 1, 1)
    with open_storage(path) as writer:  # and a writer carries the chain on
        with writer.record.transaction():
            writer.store.record_operator("note", {"text": "after the move"}, T0 + 10 * SECOND)
        assert verify(writer.record).ok and writer.record.entry_count() == 20


# Tables added since that release (CREATE TABLE IF NOT EXISTS adds them to an old journal too).
ADDED_SINCE = {"desk_records", "sqlite_autoindex_desk_records_1",
               "peer_keys", "sqlite_autoindex_peer_keys_1", "own_statements"}  # fmt: skip


def test_a_new_journal_has_exactly_the_schema_of_the_earlier_release_and_the_tables_added_since(
    tmp_path: Path,
) -> None:
    old, new = tmp_path / "old.sqlite", tmp_path / "new.sqlite"
    _load_vector(old)
    open_storage(new).close()
    assert [row for row in _schema(new) if row[1] not in ADDED_SINCE] == _schema(old)
    assert {name for _, name, _ in _schema(new)} - {name for _, name, _ in _schema(old)} == ADDED_SINCE
    open_storage(old).close()  # a writer brings the old journal up to date
    assert _schema(old) == _schema(new)
    assert any(name == "entries_no_update" for _, name, _ in _schema(new)), "the append-only triggers are there"


# -- backup, restore and re-key (issue 13) -------------------------------------------------------


def test_a_snapshot_is_the_record_as_it_stood_and_verifies(backend: Backend, tmp_path: Path) -> None:
    talk = paired(backend)
    with backend.record.transaction():
        backend.store.accept(talk.message(1), T0 + 2)
    reader = backend.record.reader()
    copy = tmp_path / "snapshot.journal"
    reader.snapshot(copy)
    with pytest.raises(JournalError, match="will not overwrite"):
        reader.snapshot(copy)
    reader.close()
    with backend.record.transaction():
        backend.store.accept(talk.message(2), T0 + 3)  # after the snapshot: not in it
    snap = open_storage(copy, readonly=True)
    try:
        assert snap.record.entry_count() == backend.record.entry_count() - 1
        assert verify(snap.record).ok
        assert snap.store.queued("moscow")[0][0] == talk.message(1).id and len(snap.store.queued("moscow")) == 1
    finally:
        snap.close()


def test_restored_marks_every_peer_until_its_stream_restarts(backend: Backend) -> None:
    talk = paired(backend)
    store = backend.store
    contents = [talk.message(n) for n in (1, 2, 3)]
    with backend.record.transaction():
        for n, content in enumerate(contents, start=1):
            store.accept(content, T0 + 10 + n)
            envelope, sh = talk.seal_out(content, n)
            store.record_sealed(content.id, "moscow", n, envelope, sh, T0 + 20 + n)
        incoming = talk.message(1, incoming=True)
        envelope, sh = talk.seal_in(incoming, 1)
        store.record_received(incoming, 1, envelope, sh, T0 + 30)
    assert store.in_stream_hash_at("moscow", 1) == sh and store.in_stream_hash_at("moscow", 2) is None
    assert store.restored_at("moscow") is None
    with backend.record.transaction():
        assert store.mark_restored(T0 + 5, "/backups/w.tar", "sam", T0 + 40) == ["moscow"]
    backend.reopen()
    store = backend.store
    assert store.restored_at("moscow") == T0 + 5
    with backend.record.transaction():
        requeued = store.restart_stream("moscow", b"fresh session", 1, {"lost": None}, T0 + 50)
    assert requeued == [contents[1].id, contents[2].id]
    assert store.restored_at("moscow") is None and store.load_session("moscow") == b"fresh session"
    cursors = store.cursors("moscow")
    assert (cursors.out_next_seq, cursors.out_acked, cursors.in_upto) == (1, 0, 0)
    assert store.message_state(contents[0].id) == "delivered"
    assert [q[0] for q in store.queued("moscow")] == requeued and store.unacked("moscow") == {}
    # The new stream: a message the peer sends again (it could not know we held it) is no second delivery.
    with backend.record.transaction():
        store.record_duplicate("moscow", incoming.id, 1, b"envelope again", bytes(32), T0 + 60)
    assert store.cursors("moscow").in_upto == 1 and store.received_count("moscow") == 1
    assert kinds(backend.record)[-4:] == ["message.received", "operator.action", "peer.rekeyed", "message.duplicate"]
