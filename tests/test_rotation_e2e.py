"""Key rotation and revocation with real terminals (issue 13): a key rotated on a running pair while
messages flow, with nothing lost and the old key refused after; a key rotated on a stopped terminal;
and a revoked key, refused until the pair is made afresh."""

from __future__ import annotations

import base64
import collections
import json
import socket
import ssl
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from conftest import Terminal, wait_for
from hotline.cli.common import NEXT_KEYS
from hotline.core.errors import PassphraseError, SignatureError
from hotline.crypto import envelope as env
from hotline.crypto.identity import ContactCard, Identity, fingerprint, make_card
from hotline.crypto.succession import make_succession
from hotline.engine.trust import record_rotation
from hotline.home.keyfile import load_keys, save_keys
from hotline.storage.backend import open_storage
from hotline.terminal.tls import client_context

pytestmark = pytest.mark.e2e


def _all_delivered(*terminals: Terminal) -> bool:
    return all(
        m["state"] == "delivered" for t in terminals for m in t.cli_json("outbox", "--limit", "5000")["messages"]
    )


def _peer(t: Terminal, name: str) -> dict[str, Any]:
    return next(p for p in t.cli_json("peers")["peers"] if p["name"] == name)


def _alarms(t: Terminal, kind: str) -> list[dict[str, Any]]:
    return [a for a in t.cli_json("alarms")["alarms"] if a["kind"] == kind]


def _old_key_handshake(old: Identity, home: Path, port: int) -> None:
    """Connect to ``port`` presenting ``old``'s certificate, as the holder of a stale key would."""
    ctx = client_context(old, home)
    with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:
        try:
            with ctx.wrap_socket(raw) as tls:
                tls.settimeout(5)
                tls.recv(1)  # the terminal closes it once it sees the key
        except (OSError, ssl.SSLError):
            pass


def _export(t: Terminal) -> list[dict[str, Any]]:
    return [json.loads(line) for line in t.cli("journal", "export").stdout.splitlines()]


def test_rotate_key_on_a_running_pair_while_messages_flow(paired: tuple[Terminal, Terminal], tmp_path: Path) -> None:
    a, b = paired
    a.start()
    b.start()
    a.wait_link("moscow")
    b.wait_link("washington")
    before = _peer(b, "washington")
    b.cli("verify", "washington", before["safety_number"])
    old = load_keys(a.home / "keys.json", None)

    a_bodies = [f"washington message {n}" for n in range(40)]
    b_bodies = [f"moscow message {n}" for n in range(40)]
    a.send_many("moscow", a_bodies[:20])  # accepted, on their way: the rotation comes in the middle
    b.send_many("washington", b_bodies[:20])
    out = a.cli("rotate-key").stdout
    assert "identity key rotated" in out and "every peer on a live link has been told" in out, out
    a.send_many("moscow", a_bodies[20:])
    b.send_many("washington", b_bodies[20:])
    wait_for(lambda: sum(b.inbox_bodies().values()) == 40 and sum(a.inbox_bodies().values()) == 40, 60, "every message")
    wait_for(lambda: _all_delivered(a, b), 30, "every receipt")
    assert b.inbox_bodies() == collections.Counter(a_bodies), "moscow holds each of washington's messages once"
    assert a.inbox_bodies() == collections.Counter(b_bodies), "washington holds each of moscow's messages once"

    new = load_keys(a.home / "keys.json", None)
    assert new.public_key != old.public_key and new.name == "washington"
    assert json.loads(a.card())["identity_key"] == base64.b64encode(new.public_key).decode()
    after = _peer(b, "washington")
    assert after["fingerprint"] == fingerprint(new.public_key)
    assert after["safety_number"] != before["safety_number"]
    assert after["rotated_at"] and after["verified"], after  # vouched for by the verified key
    assert after["safety_number"] == _peer(a, "moscow")["safety_number"], "both sides show the same digits"
    assert "key came by succession" in b.cli("peers").stdout
    rotated = _alarms(b, "peer-key-rotated")
    assert len(rotated) == 1 and "washington" in rotated[0]["detail"], rotated

    # The old key is refused from now on: a TLS handshake with it, by name, and nothing journaled.
    entries = len(_export(b))
    _old_key_handshake(old, tmp_path, b.port)
    wait_for(lambda: "stale" in b.log(), 10, "the refusal in moscow's log")
    assert f"key {fingerprint(old.public_key)} of 'washington' is stale" in b.log()
    assert not [e for e in _export(b)[entries:] if e["kind"].startswith("link.")], "the stale attempt is not journaled"

    # The pair still works, and a restart keeps the new key.
    a.stop()
    a.start()
    a.wait_link("moscow")
    a.send_many("moscow", ["after the restart"])
    wait_for(lambda: b.inbox_bodies()["after the restart"] == 1, 30, "a message after the restart")
    assert len(_alarms(b, "peer-key-rotated")) == 1, "the alarm is raised once, not per link"
    b.cli("verify", "washington", after["safety_number"])  # the operators read the new digits aloud
    wait_for(lambda: not _alarms(b, "peer-key-rotated"), 10, "the alarm to clear once confirmed")
    assert not _alarms(a, "journal-altered"), "the checkpoint was signed again with the new key"
    for t in (a, b):
        t.stop()
        assert "journal OK" in t.cli("journal", "verify").stdout
        assert "Traceback" not in t.log()
    # moscow's record holds envelopes signed by each of washington's keys, and each verifies.
    signers: collections.Counter[bytes] = collections.Counter()
    for e in _export(b):
        if e["kind"] == "message.received":
            data = base64.b64decode(e["body"]["envelope"])
            for key in (old.public_key, new.public_key):
                try:
                    env.open_envelope(data, key)
                except SignatureError:  # signed by the other key
                    continue
                signers[key] += 1
    assert signers[old.public_key] > 0 and signers[new.public_key] > 0, signers


def test_rotate_key_on_a_stopped_terminal_is_accepted_when_the_link_comes_up(
    paired: tuple[Terminal, Terminal],
) -> None:
    a, b = paired
    a.start()
    b.start()
    a.wait_link("moscow")
    a.send_many("moscow", ["before"])
    wait_for(lambda: b.inbox_bodies()["before"] == 1, 30, "the first message")
    a.stop()
    out = a.cli("rotate-key", "--json").stdout
    assert json.loads(out)["running"] is False
    a.start()
    wait_for(lambda: a.link_up("moscow") and b.link_up("washington"), 30, "the link with the new key")
    a.send_many("moscow", ["after"])
    b.send_many("washington", ["answer"])
    wait_for(
        lambda: b.inbox_bodies()["after"] == 1 and a.inbox_bodies()["answer"] == 1, 30, "messages under the new key"
    )
    assert len(_alarms(b, "peer-key-rotated")) == 1
    assert not _alarms(b, "peer-key-changed"), "a succession is not a changed key"
    assert _peer(b, "washington")["fingerprint"] == fingerprint(load_keys(a.home / "keys.json", None).public_key)
    for t in (a, b):
        t.stop()
        assert "journal OK" in t.cli("journal", "verify").stdout


def test_revoke_refuses_the_key_until_paired_afresh(paired: tuple[Terminal, Terminal], tmp_path: Path) -> None:
    a, b = paired
    a.start()
    b.start()
    a.wait_link("moscow")
    b.wait_link("washington")
    old = load_keys(a.home / "keys.json", None)
    old_card = tmp_path / "washington-old.card"
    old_card.write_text(a.card())
    out = a.cli("revoke", "--reason", "laptop stolen").stdout
    assert "REVOKED" in out and "hotline pair" in out, out
    wait_for(lambda: _alarms(b, "peer-key-revoked"), 20, "the revocation at moscow")
    assert "laptop stolen" in _alarms(b, "peer-key-revoked")[0]["detail"]
    assert _peer(b, "washington")["revoked"]
    assert "REVOKED" in b.cli("peers").stdout

    # The revoked key is refused: a handshake with it, and pairing its card again.
    _old_key_handshake(old, tmp_path, b.port)
    wait_for(lambda: "was revoked" in b.log(), 10, "the refusal in moscow's log")
    again = b.cli("pair", str(old_card), check=False)
    assert again.returncode != 0 and "revoked" in again.stderr, again.stderr

    # Nothing passes until moscow pairs the new card and both read the new safety number.
    a.send_many("moscow", ["after the revocation"])
    assert not b.link_up("washington")
    b.pair_with(a)
    digits = _peer(b, "washington")["safety_number"]
    assert digits == _peer(a, "moscow")["safety_number"]
    b.cli("verify", "washington", digits)
    a.cli("verify", "moscow", digits)
    assert not _alarms(b, "peer-key-revoked"), "paired afresh: the alarm has done its work"
    wait_for(lambda: b.inbox_bodies()["after the revocation"] == 1, 30, "the message after the fresh pairing")
    b.send_many("washington", ["welcome back"])
    wait_for(lambda: a.inbox_bodies()["welcome back"] == 1, 30, "the answer")
    for t in (a, b):
        t.stop()
        assert "journal OK" in t.cli("journal", "verify").stdout
        assert "Traceback" not in t.log()


def test_an_interrupted_rotation_is_finished_or_forgotten_as_the_journal_says(
    paired: tuple[Terminal, Terminal],
) -> None:
    a, b = paired
    old = load_keys(a.home / "keys.json", None)
    new = replace(Identity.generate("washington"), state_key=old.state_key)
    card = make_card(new, ContactCard.from_json(a.card()).addresses, "2026-12-04T00:00:00Z")
    # Not journaled: the new keys beside the old are forgotten.
    save_keys(a.home / NEXT_KEYS, new, None)
    a.start()
    a.stop()
    assert not (a.home / NEXT_KEYS).exists()
    assert load_keys(a.home / "keys.json", None).public_key == old.public_key
    # Journaled, then the process died before moving the keys: the next start finishes it.
    save_keys(a.home / NEXT_KEYS, new, None)
    with open_storage(a.home / "journal.sqlite") as storage, storage.record.transaction():
        record_rotation(storage.store, old, new, make_succession(old, card, n=1, at_ns=1), 1)
    a.start()
    assert load_keys(a.home / "keys.json", None).public_key == new.public_key
    b.start()
    wait_for(lambda: a.link_up("moscow") and b.link_up("washington"), 30, "the link with the new key")
    assert _peer(b, "washington")["fingerprint"] == fingerprint(new.public_key)
    for t in (a, b):
        t.stop()
        assert "journal OK" in t.cli("journal", "verify").stdout


def test_an_operator_revokes_trust_in_a_peer_key_locally(paired: tuple[Terminal, Terminal], tmp_path: Path) -> None:
    a, b = paired
    a.start()
    b.start()
    b.wait_link("washington")
    card = tmp_path / "washington-now.card"
    card.write_text(a.card())
    said = b.cli_json("revoke", "--peer", "washington", "--reason", "their laptop was stolen")
    assert said["peer"] == "washington"
    wait_for(lambda: not b.link_up("washington"), 10, "the link to close")
    assert _peer(b, "washington")["revoked"]
    refused = b.cli("pair", str(card), check=False)
    assert refused.returncode != 0 and "revoked" in refused.stderr
    a.send_many("moscow", ["not through"])
    b.stop()
    b.start()  # washington dials it again, and is refused by name
    wait_for(lambda: "of 'washington' was revoked" in b.log(), 20, "washington's next dial to be refused")
    assert not b.link_up("washington") and b.inbox_bodies()["not through"] == 0
    b.stop()
    assert "journal OK" in b.cli("journal", "verify").stdout


def test_the_new_keys_are_sealed_under_the_same_passphrase(make_terminal: Callable[..., Terminal]) -> None:
    t = make_terminal("washington", passphrase="correct horse battery staple")
    t.init()
    before = load_keys(t.home / "keys.json", "correct horse battery staple")
    said = t.cli_json("rotate-key")
    after = load_keys(t.home / "keys.json", "correct horse battery staple")
    assert said["new"] == fingerprint(after.public_key) and after.public_key != before.public_key
    with pytest.raises(PassphraseError):
        load_keys(t.home / "keys.json", "wrong")
    assert not (t.home / NEXT_KEYS).exists()
    assert "journal OK" in t.cli("journal", "verify").stdout
