"""The Double Ratchet: forward-secret, self-healing keys for each message.

This is Signal's Double Ratchet (https://signal.org/docs/specifications/doubleratchet/,
"the spec" below) with libsignal's key derivations, on ``cryptography`` primitives.
It is pure: no I/O, no clock; the only randomness is the ``keygen`` callable, which
defaults to ``X25519PrivateKey.generate`` and is injected by tests.

State (spec §3.2): our ratchet key pair DHs, the peer's ratchet public key DHr, the
root key RK, the sending and receiving chain keys CKs/CKr, the counters Ns, Nr, PN,
and the message keys skipped over on the receiving side (§3.5).

Initialization differs from the spec's §3.3, because on a hotline either side may
send first. Both sides know each other's long-term X25519 key from the contact
card; the side with the smaller identity key is the initiator (Alice):

* initiator: DHs = her card key, DHr = Bob's card key, RK, CKs = KDF_RK(SK, DH(DHs,
  DHr)). She can send at once, with her card key in the header.
* responder: Bob acts as if he had already received a message from Alice carrying
  her card key: DHr = Alice's card key, RK, CKr = KDF_RK(SK, DH(his card key, DHr)),
  then a fresh DHs and RK, CKs = KDF_RK(RK, DH(DHs, DHr)). He can send at once too.

Security notes. Alice's first sending chain is keyed by a static-static DH (and SK,
itself derived from the same static keys), so the messages she sends before any
reply have no forward secrecy against a compromise of *both* long-term keys; the
first reply she receives ratchets that chain away. Headers are not encrypted (no
§4 header encryption): the ratchet public keys and counters are visible. The AEAD
nonce is derived from the message key, so the caller must make each new state
durable before the ciphertext leaves and must never encrypt from a restored older
state: that would reuse a (key, nonce) pair under AES-GCM.
"""

from __future__ import annotations

import hmac
import struct
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

import msgpack
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from hotline.core.errors import CryptoError, DecryptError

MAX_SKIP: int = 1000  # max message keys skipped in one chain (spec §3.5 MAX_SKIP)
MAX_STORED_SKIPPED: int = 2000  # cap on total stored skipped keys; oldest evicted

KEY_BYTES = 32
HEADER_BYTES = 40
STATE_VERSION = 1
_U32_LIMIT = 1 << 32
_HEADER_COUNTERS = struct.Struct(">II")

Keygen = Callable[[], X25519PrivateKey]


# -- KDFs (spec §3.1 / §5.2), byte-for-byte libsignal's -------------------------


def _hkdf(salt: bytes | None, ikm: bytes, info: bytes, length: int) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=length, salt=salt, info=info).derive(ikm)


def kdf_rk(rk: bytes, dh_out: bytes) -> tuple[bytes, bytes]:
    """KDF_RK (spec §3.1): return ``(new_root_key, chain_key)``; libsignal's RootKey."""
    out = _hkdf(rk, dh_out, b"WhisperRatchet", 64)
    return out[:32], out[32:]


def kdf_ck(ck: bytes) -> tuple[bytes, bytes]:
    """KDF_CK (spec §3.1, §5.2): return ``(next_chain_key, message_key_seed)``."""
    return hmac.digest(ck, b"\x02", "sha256"), hmac.digest(ck, b"\x01", "sha256")


def message_keys(seed: bytes) -> tuple[bytes, bytes, bytes]:
    """Expand a message key seed into ``(cipher_key, mac_key, iv)`` (spec §5.2)."""
    out = _hkdf(None, seed, b"WhisperMessageKeys", 80)
    return out[:32], out[32:64], out[64:80]


def _dh(private: X25519PrivateKey, public: bytes, error: type[CryptoError]) -> bytes:
    """X25519 (spec §3.1 DH); a malformed or low-order peer key becomes ``error``."""
    try:
        return private.exchange(X25519PublicKey.from_public_bytes(public))
    except ValueError:
        raise error("the peer's X25519 key is invalid (wrong length or low order)") from None


def _public(private: X25519PrivateKey) -> bytes:
    return private.public_key().public_bytes_raw()


def _check_len(value: object, length: int, what: str) -> bytes:
    if not isinstance(value, bytes) or len(value) != length:
        raise CryptoError(f"{what} must be {length} bytes")
    return value


def is_initiator(own_identity: bytes, peer_identity: bytes) -> bool:
    """True if we play Alice: the side whose identity key sorts first."""
    if own_identity == peer_identity:
        raise CryptoError("a ratchet needs two different identity keys; this one is our own")
    return own_identity < peer_identity


def initial_secret(own_identity: bytes, own_dh: X25519PrivateKey, peer_identity: bytes, peer_dh_public: bytes) -> bytes:
    """The shared secret SK (spec §3.3) from the long-term keys exchanged at pairing.

    One static-static X25519, bound to both Ed25519 identity keys (in a fixed order
    so both sides agree), like X3DH's associated data. Both sides get the same bytes.
    """
    _check_len(own_identity, KEY_BYTES, "own identity key")
    _check_len(peer_identity, KEY_BYTES, "peer identity key")
    shared = _dh(own_dh, _check_len(peer_dh_public, KEY_BYTES, "peer X25519 key"), CryptoError)
    low, high = sorted((own_identity, peer_identity))
    return _hkdf(None, shared, b"HotlineX3DH" + low + high, 32)


# -- Header (spec §3.4 HEADER) -----------------------------------------------------


@dataclass(frozen=True, slots=True)
class Header:
    """A message header: sender's ratchet key, previous chain length, message number."""

    dh: bytes
    pn: int
    n: int

    def __post_init__(self) -> None:
        if not isinstance(self.dh, bytes) or len(self.dh) != KEY_BYTES:
            raise DecryptError("ratchet header key must be 32 bytes")
        for name, value in (("pn", self.pn), ("n", self.n)):
            if not isinstance(value, int) or not 0 <= value < _U32_LIMIT:
                raise DecryptError(f"ratchet header {name} must be a u32, got {value!r}")

    def to_bytes(self) -> bytes:
        """Fixed 40 bytes: ``dh || pn u32 BE || n u32 BE``."""
        return self.dh + _HEADER_COUNTERS.pack(self.pn, self.n)

    @classmethod
    def from_bytes(cls, data: bytes) -> Header:
        """Parse exactly 40 bytes; anything else is a ``DecryptError``."""
        if not isinstance(data, bytes) or len(data) != HEADER_BYTES:
            raise DecryptError(f"ratchet header must be {HEADER_BYTES} bytes")
        pn, n = _HEADER_COUNTERS.unpack(data[KEY_BYTES:])
        return cls(dh=data[:KEY_BYTES], pn=pn, n=n)


# -- State and its pure transitions ------------------------------------------------


@dataclass(frozen=True, slots=True)
class _State:
    """The spec's §3.2 state variables. Never mutated: every step makes a new one."""

    dhs: X25519PrivateKey = field(repr=False)
    dhs_public: bytes
    dhr: bytes
    rk: bytes = field(repr=False)
    cks: bytes = field(repr=False)
    ckr: bytes | None = field(repr=False)
    ns: int
    nr: int
    pn: int
    # (DHr, N) -> message key seed, oldest first (spec §3.5 MKSKIPPED).
    skipped: dict[tuple[bytes, int], bytes] = field(repr=False)


def _skip_message_keys(state: _State, until: int) -> _State:
    """SkipMessageKeys (spec §3.5): store the receiving chain's keys up to ``until``."""
    if state.nr + MAX_SKIP < until:
        raise DecryptError(f"would skip {until - state.nr} keys, limit is {MAX_SKIP}")
    if state.ckr is None or state.nr >= until:
        return state
    skipped = dict(state.skipped)
    ckr, nr = state.ckr, state.nr
    while nr < until:
        ckr, mk = kdf_ck(ckr)
        skipped[(state.dhr, nr)] = mk
        nr += 1
    while len(skipped) > MAX_STORED_SKIPPED:  # evict the oldest (insertion order)
        del skipped[next(iter(skipped))]
    return replace(state, ckr=ckr, nr=nr, skipped=skipped)


def _receive(state: _State, header: Header) -> tuple[_State, bytes, bool]:
    """RatchetDecrypt's key schedule (spec §3.4, §3.5) without the AEAD or the keygen.

    Returns the new state, the message key seed, and whether the sending half of
    DHRatchet is still owed (done by the caller only once the AEAD has succeeded).
    """
    # TrySkippedMessageKeys (§3.5)
    if (header.dh, header.n) in state.skipped:
        skipped = dict(state.skipped)
        mk = skipped.pop((header.dh, header.n))
        return replace(state, skipped=skipped), mk, False
    ratcheted = header.dh != state.dhr
    if ratcheted:
        state = _skip_message_keys(state, header.pn)
        # DHRatchet, receiving half (§3.4)
        rk, ckr = kdf_rk(state.rk, _dh(state.dhs, header.dh, DecryptError))
        state = replace(state, pn=state.ns, ns=0, nr=0, dhr=header.dh, rk=rk, ckr=ckr)
    elif header.n < state.nr:
        raise DecryptError(
            f"message key not found: message {header.n} of this chain was already "
            "decrypted or its key was evicted (a replay?)"
        )
    state = _skip_message_keys(state, header.n)
    if state.ckr is None:
        raise DecryptError("message key not found: no receiving chain for that ratchet key")
    ckr, mk = kdf_ck(state.ckr)
    return replace(state, ckr=ckr, nr=state.nr + 1), mk, ratcheted


def _seal(mk: bytes, header: Header, plaintext: bytes, ad: bytes) -> bytes:
    # ENCRYPT (spec §5.2, AEAD variant): AES-256-GCM keyed by the message key. The
    # header is appended to ad (§3.4 CONCAT); it has a fixed length, so the pair
    # (ad, header) parses uniquely.
    key, _mac_key, iv = message_keys(mk)
    return AESGCM(key).encrypt(iv[:12], plaintext, ad + header.to_bytes())


def _open(mk: bytes, header: Header, ciphertext: bytes, ad: bytes) -> bytes:
    key, _mac_key, iv = message_keys(mk)
    try:
        return AESGCM(key).decrypt(iv[:12], ciphertext, ad + header.to_bytes())
    except InvalidTag:
        raise DecryptError(
            "authentication failed: the message was altered, is not from this peer's "
            "session, or does not belong to this conversation"
        ) from None


def _first_chain(sk: bytes, own_dh: X25519PrivateKey, peer_public: bytes) -> tuple[bytes, bytes]:
    """KDF_RK(SK, DH(own card key, peer card key)): Alice's CKs and Bob's first CKr."""
    _check_len(sk, KEY_BYTES, "shared secret")
    _check_len(peer_public, KEY_BYTES, "peer X25519 key")
    return kdf_rk(sk, _dh(own_dh, peer_public, CryptoError))


# -- The public object -------------------------------------------------------------


class Ratchet:
    """One side of a Double Ratchet session. ``decrypt`` changes state only on success."""

    __slots__ = ("_keygen", "_state")

    def __init__(self, state: _State, keygen: Keygen) -> None:
        """Internal: use ``initiator``, ``responder`` or ``from_bytes``."""
        self._state = state
        self._keygen = keygen

    @classmethod
    def initiator(
        cls,
        sk: bytes,
        own_dh: X25519PrivateKey,
        peer_dh_public: bytes,
        *,
        keygen: Keygen = X25519PrivateKey.generate,
    ) -> Ratchet:
        """Alice: her first sending chain comes from the two card keys (see module doc)."""
        rk, cks = _first_chain(sk, own_dh, peer_dh_public)
        state = _State(own_dh, _public(own_dh), peer_dh_public, rk, cks, None, 0, 0, 0, {})
        return cls(state, keygen)

    @classmethod
    def responder(
        cls,
        sk: bytes,
        own_dh: X25519PrivateKey,
        peer_dh_public: bytes,
        *,
        keygen: Keygen = X25519PrivateKey.generate,
    ) -> Ratchet:
        """Bob: as if he had received Alice's card key in a header, then ratcheted."""
        rk, ckr = _first_chain(sk, own_dh, peer_dh_public)
        dhs = keygen()
        rk, cks = kdf_rk(rk, _dh(dhs, peer_dh_public, CryptoError))
        state = _State(dhs, _public(dhs), peer_dh_public, rk, cks, ckr, 0, 0, 0, {})
        return cls(state, keygen)

    def encrypt(self, plaintext: bytes, ad: bytes) -> tuple[Header, bytes]:
        """RatchetEncrypt (spec §3.4). Persist ``to_bytes()`` before sending the result."""
        s = self._state
        if s.ns >= _U32_LIMIT - 1:  # keeps n, and PN after the next ratchet, a u32
            raise CryptoError("this sending chain is exhausted (2**32 - 1 messages)")
        cks, mk = kdf_ck(s.cks)
        header = Header(dh=s.dhs_public, pn=s.pn, n=s.ns)
        ciphertext = _seal(mk, header, plaintext, ad)
        self._state = replace(s, cks=cks, ns=s.ns + 1)
        return header, ciphertext

    def decrypt(self, header: Header, ciphertext: bytes, ad: bytes) -> bytes:
        """RatchetDecrypt (spec §3.4, §3.5), transactional: on any error, no change."""
        state, mk, ratcheted = _receive(self._state, header)
        plaintext = _open(mk, header, ciphertext, ad)
        if ratcheted:
            # DHRatchet, sending half (§3.4): a fresh key pair, a new sending chain.
            dhs = self._keygen()
            rk, cks = kdf_rk(state.rk, _dh(dhs, state.dhr, DecryptError))
            state = replace(state, dhs=dhs, dhs_public=_public(dhs), rk=rk, cks=cks)
        self._state = state
        return plaintext

    def to_bytes(self) -> bytes:
        """The whole state, skipped keys included, as one msgpack map. Secret: protect it."""
        s = self._state
        skipped = [[dh, n, mk] for (dh, n), mk in s.skipped.items()]
        fields: dict[str, Any] = {"v": STATE_VERSION, "dhs": s.dhs.private_bytes_raw()}
        fields |= {"dhr": s.dhr, "rk": s.rk, "cks": s.cks, "ckr": s.ckr}
        fields |= {"ns": s.ns, "nr": s.nr, "pn": s.pn, "skipped": skipped}
        return bytes(msgpack.packb(fields, use_bin_type=True))

    @classmethod
    def from_bytes(cls, data: bytes, *, keygen: Keygen = X25519PrivateKey.generate) -> Ratchet:
        """Parse ``to_bytes()`` output strictly; anything malformed is a ``CryptoError``."""
        m = _unpack_state(data)
        skipped: dict[tuple[bytes, int], bytes] = {}
        for item in m["skipped"]:
            if not isinstance(item, list) or len(item) != 3:
                raise CryptoError("ratchet state: a skipped key must be [dh, n, mk]")
            dh = _check_len(item[0], KEY_BYTES, "ratchet state: skipped dh")
            n = _u32(item[1], "skipped n")
            if (dh, n) in skipped:
                raise CryptoError("ratchet state: duplicate skipped key")
            skipped[(dh, n)] = _check_len(item[2], KEY_BYTES, "ratchet state: skipped mk")

        def key(name: str) -> bytes:
            return _check_len(m[name], KEY_BYTES, f"ratchet state: {name}")

        dhs = X25519PrivateKey.from_private_bytes(key("dhs"))
        ckr = None if m["ckr"] is None else key("ckr")
        nr = _u32(m["nr"], "nr", inclusive=True)
        state = _State(dhs, _public(dhs), key("dhr"), key("rk"), key("cks"), ckr,
                       _u32(m["ns"], "ns"), nr, _u32(m["pn"], "pn"), skipped)  # fmt: skip
        return cls(state, keygen)


_STATE_KEYS = frozenset({"v", "dhs", "dhr", "rk", "cks", "ckr", "ns", "nr", "pn", "skipped"})


def _u32(value: object, what: str, *, inclusive: bool = False) -> int:
    # Nr may reach 2**32 (after a peer's message number 2**32 - 1); the rest may not.
    limit = _U32_LIMIT + 1 if inclusive else _U32_LIMIT
    if type(value) is not int or not 0 <= value < limit:
        raise CryptoError(f"ratchet state: {what} must be a u32")
    return value


def _unpack_state(data: bytes) -> dict[str, Any]:
    if not isinstance(data, bytes):
        raise CryptoError("ratchet state must be bytes")
    try:
        m = msgpack.unpackb(
            data,
            raw=False,
            strict_map_key=True,
            max_bin_len=KEY_BYTES,
            max_str_len=16,
            max_map_len=len(_STATE_KEYS),
            max_array_len=MAX_STORED_SKIPPED + 1,
        )
    except Exception as e:  # msgpack raises many types on garbage; all mean "malformed"
        raise CryptoError(f"ratchet state is not valid msgpack: {e}") from None
    # Exactly these keys, in a map of at most that many entries: no duplicates either.
    if not isinstance(m, dict) or set(m) != _STATE_KEYS:
        raise CryptoError("ratchet state is not a map with the expected fields")
    if m["v"] != STATE_VERSION or type(m["v"]) is not int:
        raise CryptoError(f"ratchet state version {m['v']!r} is not supported")
    if not isinstance(m["skipped"], list) or len(m["skipped"]) > MAX_STORED_SKIPPED:
        raise CryptoError(f"ratchet state: more than {MAX_STORED_SKIPPED} skipped keys")
    return m
