"""Two real terminal processes on loopback: the promises, proven end to end."""

from __future__ import annotations

import functools
import itertools
import json
import os
import sqlite3
import threading
import uuid
from pathlib import Path

import pytest

from conftest import Terminal, wait_for

pytestmark = pytest.mark.e2e


def test_send_both_ways_and_verify(paired: tuple[Terminal, Terminal]) -> None:
    a, b = paired
    b.configure("messages", markings=["НЕСЕКРЕТНО", "СЕКРЕТНО"])  # each deployment its own markings
    a.start()
    b.start()
    a.wait_link("moscow")
    b.wait_link("washington")
    first = a.cli("send", "--to", "moscow", "--precedence", "immediate", "--subject", "Proposal",
                  "Call at 14:00 UTC?").stdout.strip()  # fmt: skip
    reply = b.cli("send", "--to", "washington", "--lang", "ru", "--subject", "Ответ", "Согласны.").stdout.strip()
    wait_for(
        lambda: any(m["id"] == first for m in b.cli_json("inbox")["messages"]),
        10,
        "moscow to receive",
    )
    wait_for(
        lambda: any(m["id"] == reply for m in a.cli_json("inbox")["messages"]),
        10,
        "washington to receive",
    )
    inbox = b.cli_json("inbox")["messages"]
    assert [(m["subject"], m["body"], m["precedence"], m["peer"], m["classification"]) for m in inbox] == [
        ("Proposal", "Call at 14:00 UTC?", "immediate", "washington", "UNCLASSIFIED")
    ]
    got = a.cli_json("inbox")["messages"][0]
    assert (got["lang"], got["classification"]) == ("ru", "НЕСЕКРЕТНО")
    wait_for(
        lambda: a.cli_json("outbox")["messages"][0]["state"] == "delivered",
        10,
        "the delivery receipt",
    )
    status = a.cli_json("status")
    assert status["running"] is True and status["peers"][0]["link"] == "up"
    for t in (a, b):
        assert t.stop() == 0
        assert "journal OK" in t.cli("journal", "verify").stdout
        assert "Traceback" not in t.log() and "CRITICAL" not in t.log(), t.log()
    lines = [json.loads(x) for x in a.cli("journal", "export").stdout.splitlines()]
    # washington stopped first: its own going down is in its record, and pages nobody.
    assert lines[-1]["kind"] == "link.down" and lines[-1]["body"]["reason"] == "terminal shutting down"
    assert not [x for x in lines if x["kind"] == "alarm.raised"], "a deliberate stop raises no alarm"
    kinds = {x["kind"] for x in lines}
    assert {"terminal.created", "peer.paired", "message.accepted", "message.sealed", "receipt.received",
            "message.received", "receipt.sent", "link.up"} <= kinds  # fmt: skip
    assert all(x["prev"] == y["hash"] for y, x in itertools.pairwise(lines))


def test_send_while_stopped_is_sent_by_the_next_run(paired: tuple[Terminal, Terminal], tmp_path: Path) -> None:
    a, b = paired
    attachment = tmp_path / "readout.txt"
    attachment.write_bytes(b"readout\x00" * 1000)
    out = a.cli("send", "--to", "moscow", "--attach", str(attachment), "--classification", "CONFIDENTIAL",
                "--json", "queued offline")  # fmt: skip
    sent = json.loads(out.stdout)
    assert "terminal not running" in sent["queued_via"]
    assert a.cli_json("outbox")["messages"][0]["state"] == "queued"
    b.start()
    a.start()
    wait_for(
        lambda: a.cli_json("outbox")["messages"][0]["state"] == "delivered",
        15,
        "delivery after start",
    )
    got = b.cli_json("inbox")["messages"][0]
    assert got["id"] == sent["id"] and got["attachments"] == 1
    assert got["classification"] == "CONFIDENTIAL", "the marking survives the journal and the restart"
    db = sqlite3.connect(b.home / "journal.sqlite")
    assert db.execute("SELECT data FROM attachments WHERE message_id = ?", (sent["id"],)).fetchone()[0] == (
        attachment.read_bytes()
    )


def test_flash_overtakes_queued_routine_traffic(paired: tuple[Terminal, Terminal]) -> None:
    a, b = paired
    a.start()  # moscow is down: everything queues... but the window lets 1024 be sealed,
    with a.client() as c:  # so fill past it to have a real queue
        ids = [c.submit("send", to="moscow", body=f"routine {i}") for i in range(1100)]
        for i in ids:
            c.result(i)
        flash = c.request("send", to="moscow", precedence="flash", body="FLASH")["id"]
    b.start()
    wait_for(
        lambda: len(b.cli_json("inbox", "--limit", "2000")["messages"]) == 1101,
        30,
        "all 1101 to arrive",
    )
    inbox = b.cli_json("inbox", "--limit", "2000")["messages"]
    position = [m["id"] for m in inbox].index(flash)
    assert position < 1100  # it did not wait behind the queue
    assert inbox[position]["seq"] <= 1025  # sealed as soon as the window had room


def _inbox_count(t: Terminal) -> int:
    db = sqlite3.connect(f"file:{t.home / 'journal.sqlite'}?mode=ro", uri=True)
    try:
        return int(db.execute("SELECT count(*) FROM messages WHERE direction = 'in'").fetchone()[0])
    finally:
        db.close()


def _submit_all(t: Terminal, ids: list[str], to: str) -> None:
    """Pipeline sends with client-chosen ids, so a retry after a crash is idempotent."""
    with t.client(timeout=60) as c:
        pending = [c.submit("send", to=to, id=i, body=f"{t.name} message {n}") for n, i in enumerate(ids)]
        for p in pending:
            c.result(p)


def test_thousand_each_way_survive_sigkill_mid_stream(paired: tuple[Terminal, Terminal]) -> None:
    a, b = paired
    a.start()
    b.start()
    a.wait_link("moscow")
    n = 1000
    a_ids = [str(uuid.uuid4()) for _ in range(n)]
    b_ids = [str(uuid.uuid4()) for _ in range(n)]
    # Half of washington's stream goes now, half while moscow is dead: the kill is
    # mid-stream by construction, however fast the line runs.
    half = n // 2
    _submit_all(a, a_ids[:half], "moscow")

    # moscow sends its 1,000 while washington's stream pours in; kill moscow mid-stream.
    failures: list[BaseException] = []

    def b_sends() -> None:
        try:
            _submit_all(b, b_ids, "washington")
        except BaseException as e:  # the kill cuts this short; that is the point
            failures.append(e)

    sender = threading.Thread(target=b_sends)
    sender.start()
    wait_for(lambda: _inbox_count(b) >= 200, 30, "moscow to be mid-stream")
    b.kill()
    sender.join(timeout=30)
    received_at_kill = _inbox_count(b)
    print(f"moscow had {received_at_kill} of {n} when killed")
    assert received_at_kill <= half < n
    _submit_all(a, a_ids[half:], "moscow")  # queued at washington while moscow is down

    b.start()
    _submit_all(b, b_ids, "washington")  # resubmit everything: already-journaled ids are not sent twice
    wait_for(lambda: _inbox_count(a) == n and _inbox_count(b) == n, 90, "all 2,000 messages to arrive")

    for receiver, ids in ((b, a_ids), (a, b_ids)):
        inbox = sorted(receiver.cli_json("inbox", "--limit", "5000")["messages"], key=lambda m: m["seq"])
        assert [m["id"] for m in inbox] == ids  # exactly once, in order
        assert [m["seq"] for m in inbox] == list(range(1, n + 1))

    def all_delivered(t: Terminal) -> bool:
        return all(m["state"] == "delivered" for m in t.cli_json("outbox", "--limit", "5000")["messages"])

    for sender_t in (a, b):
        wait_for(functools.partial(all_delivered, sender_t), 30, f"{sender_t.name}'s receipts")
        assert len(sender_t.cli_json("outbox", "--limit", "5000")["messages"]) == n
    for t in (a, b):
        t.stop()
        assert t.cli("journal", "verify").returncode == 0


def test_acknowledgement_travels_back_signed(paired: tuple[Terminal, Terminal]) -> None:
    a, b = paired
    a.start()
    b.start()
    with a.client() as c:
        mid = c.request("send", to="moscow", precedence="flash", body="Confirm receipt", wait="delivered")["id"]
    r = b.cli("ack", mid, "--by", "duty-officer")
    assert "acknowledged" in r.stdout
    wait_for(lambda: a.cli_json("outbox")["messages"][0]["acknowledged_at"], 10, "the acknowledgement at the sender")
    out = a.cli_json("outbox")["messages"]
    assert len(out) == 1 and out[0]["acknowledged_by"] == "duty-officer"  # the receipt item is not listed
    assert b.cli_json("inbox")["messages"][0]["acknowledged_by"] == "duty-officer"
    b.cli("ack", mid)  # a second acknowledgement changes nothing
    bad = b.cli("ack", "0190f2a0-0000-7000-8000-00000000dead", check=False)
    assert bad.returncode == 1 and "no received message" in bad.stderr
    for t in (a, b):
        t.stop()
        assert t.cli("journal", "verify").returncode == 0
    kinds = [json.loads(x)["body"].get("kind") for x in a.cli("journal", "export").stdout.splitlines()]
    assert "acknowledged" in kinds


def test_ack_while_stopped_is_sent_by_the_next_run(paired: tuple[Terminal, Terminal]) -> None:
    a, b = paired
    a.start()
    b.start()
    with a.client() as c:
        mid = c.request("send", to="moscow", body="For the record", wait="delivered")["id"]
    b.stop()
    said = b.cli("ack", mid, "--by", "night-shift").stdout
    assert "goes back to the sender at the next `hotline run`" in said
    again = b.cli("ack", mid, "--by", "day-shift").stdout
    assert "already acknowledged" in again and "by night-shift" in again
    own = a.cli("ack", mid, check=False)
    assert own.returncode == 1 and "only its recipient acknowledges it" in own.stderr
    b.start()
    wait_for(lambda: a.cli_json("outbox")["messages"][0]["acknowledged_by"] == "night-shift", 15, "offline ack")


def test_the_largest_attachment_raises_no_alarm(paired: tuple[Terminal, Terminal], tmp_path: Path) -> None:
    """Sealing, journaling and opening 16 MiB holds a terminal up for longer than three heartbeats
    on a slow machine; each end warns the other first, so the line is not paged as dead."""
    a, b = paired
    a.start()
    b.start()
    a.wait_link("moscow")
    b.wait_link("washington")
    big = tmp_path / "readout.bin"
    big.write_bytes(os.urandom(16 * 1024 * 1024))
    for _ in range(2):
        a.cli("send", "--to", "moscow", "--attach", str(big), "--wait", "the full readout")
    inbox = b.cli_json("inbox")["messages"]
    assert [m["attachments"] for m in inbox] == [1, 1]
    for t in (a, b):  # both still running: the line never went down
        kinds = [e["kind"] for e in map(json.loads, t.cli("journal", "export").stdout.splitlines())]
        downs = [k for k in kinds if k in {"link.down", "alarm.raised"}]
        assert downs == [], f"{t.name}: {downs}\n{t.log()[-3000:]}"


def test_send_wait_that_times_out_names_the_message_and_it_still_goes(paired: tuple[Terminal, Terminal]) -> None:
    a, b = paired
    a.start()  # moscow is not running: no receipt can come
    wait_for(lambda: a.status()["running"], 20, "washington to run")
    r = a.cli("send", "--to", "moscow", "--wait", "--timeout", "1", "Are you there?", check=False)
    assert r.returncode == 3, (r.returncode, r.stderr)
    mid = r.stdout.strip()
    assert "no delivery receipt within 1 s" in r.stderr and f"message {mid} is in the journal" in r.stderr
    assert [m["id"] for m in a.cli_json("outbox")["messages"]] == [mid]
    refused = a.cli("send", "--to", "moscow", "--id", mid, "--wait", "other words", check=False)
    assert refused.returncode == 1 and "already used by a different message" in refused.stderr  # not a timeout
    assert a.cli("send", "--to", "moscow", "--wait", "--timeout", "nan", "x", check=False).returncode == 2
    b.start()
    wait_for(lambda: any(m["id"] == mid for m in b.cli_json("inbox")["messages"]), 20, "moscow to receive it")
