"""A supervisor pairs a new terminal through the API; operators may not."""

from __future__ import annotations

import json
from collections.abc import Callable

import httpx
import pytest

from conftest import PASSWORD, Terminal, wait_for

pytestmark = pytest.mark.e2e


def test_a_supervisor_pairs_and_verifies_a_new_peer_through_the_api(
    consoles: tuple[Terminal, Terminal], make_terminal: Callable[..., Terminal]
) -> None:
    washington, _ = consoles
    beijing = make_terminal("beijing")
    beijing.init()
    printed = beijing.pair_with(washington)
    digits = "".join(ch for ch in printed.split("safety number", 1)[1] if ch.isdigit())
    assert len(digits) == 60
    beijing.start()
    api = washington.console_url() + "/api"
    card = beijing.card()

    operator = {"authorization": f"Bearer {washington.create_token('operator')}"}
    refused = httpx.post(f"{api}/peers", json={"card": card}, headers=operator, timeout=30)
    assert refused.status_code == 403, refused.text

    session = httpx.Client(timeout=30)
    csrf = session.post(f"{api}/session", json={"name": "sam", "password": PASSWORD}).json()["csrf"]
    headers = {"x-csrf-token": csrf}
    forged = json.loads(card)
    forged["addresses"][0]["port"] = 1  # an attacker's address under beijing's signature
    bad = session.post(f"{api}/peers", json={"card": json.dumps(forged)}, headers=headers)
    assert bad.status_code == 400 and bad.json()["error"], bad.text
    paired = session.post(f"{api}/peers", json={"card": card}, headers=headers)
    assert paired.status_code == 201, paired.text
    # Both sides derive the same 60 digits: the operators can read them to each other.
    assert "".join(ch for ch in paired.json()["safety_number"] if ch.isdigit()) == digits
    again = session.post(f"{api}/peers", json={"card": card}, headers=headers)
    assert again.status_code == 200 and again.json()["already"] is True

    washington.wait_link("beijing")  # the running terminal dialled its new peer without a restart

    wrong = session.post(f"{api}/peers/beijing/verify", json={"safety_number": "1" * 60}, headers=headers)
    assert wrong.status_code == 400 and "does not match" in wrong.json()["error"]
    right = session.post(f"{api}/peers/beijing/verify", json={"safety_number": digits}, headers=headers)
    assert right.status_code == 200, right.text
    peers = {p["name"]: p for p in session.get(f"{api}/peers").json()["peers"]}
    assert peers["beijing"]["verified"] is True

    def actions() -> list[dict[str, object]]:
        entries = [json.loads(line) for line in washington.cli("journal", "export").stdout.splitlines()]
        return [e["body"] for e in entries if e["kind"] == "operator.action"]

    done = wait_for(lambda: [a for a in actions() if a.get("peer") == "beijing"] or None, 5, "the journal")
    assert [(a["action"], a["by"]) for a in done] == [("pair", "sam"), ("verify-peer", "sam")]
