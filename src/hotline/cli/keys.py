"""`hotline rotate-key` and `hotline revoke`: change this terminal's identity key, on purpose or after a compromise."""

from __future__ import annotations

import argparse
import os
from dataclasses import replace
from pathlib import Path
from typing import Any

from hotline.cli.common import (
    NEXT_KEYS,
    Add,
    ask_passphrase,
    now_ns,
    open_home,
    open_journal,
    open_journal_to_record,
    out_json,
)
from hotline.cli.setup import CARD_FILE
from hotline.core import times
from hotline.core.errors import ControlError, UnknownPeer
from hotline.core.wire import pack
from hotline.crypto.identity import ContactCard, Identity, fingerprint, make_card
from hotline.crypto.succession import make_revocation, make_succession
from hotline.engine.pairing import peer_listing
from hotline.engine.trust import record_distrust, record_revocation, record_rotation
from hotline.home.config import KEYS_FILE, Config
from hotline.home.keyfile import load_keys, save_keys, write_atomic
from hotline.terminal.control import ControlClient

ROTATE_HELP = """\
Create a new identity key (and TLS certificate and X25519 key) and hand this terminal's
name over to it with a succession signed by the current key. Peers check the succession
against the key they pinned at pairing and accept the new key without re-pairing: they
see the alarm "peer-key-rotated" once, and a new safety number in `hotline peers`
(marked as come by succession; its verification is kept, since the verified key vouched
for it). From then on they refuse the old key for anything new.

On a running terminal the peers are told at once, on every live link, and no message is
lost: what the old key sealed is still opened with it. On a stopped terminal they are
told when their links come up. The passphrase (if any) is asked once and protects the
new keys as it did the old; card.json is rewritten: `hotline card` prints the new card.

Use `hotline revoke` instead if the current key may be in someone else's hands.
"""

REVOKE_HELP = """\
For a key believed COMPROMISED. Sends every peer a revocation signed by that key (the
only key they know of ours; a revocation only takes trust away, so a thief gains
nothing by forging one), and starts afresh with new keys. Peers refuse the revoked key
from then on, even for a succession, raise the alarm "peer-key-revoked", and accept
this terminal again only when their operator pairs the NEW card (`hotline pair FILE`)
and both sides read the new safety number aloud (`hotline verify PEER DIGITS`).

Here every peer is paired afresh with its (unchanged) card, unverified: verify each one
again once the digits are read. Messages not yet delivered are sent again in the new
session.

With --peer NAME it is the other way round: you believe the PEER's key compromised and
stop trusting it here (journaled, its links close, nothing of it is accepted) until
you pair its new card and read the new safety number aloud. No passphrase is needed.
"""


def _key_change(args: argparse.Namespace) -> tuple[Path, Config, Identity, Identity, ContactCard, str | None]:
    """The current identity (unlocked), a new one under the same name, and the new card."""
    home, config = open_home(args)
    passphrase = ask_passphrase(config)
    old = load_keys(home / KEYS_FILE, passphrase)
    # The state key seals this terminal's session states at rest on this machine; it is not a key
    # peers know, and sessions sealed under it must stay readable, so it carries over.
    new = replace(Identity.generate(old.name), state_key=old.state_key)
    current = ContactCard.from_json((home / CARD_FILE).read_text())
    card = make_card(new, current.addresses, times.rfc3339(now_ns()).split(".")[0] + "Z")
    return home, config, old, new, card, passphrase


def _apply(home: Path, op: str, old: Identity, new: Identity, card: ContactCard, statement: bytes,
           passphrase: str | None) -> bool:  # fmt: skip
    """Hand the change to the running terminal, or journal it here if it is stopped; then put the new
    keys in place. Returns whether the terminal was running. The new keys are written first beside
    the old ones, so a failure leaves the old ones in place."""
    save_keys(home / NEXT_KEYS, new, passphrase)
    try:
        running = True
        try:
            with ControlClient(home, timeout=60) as client:
                client.request(op, statement=statement, keys=pack(new.secret_fields()))
        except ControlError as e:
            if "no running terminal" not in str(e):
                raise
            running = False
            with open_journal_to_record(home) as storage, storage.record.transaction():
                if op == "rotate-key":
                    record_rotation(storage.store, old, new, statement, now_ns())
                else:
                    record_revocation(storage.store, old, new, statement, now_ns())
    except BaseException:
        (home / NEXT_KEYS).unlink(missing_ok=True)
        raise
    write_atomic(home / CARD_FILE, card.to_json().encode(), 0o644)
    os.replace(home / NEXT_KEYS, home / KEYS_FILE)
    return running


def cmd_rotate_key(args: argparse.Namespace) -> int:
    home, _, old, new, card, passphrase = _key_change(args)
    with open_journal(home, readonly=True) as storage:
        n = 1 + sum(1 for s in storage.store.own_statements() if s.kind == "terminal.rotated")
    statement = make_succession(old, card, n=n, at_ns=now_ns())
    running = _apply(home, "rotate-key", old, new, card, statement, passphrase)
    result: dict[str, Any] = {"old": fingerprint(old.public_key), "new": fingerprint(new.public_key),
                              "rotation": n, "running": running}  # fmt: skip
    if args.json:
        out_json(result)
        return 0
    print(f"identity key rotated: {result['old']} -> {result['new']} (rotation {n})")
    if running:
        print("the running terminal signs with the new key now; every peer on a live link has been told")
    else:
        print("peers will be told when their links come up (`hotline run`)")
    print("peers keep their pairing; they see the alarm 'peer-key-rotated' and a new safety number")
    return 0


def _revoke_peer(args: argparse.Namespace) -> int:
    """`hotline revoke --peer NAME`: this side's operator stops trusting the peer's current key."""
    home, _ = open_home(args)
    by = f"cli:{os.environ.get('USER') or os.environ.get('LOGNAME') or 'unknown'}"
    try:
        with ControlClient(home, timeout=30) as client:
            result: dict[str, Any] = client.request("revoke-peer", peer=args.peer, reason=args.reason, by=by)
    except ControlError as e:
        if "no running terminal" not in str(e):
            raise
        with open_journal_to_record(home) as storage, storage.record.transaction():
            row = storage.store.peer(args.peer)
            if row is None:
                raise UnknownPeer(f"no peer named {args.peer!r}; see `hotline peers`") from None
            record_distrust(storage.store, row.name, row.identity_key, args.reason, by, now_ns())
            result = {"peer": row.name, "revoked": fingerprint(row.identity_key)}
    if args.json:
        out_json(result)
        return 0
    print(f"trust in {result['peer']}'s key {result['revoked']} revoked here; nothing of it is accepted until you")
    print(f"pair its new card (`hotline pair FILE`) and read the safety number aloud (`hotline verify {args.peer}`)")
    return 0


def cmd_revoke(args: argparse.Namespace) -> int:
    if args.peer:
        return _revoke_peer(args)
    home, _, old, new, card, passphrase = _key_change(args)
    statement = make_revocation(old, at_ns=now_ns(), reason=args.reason)
    running = _apply(home, "revoke", old, new, card, statement, passphrase)
    with open_journal(home, readonly=True) as storage:
        peers = peer_listing(storage.store)
    result: dict[str, Any] = {"revoked": fingerprint(old.public_key), "new": fingerprint(new.public_key),
                              "running": running, "card": str(home / CARD_FILE),
                              "peers": [{"name": p["name"], "safety_number": p["safety_number"]}
                                        for p in peers]}  # fmt: skip
    if args.json:
        out_json(result)
        return 0
    print(f"key {result['revoked']} REVOKED; new identity key {result['new']}")
    print("every peer refuses the old key once it hears the revocation, and this terminal until it pairs the new card:")
    print(f"  give each peer the new card ({home / CARD_FILE}, or `hotline card`);")
    print("  its operator runs `hotline pair FILE`")
    for p in result["peers"]:
        print(f"  {p['name']}: new safety number {p['safety_number']} -- read it aloud, then "
              f"`hotline verify {p['name']} DIGITS` on both sides")  # fmt: skip
    return 0


def register(add: Add) -> None:
    p = add("rotate-key", cmd_rotate_key, "replace this terminal's identity key; peers accept it without re-pairing",
            listing=True)  # fmt: skip
    p.description = ROTATE_HELP
    p.formatter_class = argparse.RawDescriptionHelpFormatter
    p = add("revoke", cmd_revoke, "revoke a compromised identity key; peers must pair the new card afresh",
            listing=True)  # fmt: skip
    p.description = REVOKE_HELP
    p.formatter_class = argparse.RawDescriptionHelpFormatter
    p.add_argument("--reason", default="key believed compromised", help="told to peers with the revocation")
    p.add_argument("--peer", help="instead: stop trusting this PEER's current key here (its key is believed "
                   "compromised, and it cannot say so itself); only pairing its new card restores it")  # fmt: skip
