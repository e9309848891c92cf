"""The desk over the HTTP API, between two real running terminals: calls, readouts, commitments.

One pair of terminals (the ``consoles`` fixture) for the whole round trip: propose at
washington, accept at moscow, hold the call, publish both readouts, agree a commitment,
and see the differences between the readouts; with the roles, 400, 404 and 409 on the way.
"""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest

from conftest import Terminal, wait_for

pytestmark = pytest.mark.e2e


def api(t: Terminal, role: str) -> httpx.Client:
    token = t.create_token(role)
    return httpx.Client(base_url=t.console_url(), headers={"authorization": f"Bearer {token}"}, timeout=30)


def seen(c: httpx.Client, path: str, check: Any = lambda v: True) -> dict[str, Any]:
    """Wait until GET path answers 200 with a body that passes ``check``."""

    def ready() -> dict[str, Any] | None:
        r = c.get(path)
        return r.json() if r.status_code == 200 and check(r.json()) else None

    return dict(wait_for(ready, 10, f"{path} at {c.base_url}"))


def test_propose_accept_hold_read_out_and_agree_across_the_api(consoles: tuple[Terminal, Terminal]) -> None:
    washington, moscow = consoles
    with api(washington, "operator") as w, api(moscow, "operator") as m, api(washington, "auditor") as auditor:
        # Malformed input is the caller's mistake (400), with the reason.
        for body, words in (
            ({"to": "moscow", "subject": "x", "colour": "red"}, "not colour"),
            ({"to": "moscow", "subject": ""}, "subject"),
            ({"to": "moscow", "subject": "x", "at": "tomorrow"}, "RFC 3339"),
            ({"to": "moscow", "subject": "x", "disclosure": "whispered"}, "disclosure"),
        ):
            r = w.post("/api/calls", json=body)
            assert r.status_code == 400, (body, r.text)
            assert words in r.json()["error"], r.text
        assert auditor.post("/api/calls", json={"to": "moscow", "subject": "x"}).status_code == 403

        r = w.post("/api/calls", json={"to": "moscow", "subject": "Energy-site strikes", "answer_within": "30m",
                                       "at": "2030-10-16T14:00:00Z", "duration_s": 9000, "precedence": "immediate",
                                       "disclosure": "public"})  # fmt: skip
        assert r.status_code == 201, r.text
        call = r.json()
        call_id = call["id"]
        assert call["state"] == "proposed" and call["turn"] == "moscow" and call["ours_to_answer"] is False
        assert call["at"] == "2030-10-16T14:00:00.000000Z" and call["answer_by"].endswith("Z")
        assert call["record"]["type"] == "call.propose"

        nobody = str(uuid.uuid4())
        assert w.get(f"/api/calls/{nobody}").status_code == 404
        assert w.post(f"/api/calls/{nobody}/accept", json={}).status_code == 404
        assert w.post(f"/api/commitments/{nobody}/agree", json={}).status_code == 404
        refused = w.post(f"/api/calls/{call_id}/accept", json={})  # not washington's turn
        assert refused.status_code == 409, refused.text
        assert "moscow's turn" in refused.json()["error"]
        assert auditor.post(f"/api/calls/{call_id}/withdraw", json={}).status_code == 403

        # moscow has it (the record came through the message stream), and accepts.
        there = seen(m, f"/api/calls/{call_id}")
        assert there["ours_to_answer"] is True and there["peer"] == "washington"
        assert [c["id"] for c in m.get("/api/calls", params={"state": "open"}).json()["calls"]] == [call_id]
        accepted = m.post(f"/api/calls/{call_id[:8]}/accept", json={})  # the start of an id will do
        assert accepted.status_code == 200, accepted.text
        assert accepted.json()["state"] == "accepted"
        again = m.post(f"/api/calls/{call_id}/accept", json={})
        assert again.status_code == 409 and "already accepted" in again.json()["error"]
        seen(w, f"/api/calls/{call_id}", lambda v: v["state"] == "accepted")

        assert w.post(f"/api/calls/{call_id}/start", json={}).json()["state"] == "live"
        seen(m, f"/api/calls/{call_id}", lambda v: v["state"] == "live")
        ended = m.post(f"/api/calls/{call_id}/end", json={})
        assert ended.json()["state"] == "ended", ended.text

        # Each side's readout, in its own language; a commitment made in the call.
        r = w.post(f"/api/calls/{call_id}/readouts", json={
            "lang": "en", "disclosure": "public", "shared": True,
            "text": "The presidents agreed that their advisers will meet next week."})  # fmt: skip
        assert r.status_code == 201, r.text
        assert m.post(f"/api/calls/{call_id}/readouts", json={"lang": "ru", "text": 42}).status_code == 400
        r = m.post(f"/api/calls/{call_id}/readouts", json={
            "lang": "ru", "disclosure": "confidential", "shared": True,
            "text": "Стороны обсудили удары по энергетическим объектам."})  # fmt: skip
        assert r.status_code == 201, r.text
        made = w.post("/api/commitments", json={"call": call_id, "title": "Advisers meet", "kind": "meeting",
                                                "due": "2030-10-23"})  # fmt: skip
        assert made.status_code == 201, made.text
        item = made.json()
        assert item["state"] == "proposed" and item["other"] == "moscow" and item["due"].startswith("2030-10-23")
        own = w.post(f"/api/commitments/{item['id']}/agree", json={})
        assert own.status_code == 409 and "cannot countersign" in own.json()["error"]
        seen(m, "/api/commitments",
             lambda v: any(c["id"] == item["id"] for c in v["commitments"]))  # fmt: skip
        agreed = m.post(f"/api/commitments/{item['id']}/agree", json={})
        assert agreed.status_code == 200 and agreed.json()["state"] == "agreed", agreed.text

        # Both sides hold both readouts, side by side, and the differences a reader must notice.
        for c, me in ((w, "washington"), (m, "moscow")):
            view = seen(c, f"/api/calls/{call_id}",
                        lambda v: len(v["readouts"]) == 2 and v["commitments"] and
                        v["commitments"][0]["state"] == "agreed")  # fmt: skip
            assert view["sides"][0]["name"] == me
            assert {s["readout"]["lang"] for s in view["sides"]} == {"en", "ru"}
            assert view["actual_duration_s"] >= 0 and view["ended_by"] == "moscow"
            texts = [d["text"] for d in view["differences"]]
            assert "washington's readout is public, moscow's is confidential" in texts, texts
            assert "commitment 'Advisers meet' is named in washington's readout but not in moscow's" in texts, texts
        listed = auditor.get("/api/commitments").json()
        assert listed["total"] == 1 and listed["commitments"][0]["state"] == "agreed"
        assert auditor.get("/api/calls").json()["total"] == 1
    steps = washington.cli_json("call", "show", call_id)["history"]
    assert [s["type"] for s in steps] == ["call.propose", "call.accept", "call.start", "call.end", "readout",
                                          "readout"]  # fmt: skip
