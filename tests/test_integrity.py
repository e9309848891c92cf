"""A terminal does not run on an altered journal without a word (issue 14, part 2).

The first tests check the chain check itself on a real SQLite journal altered the way an
intruder with the file would; the others run real terminal processes: the damage is found at
start with the entry named, nothing is appended, the peer records that this side's record is
in doubt, and a supervisor's acceptance (journaled) lets the terminal carry on with nothing lost.
"""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import pytest

from conftest import Terminal, wait_for
from hotline.core.errors import JournalError
from hotline.core.model import Address, Precedence
from hotline.crypto.identity import Identity, make_card
from hotline.crypto.succession import make_succession
from hotline.engine.trust import record_rotation
from hotline.storage.audit import verify
from hotline.storage.base import Record
from hotline.storage.integrity import (
    ACCEPT_ACTION,
    WHOLE_CHAIN_AT_START,
    acceptance,
    accepted_damage,
    check_at_start,
    check_chain,
    entries_as_found,
    read_checkpoint,
    write_checkpoint,
)
from hotline.storage.records import entry_hash
from hotline.storage.sqlite.journal import Journal
from hotline.storage.sqlite.store import Store
from hotline.terminal import watch as watch_module
from hotline.terminal.watch import JournalWatch
from test_engine import World

TRIGGERS = tuple(
    f"CREATE TRIGGER entries_no_{what} BEFORE {what.upper()} ON entries "
    "BEGIN SELECT RAISE(ABORT, 'the journal is append-only'); END"
    for what in ("update", "delete")
)


def tamper(path: Path, *statements: tuple[str, tuple[object, ...]]) -> None:
    """Change the journal as someone with the file could: triggers dropped, rows changed, triggers back."""
    db = sqlite3.connect(path)
    try:
        db.execute("DROP TRIGGER entries_no_update")
        db.execute("DROP TRIGGER entries_no_delete")
        for sql, params in statements:
            db.execute(sql, params)
        for sql in TRIGGERS:
            db.execute(sql)
        db.commit()
    finally:
        db.close()


def flip_a_byte(path: Path, seq: int) -> tuple[str, tuple[object, ...]]:
    db = sqlite3.connect(path)
    (body,) = db.execute("SELECT body FROM entries WHERE seq = ?", (seq,)).fetchone()
    db.close()
    changed = bytearray(body)
    changed[len(changed) // 2] ^= 0x01
    return ("UPDATE entries SET body = ? WHERE seq = ?", (bytes(changed), seq))


def swap(seq: int) -> tuple[str, tuple[object, ...]]:
    """Entries ``seq`` and ``seq + 1`` change places (each keeps its number)."""
    cols = "at_ns, kind, peer, body, prev, hash"
    return (
        f"UPDATE entries SET ({cols}) = (SELECT {cols} FROM entries e WHERE e.seq = "
        f"CASE entries.seq WHEN ? THEN ? ELSE ? END) WHERE seq IN (?, ?)",
        (seq, seq + 1, seq, seq, seq + 1),
    )


@pytest.fixture
def journal_of_ten(tmp_path: Path) -> tuple[Path, Identity]:
    """A journal of ten entries, checked and checkpointed at its head by its terminal."""
    identity = Identity.generate("washington")
    path = tmp_path / "journal.sqlite"
    with Journal(path) as journal:
        store = Store(journal)
        with journal.transaction():
            store.record_created("washington", identity.public_key, identity.dh_public, identity.cert_der, 1)
            for i in range(2, 11):
                store.record_operator("note", {"n": i}, i)
        head = check_chain(journal, None, identity.public_key)
        assert head.ok and head.head_seq == 10
        write_checkpoint(journal, identity, head.head_seq, head.head_hash, 11)
    return path, identity


def _check(path: Path, identity: Identity) -> list[str]:
    with Journal(path, readonly=True) as journal:
        return [str(d) for d in check_at_start(journal, identity.public_key, journal.entry_count()).damage]


def test_an_intact_journal_passes_and_its_checkpoint_is_signed(journal_of_ten: tuple[Path, Identity]) -> None:
    path, identity = journal_of_ten
    assert _check(path, identity) == []
    with Journal(path, readonly=True) as journal:
        checkpoint = read_checkpoint(journal, identity.public_key)
        assert checkpoint is not None and checkpoint.seq == 10


@pytest.mark.parametrize(
    ("alter", "expected"),
    [
        (lambda p: [flip_a_byte(p, 5)], ["entry 5 (operator.action): its hash does not match its contents"]),
        (lambda p: [("DELETE FROM entries WHERE seq = 5", ())], ["entry 6 (operator.action): entry 5 before it"]),
        (lambda p: [swap(4)], ["entry 4 (operator.action): does not link", "entry 5 (operator.action): does not link"]),
        (
            lambda p: [("DELETE FROM entries WHERE seq > 8", ())],
            ["entry 9: the journal ends at entry 8", "entries 9..10"],
        ),
    ],
    ids=["byte-altered", "entry-deleted", "pair-reordered", "tail-truncated"],
)
def test_each_alteration_is_found_and_names_the_entry(
    journal_of_ten: tuple[Path, Identity], alter: Callable[[Path], list[tuple[str, tuple[object, ...]]]],
    expected: list[str],
) -> None:  # fmt: skip
    path, identity = journal_of_ten
    tamper(path, *alter(path))
    found = " | ".join(_check(path, identity))
    for text in expected:
        assert text in found


def test_a_checkpoint_not_signed_by_the_terminal_is_damage(journal_of_ten: tuple[Path, Identity]) -> None:
    path, identity = journal_of_ten
    with Journal(path) as journal:
        # Someone moves the checkpoint back to hide a cut tail; without the key, only another key can sign.
        write_checkpoint(journal, Identity.generate("intruder"), 8, b"\x00" * 32, 12)
    assert any("checkpoint was not signed by this terminal" in d for d in _check(path, identity))


def test_a_rewritten_chain_is_caught_by_the_checkpoint_even_from_it(journal_of_ten: tuple[Path, Identity]) -> None:
    """Altering entry 3 and recomputing every hash after it leaves a chain that links up;
    only the signed checkpoint tells, and a check that starts at it (a big journal) tells too."""
    path, identity = journal_of_ten
    db = sqlite3.connect(path)
    rows = db.execute("SELECT seq, at_ns, kind, peer, body FROM entries ORDER BY seq").fetchall()
    db.close()
    statements: list[tuple[str, tuple[object, ...]]] = []
    prev = bytes(32)
    for seq, at_ns, kind, peer, stored in rows:
        body = bytes(stored[:-1]) + bytes([stored[-1] ^ 1]) if seq == 3 else bytes(stored)
        digest = entry_hash(prev, seq, at_ns, kind, peer, body)
        statements.append(
            ("UPDATE entries SET body = ?, prev = ?, hash = ? WHERE seq = ?", (bytes(body), prev, digest, seq))
        )
        prev = digest
    tamper(path, *statements)
    with Journal(path, readonly=True) as journal:
        checkpoint = read_checkpoint(journal, identity.public_key)
        assert checkpoint is not None
        whole = check_chain(journal, checkpoint, identity.public_key)
        from_checkpoint = check_chain(journal, checkpoint, identity.public_key, start=checkpoint.seq)
    for result in (whole, from_checkpoint):
        assert [d.seq for d in result.damage] == [10] and "was rewritten" in result.damage[0].text


def _accept(path: Path, identity: Identity, seqs: list[int], at_ns: int = 20) -> dict[int, bytes]:
    """Accept the damage at ``seqs`` as the terminal does: signed, over each entry as found."""
    with Journal(path) as journal, journal.transaction():
        found = entries_as_found(journal, seqs)
        Store(journal).record_operator(ACCEPT_ACTION, acceptance(identity, found, "test", "disk fault", "sam"), at_ns)
    return found


def test_accepted_damage_no_longer_fails_the_check_and_new_damage_still_does(
    journal_of_ten: tuple[Path, Identity],
) -> None:
    path, identity = journal_of_ten
    tamper(path, flip_a_byte(path, 5))
    _accept(path, identity, [5])
    assert _check(path, identity) == []
    tamper(path, flip_a_byte(path, 7))
    assert [d.split(":")[0] for d in _check(path, identity)] == ["entry 7 (operator.action)"]
    assert WHOLE_CHAIN_AT_START >= 10  # these journals are read whole at start


def test_an_accepted_entry_changed_again_is_damaged_again(journal_of_ten: tuple[Path, Identity]) -> None:
    """The acceptance signs each entry as found: it is not a licence to rewrite that entry at will."""
    path, identity = journal_of_ten
    tamper(path, flip_a_byte(path, 5))
    _accept(path, identity, [5])
    assert _check(path, identity) == []
    db = sqlite3.connect(path)
    (body,) = db.execute("SELECT body FROM entries WHERE seq = 5").fetchone()
    db.close()
    tamper(path, ("UPDATE entries SET body = ? WHERE seq = 5", (bytes(body[:-1]) + bytes([body[-1] ^ 1]),)))
    assert [d.split(":")[0] for d in _check(path, identity)] == ["entry 5 (operator.action)"]


@pytest.mark.parametrize("signer", ["nobody", "another key"])
def test_an_acceptance_not_signed_by_the_terminal_accepts_nothing_and_is_damage(
    journal_of_ten: tuple[Path, Identity], signer: str
) -> None:
    """Whoever can write the file can alter entry 5 and append an acceptance of it; without the
    terminal's key the acceptance counts for nothing, and says so."""
    path, identity = journal_of_ten
    tamper(path, flip_a_byte(path, 5))
    with Journal(path) as journal, journal.transaction():
        found = entries_as_found(journal, [5])
        body: dict[str, object] = {"entries": [5], "reason": "disk fault", "by": "sam"}  # as it was first written
        if signer == "another key":
            body = acceptance(Identity.generate("intruder"), found, "", "disk fault", "sam")
        Store(journal).record_operator(ACCEPT_ACTION, body, 20)
    found_now = " | ".join(_check(path, identity))
    assert "entry 5 (operator.action): its hash does not match its contents" in found_now
    assert "entry 11 (operator.action): accepts damage but was not signed by this terminal" in found_now
    with Journal(path, readonly=True) as journal:
        honoured, forged = accepted_damage(journal, identity.public_key)
    assert honoured == set() and [d.seq for d in forged] == [11]


def test_nothing_past_the_head_is_accepted(journal_of_ten: tuple[Path, Identity]) -> None:
    """A cut tail's damage names the first missing entry, which the next append reuses: accepting
    that number would accept whatever is written there next."""
    path, _ = journal_of_ten
    with Journal(path, readonly=True) as journal:
        assert sorted(entries_as_found(journal, [0, 5, 11, 12])) == [5]


def test_a_cut_tail_found_from_the_checkpoint_names_the_first_missing_entry(
    journal_of_ten: tuple[Path, Identity],
) -> None:
    """A big journal is checked at start from its checkpoint (entry 10 here): cut back to entry 6,
    there is nothing from the checkpoint on to read, and the damage must still say where it ends."""
    path, identity = journal_of_ten
    tamper(path, ("DELETE FROM entries WHERE seq > 6", ()))
    with Journal(path, readonly=True) as journal:
        result = check_at_start(journal, identity.public_key, journal.entry_count(), whole_chain_upto=5)
    assert result.read == 0 and result.head_seq == 6
    assert [str(d) for d in result.damage] == [
        "entry 7: the journal ends at entry 6, but this terminal verified it up to entry 10: entries 7..10 were cut off"
    ]


# -- the full verify after an accepted deletion, and the engine in doubt (in memory) ------------


def _world(tmp_path: Path) -> World:
    w = World(tmp_path)
    w.connect()
    w.deliver_all()
    return w


def test_the_full_verify_resyncs_the_stream_after_a_deleted_received_entry(tmp_path: Path) -> None:
    """One received message deleted (its damage accepted) is damage where it was, not at every
    message received after it: else the terminal falls back into doubt at every start."""
    w = _world(tmp_path)
    for _ in range(5):
        w.a.send("moscow", 1, Precedence.ROUTINE)
        w.settle()
        w.deliver_all()  # each message journaled by moscow on its own, with its receipt after it
    path = w.b.path
    received = [e.seq for e in w.b.journal.entries() if e.kind == "message.received"]
    assert len(received) == 5
    tamper(path, ("DELETE FROM entries WHERE seq = ?", (received[1],)))
    with Journal(path, readonly=True) as journal:
        report = verify(journal)
    assert report.damaged and set(report.damaged) <= {received[1] + 1, received[2]}, report.problems
    assert report.first[report.damaged[0]][0] in {"receipt.sent", "message.received"}


def test_after_an_acceptance_the_peer_resends_what_it_sent_during_the_doubt_at_once(tmp_path: Path) -> None:
    w = _world(tmp_path)
    assert w.a.engine is not None
    w.a.engine.journal_damaged("entry 2: test", 2)
    w.b.send("washington", 8, Precedence.ROUTINE)
    w.settle()
    w.deliver_all()
    assert w.a.inbox() == [], "dropped unopened while in doubt"
    w.a.engine.damage_accepted({}, "test", "sam")
    w.settle()
    w.deliver_all()  # no time passes: nothing comes back by the peer's probe
    assert len(w.a.inbox()) == 8


def test_a_peers_acknowledgement_arriving_just_before_the_doubt_is_journaled_after_it(tmp_path: Path) -> None:
    w = _world(tmp_path)
    assert w.a.engine is not None and w.b.engine is not None and w.links is not None
    w.a.send("moscow", 1, Precedence.FLASH)
    w.settle()
    w.deliver_all()
    (mid,) = w.b.inbox()
    w.b.engine.acknowledge(mid, "alice", lambda e: None)
    w.b.settle()
    la, _, _, pb = w.links
    while pb.chunks:  # washington reads moscow's acknowledgement, and is in doubt before its next commit
        w.a.engine.data_received(la, pb.chunks.pop(0))
    w.a.engine.journal_damaged("entry 2: test", 2)
    w.settle()
    w.a.engine.damage_accepted({}, "test", "sam")
    w.settle()
    w.deliver_all()
    row = w.a.journal.execute("SELECT acknowledged_by FROM messages WHERE id = ?", (mid,)).fetchone()
    assert row[0] == "alice"


def test_what_happened_in_doubt_is_journaled_with_the_acceptance_and_a_failed_one_leaves_the_doubt(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    w = _world(tmp_path)
    engine = w.a.engine
    assert engine is not None
    told: list[dict[str, object]] = []
    engine.listeners.append(told.append)
    head = w.a.journal.entry_count()
    engine.journal_damaged("entry 2: test", 2)
    w.disconnect()  # a link event while in doubt
    w.settle()
    assert w.a.journal.entry_count() == head, "nothing is appended in doubt"
    raised = ["journal-altered", "path-down", "all-paths-down"]
    assert [e["kind"] for e in told if e["event"] == "alarm"] == raised, "told at once"

    def fail(*args: object) -> None:
        raise JournalError("test: the disk is full")

    monkeypatch.setattr(engine.store, "record_operator", fail)
    with pytest.raises(JournalError):
        engine.damage_accepted({}, "test", "sam")
    assert engine.damage == "entry 2: test", "the acceptance did not commit: still in doubt"
    assert w.a.journal.entry_count() == head
    monkeypatch.undo()
    engine.damage_accepted({}, "test", "sam")
    w.settle()
    kinds = [(e.kind, e.decoded().get("kind", e.decoded().get("action"))) for e in w.a.journal.entries(head + 1)]
    accepted_at = kinds.index(("operator.action", ACCEPT_ACTION))
    assert ("link.down", None) in kinds[:accepted_at]
    assert [k for e, k in kinds[:accepted_at] if e == "alarm.raised"] == raised, "journaled with the acceptance"
    assert ("alarm.cleared", "journal-altered") in kinds[accepted_at:]
    assert [e["kind"] for e in told if e["event"] == "alarm" and e["state"] == "raised"] == raised, "told once"


@pytest.mark.parametrize("in_flight", ["periodic check", "full verify"])
def test_a_check_started_before_an_acceptance_does_not_put_the_terminal_back_in_doubt(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, in_flight: str
) -> None:
    w = _world(tmp_path)
    assert w.a.engine is not None
    tamper(w.a.path, flip_a_byte(w.a.path, 2))
    watch = JournalWatch(w.a.journal, w.a.identity, w.a.engine, 3600, w.clock.wall_ns)
    watch.check_at_start()
    assert watch.status()["state"] == "altered" and w.a.engine.damage
    on_loop: list[str] = []

    def off_the_loop(name: str, work: Callable[..., object]) -> Callable[..., object]:
        def wrapped(*args: object, **kwargs: object) -> object:
            if threading.current_thread() is threading.main_thread():
                on_loop.append(name)
            return work(*args, **kwargs)

        return wrapped

    for name in ("check_chain", "entries_as_found"):
        monkeypatch.setattr(watch_module, name, off_the_loop(name, getattr(watch_module, name)))

    async def scenario() -> object:
        read, release = threading.Event(), threading.Event()
        real = watch._on_reader

        def slow_first(work: Callable[[Record], object]) -> object:
            """The first check reads the journal as it is now (damaged), and lands only later."""
            monkeypatch.setattr(watch, "_on_reader", real)
            result = real(work)
            read.set()
            release.wait(20)
            return result

        monkeypatch.setattr(watch, "_on_reader", slow_first)
        task = asyncio.create_task(watch.check_new() if in_flight == "periodic check" else watch._full_verify())
        assert await asyncio.to_thread(read.wait, 20)
        accepted = await watch.accept("test", "sam")
        assert accepted["accepted"] == [2] and accepted["journal"]["state"] == "intact"
        release.set()
        return await task

    outcome = asyncio.run(scenario())
    assert watch.status()["state"] == "intact" and not w.a.engine.damage, "the stale result was dropped"
    if in_flight == "full verify":
        assert outcome is False, "and the full verify is to run again"
    assert on_loop == [], "the acceptance reads the journal in a thread, not on the event loop"


# -- real terminals ---------------------------------------------------------------------------


def _entry_of_kind(path: Path, kind: str) -> int:
    db = sqlite3.connect(path)
    (seq,) = db.execute("SELECT max(seq) FROM entries WHERE kind = ?", (kind,)).fetchone()
    db.close()
    assert seq is not None, kind
    return int(seq)


def _alarms(t: Terminal) -> set[tuple[str, str]]:
    return {(a["kind"], a["subject"]) for a in t.cli_json("alarms")["alarms"]}


def test_an_altered_journal_stops_appends_the_peer_records_the_doubt_and_acceptance_loses_nothing(
    paired: tuple[Terminal, Terminal],
) -> None:
    a, b = paired
    for t in (a, b):
        t.configure("link", test_interval_s=3600.0)
        t.start()
    a.configure("log", level="DEBUG")  # from the next start: says when it leaves an envelope unopened
    a.wait_link("moscow")
    a.cli("send", "--to", "moscow", "--subject", "before", "first message", "--wait", "--timeout", "30")
    a.stop()
    altered = _entry_of_kind(a.home / "journal.sqlite", "message.accepted")
    tamper(a.home / "journal.sqlite", flip_a_byte(a.home / "journal.sqlite", altered))
    entries_before = _entry_count(a)
    a.start()

    status = a.cli_json("status")
    assert status["journal"]["state"] == "altered"
    assert any(f"entry {altered} (message.accepted)" in d for d in status["journal"]["damage"])
    assert ("journal-altered", str(altered)) in _alarms(a)
    assert f"JOURNAL ALTERED: entry {altered}" in a.log()
    refused = a.cli("send", "--to", "moscow", "--subject", "during", "refused", check=False)
    assert refused.returncode != 0 and "failed its integrity check" in refused.stderr
    a.stop()  # stopped, it still refuses: a command writing to the journal meets the same answer
    offline = a.cli("send", "--to", "moscow", "--subject", "during", "refused while stopped", check=False)
    assert offline.returncode != 0 and "failed its integrity check" in offline.stderr
    a.start()
    assert a.cli_json("status")["journal"]["state"] == "altered", "the damage is still known after a restart"

    wait_for(lambda: _in_doubt(b, "washington"), 20, "moscow to record the doubt")
    b.cli("send", "--to", "washington", "--subject", "while in doubt", "sent to a terminal that cannot journal it")
    a.wait_link("moscow")
    wait_for(lambda: "left unopened: the journal is in doubt" in a.log(), 20, "washington to receive and drop it")
    assert _entry_count(a) == entries_before, "nothing is appended while the journal is in doubt"
    assert not any(m["subject"] == "while in doubt" for m in a.cli_json("inbox")["messages"])

    accepted = a.cli_json("journal", "accept-damage", "--reason", "test: a byte flipped on purpose", "--by", "sam")
    assert accepted["accepted"] == [altered] and accepted["journal"]["state"] == "intact"
    a.cli("send", "--to", "moscow", "--subject", "after", "appending again", "--wait", "--timeout", "30")
    wait_for(lambda: any(m["subject"] == "while in doubt" for m in a.cli_json("inbox")["messages"]), 30,
             "the message moscow sent during the doubt to arrive")  # fmt: skip
    wait_for(lambda: not _in_doubt(b, "washington"), 20, "moscow to clear the doubt")
    assert ("journal-altered", str(altered)) not in _alarms(a)
    exported = a.cli("journal", "export").stdout
    assert '"action": "accept-damage"' in exported and '"by": "sam"' in exported
    doubts = [line for line in b.cli("journal", "export").stdout.splitlines() if '"kind": "link.doubt"' in line]
    assert len(doubts) == 2 and '"in_doubt": true' in doubts[0] and '"in_doubt": false' in doubts[1]
    verify = a.cli("journal", "verify", check=False)
    assert verify.returncode == 1 and f"entry {altered}" in verify.stderr, "the damage is still on record"
    a.stop()
    a.start()  # the acceptance holds across a restart
    assert a.cli_json("status")["journal"]["state"] == "intact"


def _in_doubt(t: Terminal, peer: str) -> bool:
    return any(x["kind"] == "peer-record-in-doubt" and x["peer"] == peer for x in t.status()["alarms"])


def _entry_count(t: Terminal) -> int:
    db = sqlite3.connect(t.home / "journal.sqlite")
    (n,) = db.execute("SELECT count(*) FROM entries").fetchone()
    db.close()
    return int(n)


@pytest.mark.parametrize(
    ("alter", "named"),
    [
        (lambda p: [flip_a_byte(p, 4)], "entry 4 (message.accepted): its hash does not match"),
        (lambda p: [("DELETE FROM entries WHERE seq = 4", ())], "entry 5 (message.accepted): entry 4 before it"),
        (lambda p: [swap(3)], "entry 3 (message.accepted): does not link"),
        (lambda p: [("DELETE FROM entries WHERE seq > 4", ())], "the journal ends at entry 4"),
    ],
    ids=["byte-altered", "entry-deleted", "pair-reordered", "tail-truncated"],
)
def test_a_stopped_terminals_journal_altered_is_found_at_start(
    make_terminal: Callable[..., Terminal], alter: Callable[[Path], list[tuple[str, tuple[object, ...]]]], named: str,
) -> None:  # fmt: skip
    a, b = make_terminal("washington"), make_terminal("moscow")
    a.init()
    b.init()
    a.pair_with(b)  # entries 1 and 2; moscow never runs
    for n in range(3):
        a.cli("send", "--to", "moscow", "--subject", f"queued {n}", "while the terminal is stopped")  # 3, 4, 5
    a.start()
    a.stop()  # checks the journal and checkpoints its head
    tamper(a.home / "journal.sqlite", *alter(a.home / "journal.sqlite"))
    a.start()
    journal = a.cli_json("status")["journal"]
    assert journal["state"] == "altered"
    assert any(named in d for d in journal["damage"]), journal["damage"]
    assert "journal-altered" in {k for k, _ in _alarms(a)}


def _head(path: Path) -> int:
    db = sqlite3.connect(path)
    (seq,) = db.execute("SELECT max(seq) FROM entries").fetchone()
    db.close()
    return int(seq)


def test_the_periodic_check_finds_an_entry_altered_while_the_terminal_runs(
    paired: tuple[Terminal, Terminal],
) -> None:
    a, b = paired
    a.configure("journal", check_interval_s=0.2)
    for t in (a, b):
        t.configure("link", test_interval_s=3600.0)
        t.start()
    a.wait_link("moscow")
    a.cli("send", "--to", "moscow", "--subject", "x", "a message", "--wait", "--timeout", "30")
    wait_for(lambda: a.status()["journal"]["full_verify"], 30, "the full verify to have run (and found nothing)")
    assert a.status()["journal"]["state"] == "intact"
    path = a.home / "journal.sqlite"
    head = _head(path)  # at or after the checkpoint: a periodic check reads it
    tamper(path, flip_a_byte(path, head))
    journal = wait_for(lambda: (j := a.status()["journal"])["state"] == "altered" and j, 20, "the periodic check")
    assert any(d.startswith(f"entry {head} (") and "its hash does not match" in d for d in journal["damage"])
    assert ("journal-altered", str(head)) in _alarms(a)


def test_a_big_journal_starts_from_its_checkpoint_and_the_full_verify_finds_what_lies_before_it(
    make_terminal: Callable[..., Terminal],
) -> None:
    """Past ``whole_chain_at_start`` entries (lowered here to 0), the start-up check reads only from
    the checkpoint: an entry altered before it is left to the full verify, in the background."""
    a, b = make_terminal("washington"), make_terminal("moscow")
    a.init()
    b.init()
    a.pair_with(b)
    for n in range(3):
        a.cli("send", "--to", "moscow", "--subject", f"queued {n}", "while the terminal is stopped")  # 3, 4, 5
    a.configure("journal", whole_chain_at_start=0)
    a.start()
    a.stop()  # checkpoints its head
    path = a.home / "journal.sqlite"
    tamper(path, flip_a_byte(path, 4))
    a.start()
    assert "journal chain intact up to entry" in a.log() and "(1 entries read)" in a.log(), "from the checkpoint"
    journal = wait_for(lambda: (j := a.status()["journal"])["state"] == "altered" and j, 30, "the full verify")
    assert journal["damage"] == [
        "entry 4 (message.accepted): hash does not match its contents: the entry was altered"
    ], "named once, by the full verify"
    assert journal["full_verify"]["ok"] is False
    accepted = a.cli_json("journal", "accept-damage", "--reason", "test", "--by", "sam")
    assert accepted["accepted"] == [4] and accepted["journal"]["state"] == "intact"
    a.stop()
    a.start()
    wait_for(lambda: a.status()["journal"]["full_verify"], 30, "the full verify after the acceptance")
    journal = a.status()["journal"]
    assert journal["state"] == "intact" and journal["full_verify"]["accepted"] == [4]


def test_an_acceptance_signed_before_a_key_rotation_still_counts_after_it(
    journal_of_ten: tuple[Path, Identity],
) -> None:
    """Each acceptance is checked against the key in force when it was made (``terminal.rotated``)."""
    path, old = journal_of_ten
    tamper(path, flip_a_byte(path, 5))
    _accept(path, old, [5])
    new = replace(Identity.generate("washington"), state_key=old.state_key)
    card = make_card(new, [Address("primary", "127.0.0.1", 7400)], "2026-12-04T00:00:00Z")
    with Journal(path) as journal, journal.transaction():
        record_rotation(Store(journal), old, new, make_succession(old, card, n=1, at_ns=30), 30)
    assert _check(path, new) == []
    with Journal(path) as journal, journal.transaction():  # one by the retired key, after the rotation: forged
        found = entries_as_found(journal, [5])
        Store(journal).record_operator(ACCEPT_ACTION, acceptance(old, found, "test", "late", "sam"), 40)
    assert any("not signed by this terminal" in d for d in _check(path, new))
