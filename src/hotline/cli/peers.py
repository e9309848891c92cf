"""`hotline pair`, `hotline peers` and `hotline verify`: the peers this terminal trusts, and how far."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from hotline.cli.common import (
    Add,
    ask_running,
    load_identity,
    now_ns,
    open_home,
    open_journal,
    open_journal_to_record,
    out_json,
    ts,
)
from hotline.core.errors import ConfigError
from hotline.crypto.identity import MAX_CARD_BYTES, ContactCard, fingerprint
from hotline.engine.pairing import confirm_safety_number, pair, peer_listing


def _read_card(path: str) -> ContactCard:
    source = Path(path)
    try:
        with sys.stdin.buffer if path == "-" else source.open("rb") as f:
            data = f.read(MAX_CARD_BYTES + 1)
    except OSError as e:
        raise ConfigError(f"cannot read card {path}: {e.strerror or e}") from None
    return ContactCard.from_json(data)


def cmd_pair(args: argparse.Namespace) -> int:
    home, config = open_home(args)
    card = _read_card(args.file)
    identity = load_identity(home, config)
    with open_journal_to_record(home) as storage:
        result = pair(storage.store, identity, card, now_ns())
    old = result.replaced
    if result.already:
        print(f"{card.name} is already paired with this key.")
    else:
        if old is not None:
            print(
                f"WARNING: this REPLACES the key for {card.name} paired on {ts(old.paired_at_ns)} "
                f"({fingerprint(old.identity_key)} -> {fingerprint(card.identity_key)})."
            )
        print(f"paired {card.name} ({fingerprint(card.identity_key)}) at {', '.join(str(a) for a in card.addresses)}")
    ask_running(home, "reload")  # a stopped terminal reads the new peer from the journal when it starts
    number = result.safety_number
    print("safety number (read it aloud with the other operator; both screens must show the same digits):")
    print(f"  {number[:35]}\n  {number[36:]}")
    if not result.already:
        print(f"next: once the digits match, `hotline verify {card.name} DIGITS` records it")
    return 0


def cmd_peers(args: argparse.Namespace) -> int:
    home, _ = open_home(args)
    with open_journal(home, readonly=True) as storage:
        peers = peer_listing(storage.store)
    if args.json:
        out_json({"peers": peers})
        return 0
    if not peers:
        print("no peers yet: `hotline pair FILE` with the other side's card")
    for p in peers:
        state = f"verified {p['verified_at']}" if p["verified"] else "UNVERIFIED (see `hotline verify`)"
        if p["revoked"]:
            state = "REVOKED: its key is refused; pair its new card (`hotline pair FILE`)"
        print(f"{p['name']:<16} {p['fingerprint']}  paired {p['paired_at']}  {state}")
        print(f"  safety number {p['safety_number']}")
        if p["rotated_at"]:
            print(
                f"  key came by succession on {p['rotated_at']}, signed by the key it replaced"
                + (" (the verification carries over)" if p["verified"] else "")
            )
        print(f"  paths: {', '.join(a['path'] + '=' + a['address'] for a in p['addresses'])}")
    return 0


def cmd_verify(args: argparse.Namespace) -> int:
    home, _ = open_home(args)
    with open_journal_to_record(home) as storage:
        confirm_safety_number(storage.store, args.peer, args.safety_number, now_ns())
    ask_running(home, "reload")  # a running terminal clears the alarm of a rotated key, if any
    print(f"{args.peer}: safety number confirmed and recorded in the journal")
    return 0


def register(add: Add) -> None:
    p = add("pair", cmd_pair, "import a peer's contact card and print the safety number")
    p.add_argument("file", help="the peer's card file, or - for stdin")
    add("peers", cmd_peers, "list paired peers and whether their safety number was confirmed", listing=True)
    p = add("verify", cmd_verify, "record that the other operator read you the same safety number")
    p.add_argument("peer", help="peer name")
    p.add_argument("safety_number", help="the 60 digits as the other operator read them (spaces allowed)")
