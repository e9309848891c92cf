"""Per-member acknowledgement of a channel FLASH between three real terminals (washington, moscow,
kyiv, each pair paired): overdue at its author until every member has acknowledged it, the alarm
naming those still to; `channel show --json` and `outbox --json` with each member's receipts."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from conftest import Terminal, mesh, open_channel, wait_for
from conftest import show_channel as show

pytestmark = pytest.mark.e2e


def overdue(t: Terminal) -> dict[str, str]:
    """The ack-overdue alarms standing at a terminal: subject -> detail."""
    return {a["subject"]: a["detail"] for a in t.cli_json("alarms")["alarms"] if a["kind"] == "ack-overdue"}


def test_a_channel_flash_is_overdue_until_each_member_has_acknowledged_it(
    make_terminal: Callable[..., Terminal],
) -> None:
    w, m, k = everyone = tuple(make_terminal(name) for name in ("washington", "moscow", "kyiv"))
    for t in everyone:
        t.init()
        t.configure("deadlines", flash=2.0)
    mesh(everyone)
    open_channel(w, (m, k))

    # --wait returns once both members have signed its delivery.
    flash = w.cli("send", "--channel", "ceasefire", "--precedence", "flash", "--subject", "Launch detected",
                  "--wait", "--timeout", "30", "Acknowledge at once.").stdout.strip()  # fmt: skip
    (message,) = show(w)["messages"]
    assert message["id"] == flash
    assert {n: d["state"] for n, d in message["delivery"].items()} == {"moscow": "delivered", "kyiv": "delivered"}
    assert message["unacknowledged_by"] == ["kyiv", "moscow"]

    (listed,) = w.cli_json("channels")["channels"]
    assert listed["awaiting_their_ack"] == 1 and listed["messages"] == 1
    assert k.cli_json("channels")["channels"][0]["awaiting_our_ack"] == 1
    wait_for(lambda: "by kyiv, moscow" in overdue(w).get(flash, ""), 15, "the FLASH overdue at washington")
    alarm = next(a for a in w.cli_json("alarms")["alarms"] if a["subject"] == flash)
    assert alarm["peer"] == "#ceasefire"

    m.cli("ack", flash, "--by", "ivanov")  # by the message's own id
    wait_for(lambda: overdue(w).get(flash, "").endswith("by kyiv"), 15, "the alarm to name kyiv alone")
    assert "moscow" not in overdue(w)[flash]
    assert show(m)["messages"][0]["mine"]["acknowledged_by"] == "ivanov"

    k.cli("channel", "ack", "ceasefire", "washington#1", "--by", "petrenko")
    wait_for(lambda: flash not in overdue(w), 15, "the alarm to clear once both acknowledged")
    wait_for(lambda: not overdue(k) and not overdue(m), 15, "the members' own alarms to clear")

    (message,) = show(w)["messages"]
    assert message["unacknowledged_by"] == []
    for name, by in (("moscow", "ivanov"), ("kyiv", "petrenko")):
        receipt = message["delivery"][name]
        assert receipt["state"] == "delivered" and receipt["delivered_at"]
        assert receipt["read_at_ns"] and receipt["acknowledged_at"] and receipt["acknowledged_by"] == by
    assert "moscow:acknowledged(ivanov)" in w.cli("channel", "show", "ceasefire").stdout
    assert "[here: acknowledged(petrenko)]" in k.cli("channel", "show", "ceasefire").stdout
    assert "#ceasefire washington#1" in w.cli("outbox").stdout
    (row,) = w.cli_json("outbox")["channel_messages"]
    assert row["id"] == flash and row["channel"] == "ceasefire"
    assert {n: d["acknowledged_by"] for n, d in row["delivery"].items()} == {"moscow": "ivanov", "kyiv": "petrenko"}

    # Files go along (--attach): each member saves what the author's signed record names.
    report = w.home.parent / "report.txt"
    report.write_text("Ceasefire holding along the line.\n")
    with_file = w.cli("send", "--channel", "ceasefire", "--attach", str(report), "--wait", "See the report.").stdout
    for t in (m, k):
        saved = t.cli("attachment", with_file.strip(), "0", "-o", "-").stdout
        assert saved == "Ceasefire holding along the line.\n"
    assert show(k)["messages"][-1]["attachments"][0]["name"] == "report.txt"
