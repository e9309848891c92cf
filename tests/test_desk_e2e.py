"""The desk between two real terminal processes: calls, readouts and commitments, on both records."""

from __future__ import annotations

from typing import Any

import pytest

from conftest import Terminal, wait_for

pytestmark = pytest.mark.e2e


def call_of(t: Terminal, call_id: str) -> dict[str, Any]:
    return t.cli_json("call", "show", call_id, "--json")  # type: ignore[no-any-return]


def shared_history(view: dict[str, Any]) -> list[tuple[str, str, str, int, str]]:
    """What both sides must hold alike: every shared act, signed by whom, when, and whether it stood."""
    return [(s["id"], s["type"], s["author"], s["at_ns"], s["void"]) for s in view["history"]
            if s["type"] not in ("call.note",)]  # fmt: skip


def test_a_call_proposed_answered_held_and_read_out_is_the_same_record_on_both_sides(
    paired: tuple[Terminal, Terminal],
) -> None:
    a, b = paired
    a.start()
    b.start()
    a.wait_link("moscow")
    call_id = a.cli(
        "call", "propose", "--to", "moscow", "--subject", "Energy sites", "--at", "2025-10-16T14:00:00Z",
        "--duration", "2h30m", "--answer-by", "30m", "--precedence", "immediate", "--disclosure", "public",
    ).stdout.strip()  # fmt: skip
    seen = wait_for(lambda: [c for c in b.cli_json("calls", "--json")["calls"] if c["id"] == call_id], 20,
                    "the request at moscow")  # fmt: skip
    assert seen[0]["state"] == "proposed" and seen[0]["turn"] == "moscow"
    # The proposer cannot answer its own request: a clear refusal, nothing journaled.
    refused = a.cli("call", "accept", call_id, check=False)
    assert refused.returncode == 1 and "moscow's turn to answer" in refused.stderr
    b.cli("call", "accept", call_id[:13])
    wait_for(lambda: call_of(a, call_id)["state"] == "accepted", 20, "the acceptance at washington")
    second = b.cli("call", "accept", call_id, check=False)
    assert second.returncode == 1 and "already accepted" in second.stderr
    a.cli("call", "start", call_id)
    wait_for(lambda: call_of(b, call_id)["state"] == "live", 20, "the start at moscow")
    a.cli("call", "note", call_id, "moscow raised the Tomahawk question")
    b.cli("call", "end", call_id)
    wait_for(lambda: call_of(a, call_id)["state"] == "ended", 20, "the end at washington")
    b.cli("readout", "add", call_id, "--lang", "ru", "--disclosure", "public", "--share",
          "--text", "Состоялся содержательный разговор.")  # fmt: skip
    a.cli("readout", "add", call_id, "--lang", "en", "--disclosure", "public", "--share",
          "--text", "A very productive call; advisers meet next week.")  # fmt: skip
    wait_for(lambda: len(call_of(a, call_id)["readouts"]) == 2 and len(call_of(b, call_id)["readouts"]) == 2, 20,
             "both readouts on both sides")  # fmt: skip
    at_a, at_b = call_of(a, call_id), call_of(b, call_id)
    for key in ("state", "proposer", "responder", "started_at_ns", "ended_at_ns", "started_by", "ended_by",
                "actual_duration_s", "answered_at_ns", "at_ns", "subject", "disclosure"):  # fmt: skip
        assert at_a[key] == at_b[key], key
    assert shared_history(at_a) == shared_history(at_b)
    assert {r["lang"] for r in at_a["readouts"]} == {"en", "ru"}
    # The note stays with its author.
    assert [n["text"] for n in at_a["notes"]] == ["moscow raised the Tomahawk question"]
    assert at_b["notes"] == []
    for t in (a, b):
        assert t.cli("journal", "verify").returncode == 0


def test_a_commitment_is_agreed_only_when_countersigned_and_tracked_on_both_sides(
    paired: tuple[Terminal, Terminal],
) -> None:
    a, b = paired
    a.start()
    b.start()
    a.wait_link("moscow")
    cid = a.cli("commitment", "add", "--to", "moscow", "--title", "Prisoner exchange", "--kind", "exchange",
                "--rounds", "3", "--due", "2099-01-01", "--disclosure", "public").stdout.strip()  # fmt: skip
    wait_for(lambda: b.cli_json("commitments", "--json")["total"] == 1, 20, "the proposal at moscow")
    assert b.cli_json("commitment", "show", cid, "--json")["state"] == "proposed"
    own = a.cli("commitment", "agree", cid, check=False)
    assert own.returncode == 1 and "cannot countersign" in own.stderr
    b.cli("commitment", "agree", cid)
    wait_for(lambda: a.cli_json("commitment", "show", cid, "--json")["state"] == "agreed", 20, "agreement")
    a.cli("commitment", "round", cid, "1", "--done-at", "2025-05-23T10:00:00Z")
    b.cli("commitment", "round", cid, "2", "--done-at", "2025-06-10T10:00:00Z")
    wait_for(lambda: len(a.cli_json("commitment", "show", cid, "--json")["rounds_done"]) == 2
             and len(b.cli_json("commitment", "show", cid, "--json")["rounds_done"]) == 2, 20, "rounds")  # fmt: skip
    va, vb = (t.cli_json("commitment", "show", cid, "--json") for t in (a, b))
    for key in ("state", "title", "agreed_by", "agreed_at_ns", "rounds_done", "text_sha256", "due_ns"):
        assert va[key] == vb[key], key
    assert [s["id"] for s in va["history"]] == [s["id"] for s in vb["history"]]


def test_desk_acts_while_stopped_are_sent_at_the_next_run(paired: tuple[Terminal, Terminal]) -> None:
    a, b = paired
    call_id = a.cli("call", "propose", "--to", "moscow", "--subject", "Written while stopped").stdout.strip()
    assert a.cli_json("calls", "--json")["calls"][0]["id"] == call_id
    a.start()
    b.start()
    wait_for(lambda: b.cli_json("calls", "--json")["total"] == 1, 20, "the request at moscow")


def test_an_unanswered_request_raises_one_alarm_on_each_side(paired: tuple[Terminal, Terminal]) -> None:
    a, b = paired
    a.start()
    b.start()
    a.wait_link("moscow")
    call_id = a.cli("call", "propose", "--to", "moscow", "--subject", "Defence line", "--answer-by",
                    "2s").stdout.strip()  # fmt: skip

    def desk_alarms(t: Terminal) -> list[dict[str, Any]]:
        return [x for x in t.cli_json("alarms", "--json")["alarms"] if x["kind"] == "call-unanswered"]

    wait_for(lambda: desk_alarms(a) and desk_alarms(b), 20, "call-unanswered on both sides")
    assert [x["subject"] for x in desk_alarms(a)] == [call_id]
    assert [x["subject"] for x in desk_alarms(b)] == [call_id]
    assert "no answer from moscow" in desk_alarms(a)[0]["detail"]
    assert call_of(a, call_id)["state"] == "unanswered"
    # Answered late: the alarm clears on both sides, the lateness stays on record.
    b.cli("call", "decline", call_id, "--reason", "not now")
    wait_for(lambda: not desk_alarms(a) and not desk_alarms(b), 20, "alarms cleared")
    assert call_of(a, call_id)["answered_late"] is True
    assert call_of(a, call_id)["state"] == "declined"
