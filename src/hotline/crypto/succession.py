"""Key succession and revocation: the two signed statements a terminal makes about its own key.

*Succession* (``hotline rotate-key``): "my identity key was OLD; from now on it is
the key of this card". The statement is signed by the OLD key, the one the peer
pinned at pairing, so the peer can accept the new key without re-pairing; the new
card inside it is signed by the NEW key (``ContactCard``), so the statement also
proves its maker holds the new key, and it carries the new TLS certificate and
X25519 key. Body (msgpack map, signed as ``{b, s}``, ``crypto.signed``)::

    {v, name, old, n, at, card}

``n`` counts the terminal's rotations (1, 2, ...), ``at`` is the time it was made
(ns), ``card`` the new card's JSON text.

*Revocation* (``hotline revoke``): "the key KEY is compromised: refuse it, and
everything it signs, from now on". Signed by the revoked key itself, as an OpenPGP
revocation certificate is: the peer knows no other key of ours to check it with,
and a revocation only ever takes trust away, so a thief who forges one gains
nothing the key did not already give it. Body::

    {v, name, key, at, reason}

Nothing here decides whether a statement is *news* (the peer's pinned key and its
key history do); these functions check only form and signature.
"""

from __future__ import annotations

from dataclasses import dataclass

from hotline.core.errors import CardError, KeyConflict, RemoteProtocolError, SignatureError
from hotline.core.wire import pack, unpack
from hotline.crypto.identity import ContactCard, Identity, fingerprint, verify
from hotline.crypto.signed import signed_map, split_signed

SUCCESSION_CONTEXT = b"hotline-succession-v1\x00"
REVOCATION_CONTEXT = b"hotline-revocation-v1\x00"
STATEMENT_VERSION = 1
MAX_STATEMENT_BYTES = 96 * 1024  # a card (64 KiB at most) and a little more
MAX_REASON_CHARS = 500


@dataclass(frozen=True, slots=True)
class Succession:
    """A verified succession. ``raw`` is the exact signed form (journaled and sent as is)."""

    name: str
    old_key: bytes
    n: int
    at_ns: int
    card: ContactCard  # the new key's card, signed by the new key
    raw: bytes

    @property
    def new_key(self) -> bytes:
        return self.card.identity_key


@dataclass(frozen=True, slots=True)
class Revocation:
    """A verified revocation of ``key``, signed by that key."""

    name: str
    key: bytes
    at_ns: int
    reason: str
    raw: bytes


def make_succession(old: Identity, new_card: ContactCard, *, n: int, at_ns: int) -> bytes:
    """``old`` hands its name over to the key of ``new_card`` (a card made by the new identity)."""
    if new_card.name != old.name or new_card.identity_key == old.public_key:
        raise CardError("a succession hands a terminal's own name to a different key of its own")
    body = pack({"v": STATEMENT_VERSION, "name": old.name, "old": old.public_key, "n": n, "at": at_ns,
                 "card": new_card.to_json()})  # fmt: skip
    return signed_map(old, SUCCESSION_CONTEXT, body)


def make_revocation(compromised: Identity, *, at_ns: int, reason: str) -> bytes:
    """``compromised`` revokes itself: peers refuse its key from now on."""
    body = pack({"v": STATEMENT_VERSION, "name": compromised.name, "key": compromised.public_key, "at": at_ns,
                 "reason": reason[:MAX_REASON_CHARS]})  # fmt: skip
    return signed_map(compromised, REVOCATION_CONTEXT, body)


def _body(data: bytes, what: str, keys: set[str]) -> tuple[dict[str, object], bytes, bytes]:
    body_bytes, sig = split_signed(data, MAX_STATEMENT_BYTES, what)
    body = unpack(body_bytes, max_bytes=MAX_STATEMENT_BYTES)
    if not isinstance(body, dict) or set(body) != keys or body.get("v") != STATEMENT_VERSION:
        raise RemoteProtocolError(f"{what} is not a version-{STATEMENT_VERSION} statement of the expected fields")
    return body, body_bytes, sig


def _int(body: dict[str, object], key: str, what: str) -> int:
    value = body[key]
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value < 1 << 63:
        raise RemoteProtocolError(f"{what} field {key!r} must be a non-negative integer")
    return value


def _key(body: dict[str, object], key: str, what: str) -> bytes:
    value = body[key]
    if not isinstance(value, bytes) or len(value) != 32:
        raise RemoteProtocolError(f"{what} field {key!r} must be a 32-byte key")
    return value


def _name(body: dict[str, object], what: str) -> str:
    value = body["name"]
    if not isinstance(value, str):
        raise RemoteProtocolError(f"{what} must name its terminal")
    return value


_SUCCESSION_FIELDS = {"v", "name", "old", "n", "at", "card"}
_REVOCATION_FIELDS = {"v", "name", "key", "at", "reason"}


def signer_of(data: bytes) -> bytes:
    """The key a succession says it comes from (``old``) or a revocation revokes (``key``), unverified:
    which of the keys we know to check it with. Nothing may be trusted on this alone."""
    body_bytes, _ = split_signed(data, MAX_STATEMENT_BYTES, "key statement")
    body = unpack(body_bytes, max_bytes=MAX_STATEMENT_BYTES)
    if not isinstance(body, dict):
        raise RemoteProtocolError("key statement body is not a map")
    field = "old" if "old" in body else "key"
    if field not in body:
        raise RemoteProtocolError("key statement names no key")
    return _key(body, field, "key statement")


def open_succession(data: bytes, signer_key: bytes) -> Succession:
    """Verify ``data`` against ``signer_key`` (the key the peer holds for its maker), then parse."""
    what = "key succession"
    body, body_bytes, sig = _body(data, what, _SUCCESSION_FIELDS)
    try:
        verify(signer_key, SUCCESSION_CONTEXT, body_bytes, sig)
    except SignatureError:
        raise SignatureError(
            f"key succession does not verify against key {fingerprint(signer_key)}: not signed by the pinned key"
        ) from None
    old = _key(body, "old", what)
    if old != signer_key:
        raise RemoteProtocolError(f"key succession names key {fingerprint(old)} as the old key, not its signer")
    card_json = body["card"]
    if not isinstance(card_json, str):
        raise RemoteProtocolError("key succession field 'card' must be a card's JSON text")
    try:
        card = ContactCard.from_json(card_json)  # the new key signs its card: it is held
    except CardError as e:
        raise RemoteProtocolError(f"key succession carries a bad card: {e}") from None
    name = _name(body, what)
    if card.name != name:
        raise RemoteProtocolError(f"key succession for {name!r} carries the card of {card.name!r}")
    if card.identity_key == old:
        raise RemoteProtocolError("key succession hands the key to itself")
    n = _int(body, "n", what)
    if n < 1:
        raise RemoteProtocolError("key succession number must be at least 1")
    return Succession(name=name, old_key=old, n=n, at_ns=_int(body, "at", what), card=card, raw=data)


def open_revocation(data: bytes, revoked_key: bytes) -> Revocation:
    """Verify a revocation of ``revoked_key`` (signed by that same key), then parse."""
    what = "key revocation"
    body, body_bytes, sig = _body(data, what, _REVOCATION_FIELDS)
    try:
        verify(revoked_key, REVOCATION_CONTEXT, body_bytes, sig)
    except SignatureError:
        raise SignatureError(f"key revocation does not verify against key {fingerprint(revoked_key)}") from None
    if _key(body, "key", what) != revoked_key:
        raise RemoteProtocolError("key revocation revokes a key other than its signer")
    reason = body["reason"]
    if not isinstance(reason, str) or len(reason) > MAX_REASON_CHARS:
        raise RemoteProtocolError(f"key revocation reason must be text of at most {MAX_REASON_CHARS} characters")
    return Revocation(name=_name(body, what), key=revoked_key, at_ns=_int(body, "at", what), reason=reason, raw=data)


def judge_succession(
    data: bytes, *, pinned: bytes, retired: dict[bytes, bytes], revoked: set[bytes]
) -> Succession | None:
    """What a succession arriving from a peer means, given the key pinned for it now, the keys it
    held before (``retired``: old key -> the key it passed to) and its revoked keys.

    Returns the succession to apply (signed by the pinned key), or None if it is one already applied
    (a peer re-sends its chain on every link). Raises ``SignatureError`` or ``RemoteProtocolError``
    for anything else: a statement by a revoked key (even one handing the name on), by a key never
    pinned, one that forks the chain, or one that hands the name to a key already retired or revoked
    (a downgrade)."""
    signer = signer_of(data)
    if signer in revoked:
        raise SignatureError(f"key succession signed by revoked key {fingerprint(signer)}: refused")
    if signer in retired:
        applied = open_succession(data, signer)
        if applied.new_key != retired[signer]:
            raise KeyConflict(
                f"key succession from retired key {fingerprint(signer)} to {fingerprint(applied.new_key)} "
                f"conflicts with the one accepted before (to {fingerprint(retired[signer])}): refused"
            )
        return None
    if signer != pinned:
        raise SignatureError(f"key succession signed by key {fingerprint(signer)}, which is not the pinned key")
    succession = open_succession(data, pinned)
    if succession.new_key in revoked or succession.new_key in retired:
        raise RemoteProtocolError(
            f"key succession hands the name back to an earlier key {fingerprint(succession.new_key)}: refused"
        )
    return succession
