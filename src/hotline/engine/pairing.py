"""Pairing: pin a peer's card and start the end-to-end session with it.

Both sides pair independently with the other's card and arrive at the same
ratchet start (``ratchet.initial_secret``; the smaller identity key takes the
initiator's role) and the same safety number, which the two operators read to
each other before they trust the line.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Any

from hotline.core.errors import ConfigError, UnknownPeer
from hotline.core.times import rfc3339
from hotline.crypto.identity import ContactCard, Identity, fingerprint, safety_number
from hotline.crypto.ratchet import Ratchet, initial_secret, is_initiator
from hotline.engine.peer import seal_state
from hotline.storage.base import TerminalStore
from hotline.storage.records import PeerRow


@dataclass(frozen=True, slots=True)
class PairResult:
    safety_number: str
    already: bool  # the same card was already pinned: nothing changed
    replaced: PeerRow | None  # the earlier pairing this one replaced (a different key), if any


def pair(
    store: TerminalStore, identity: Identity, card: ContactCard, now_ns: int, by: str = "", *, fresh: bool = False
) -> PairResult:
    """Pin ``card`` (already signature-checked) in the journal, in one transaction.

    ``by`` names who paired (a console user or token) and is journaled beside it. ``fresh``: pair
    again with the same card because our own key changed (``hotline revoke``): a new session, a new
    stream and a new safety number, unverified."""
    if card.identity_key == identity.public_key or card.name == identity.name:
        raise ConfigError("that is this terminal's own card; pair with the other side's card")
    revoked_for = store.revoked_keys().get(card.identity_key)
    if revoked_for is not None:
        raise ConfigError(
            f"that card carries key {fingerprint(card.identity_key)}, which {revoked_for!r} revoked as compromised; "
            "ask its operator for the card of its new key"
        )
    number = safety_number(identity.public_key, identity.name.encode(), card.identity_key, card.name.encode())
    old = store.peer(card.name)
    if not fresh and old is not None and old.identity_key == card.identity_key and old.card_json == card.to_json():
        return PairResult(number, already=True, replaced=None)
    secret = initial_secret(identity.public_key, identity.dh_key, card.identity_key, card.dh_key)
    if is_initiator(identity.public_key, card.identity_key):
        ratchet = Ratchet.initiator(secret, identity.dh_key, card.dh_key)
    else:
        ratchet = Ratchet.responder(secret, identity.dh_key, card.dh_key)
    with store.journal.transaction():
        rekeyed = store.add_peer(
            card.name, card.to_json(), card.identity_key, number,
            seal_state(identity.state_key, card.name, ratchet.to_bytes(), secrets.token_bytes(12)), now_ns, fresh=fresh,
        )  # fmt: skip
        if by:
            store.record_operator("pair", {"peer": card.name, "by": by}, now_ns)
    return PairResult(number, already=False, replaced=old if rekeyed else None)


def confirm_safety_number(store: TerminalStore, peer_name: str, heard: str, now_ns: int, by: str = "") -> None:
    """Record that the operators compared the safety number aloud, if the digits heard match."""
    peer = store.peer(peer_name)
    if peer is None:
        raise UnknownPeer(f"no peer named {peer_name!r}; see `hotline peers`")
    if "".join(ch for ch in heard if ch.isdigit()) != peer.safety_number.replace(" ", ""):
        raise ConfigError(
            f"the safety number you heard does not match the one for {peer_name!r}: do NOT trust this pairing; "
            "compare the cards out of band and re-pair"
        )
    with store.journal.transaction():
        store.mark_verified(peer_name, now_ns, by)


def peer_listing(store: TerminalStore) -> list[dict[str, Any]]:
    """Every paired peer with its fingerprint, safety number, paths and verification state."""
    peers: list[dict[str, Any]] = []
    for row in store.peers():
        card = ContactCard.from_json(row.card_json)
        past = store.past_keys(row.name)
        retired = [p for p in past if p.state == "retired"]
        peers.append(
            {
                "name": row.name,
                "fingerprint": fingerprint(row.identity_key),
                "safety_number": row.safety_number,
                "paired_at": rfc3339(row.paired_at_ns),
                "addresses": [{"path": a.path, "address": str(a)} for a in card.addresses],
                "verified": row.verified_at_ns is not None,
                "verified_at": rfc3339(row.verified_at_ns) if row.verified_at_ns else None,
                # The key came by a succession the earlier key signed (``hotline rotate-key``), not by pairing.
                "rotated_at": rfc3339(retired[-1].at_ns)
                if retired and retired[-1].successor == row.identity_key
                else None,
                "revoked": any(p.state == "revoked" and p.key == row.identity_key for p in past),
                "past_keys": [
                    {"fingerprint": fingerprint(p.key), "state": p.state, "at": rfc3339(p.at_ns)} for p in past
                ],
            }
        )
    return peers
