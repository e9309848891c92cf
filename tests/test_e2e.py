"""Two real terminal processes on loopback: the promises, proven end to end."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from conftest import Terminal, wait_for

pytestmark = pytest.mark.e2e


def test_send_both_ways_and_verify(paired: tuple[Terminal, Terminal]) -> None:
    a, b = paired
    a.start()
    b.start()
    a.wait_link("moscow")
    b.wait_link("washington")
    first = a.cli("send", "--to", "moscow", "--precedence", "immediate", "--subject", "Proposal",
                  "Call at 14:00 UTC?").stdout.strip()  # fmt: skip
    reply = b.cli("send", "--to", "washington", "--lang", "ru", "--subject", "Ответ", "Согласны.").stdout.strip()
    wait_for(lambda: any(m["id"] == first for m in b.cli_json("inbox")["messages"]), 10, "moscow to receive")
    wait_for(lambda: any(m["id"] == reply for m in a.cli_json("inbox")["messages"]), 10, "washington to receive")
    inbox = b.cli_json("inbox")["messages"]
    assert [(m["subject"], m["body"], m["precedence"], m["peer"]) for m in inbox] == [
        ("Proposal", "Call at 14:00 UTC?", "immediate", "washington")
    ]
    assert a.cli_json("inbox")["messages"][0]["lang"] == "ru"
    wait_for(lambda: a.cli_json("outbox")["messages"][0]["state"] == "delivered", 10, "the delivery receipt")
    status = a.cli_json("status")
    assert status["running"] is True and status["peers"][0]["link"] == "up"
    for t in (a, b):
        assert t.stop() == 0
        assert "journal OK" in t.cli("journal", "verify").stdout
    lines = [json.loads(x) for x in a.cli("journal", "export").stdout.splitlines()]
    kinds = {x["kind"] for x in lines}
    assert {"terminal.created", "peer.paired", "message.accepted", "message.sealed", "receipt.received",
            "message.received", "receipt.sent", "link.up"} <= kinds  # fmt: skip
    assert all(x["prev"] == y["hash"] for y, x in zip(lines, lines[1:], strict=False))


def test_send_while_stopped_is_sent_by_the_next_run(paired: tuple[Terminal, Terminal], tmp_path: Path) -> None:
    a, b = paired
    attachment = tmp_path / "readout.txt"
    attachment.write_bytes(b"readout\x00" * 1000)
    out = a.cli("send", "--to", "moscow", "--attach", str(attachment), "--json", "queued offline")
    sent = json.loads(out.stdout)
    assert "terminal not running" in sent["queued_via"]
    assert a.cli_json("outbox")["messages"][0]["state"] == "queued"
    b.start()
    a.start()
    wait_for(lambda: a.cli_json("outbox")["messages"][0]["state"] == "delivered", 15, "delivery after start")
    got = b.cli_json("inbox")["messages"][0]
    assert got["id"] == sent["id"] and got["attachments"] == 1
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
    wait_for(lambda: len(b.cli_json("inbox", "--limit", "2000")["messages"]) == 1101, 30, "all 1101 to arrive")
    inbox = b.cli_json("inbox", "--limit", "2000")["messages"]
    position = [m["id"] for m in inbox].index(flash)
    assert position < 1100  # it did not wait behind the queue
    assert inbox[position]["seq"] <= 1025  # sealed as soon as the window had room
