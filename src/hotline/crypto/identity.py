"""Who a terminal is: its keys, its signed contact card, and safety numbers.

A terminal holds an Ed25519 *identity key* (signs every envelope, receipt and its
card, and is the key of its self-signed TLS certificate), an X25519 key (the
long-term input to the X3DH-style agreement at pairing) and a random ``state_key``
that other modules use to encrypt state at rest.

Two terminals pair by swapping signed contact cards out of band and reading the
safety number to each other (Signal's numeric fingerprint, 60 digits). Everything
here is pure: no file is read or written. Key material leaves an :class:`Identity`
only through :meth:`Identity.secret_fields` (and comes back through
:meth:`Identity.from_secret_fields`); ``hotline.home.keyfile`` seals it into the
home folder's key file.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
import json
import re
import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from cryptography.x509.oid import NameOID

from hotline.core import strictjson
from hotline.core.errors import CardError, DeliveryError, IdentityError, SignatureError
from hotline.core.model import Address, validate_name

CARD_VERSION = 1
MAX_CARD_BYTES = 64 * 1024
MAX_CARD_ADDRESSES = 16
CARD_CONTEXT = b"hotline-card-v1\x00"

RandBytes = Callable[[int], bytes]

_NOT_BEFORE = dt.datetime(2000, 1, 1, tzinfo=dt.UTC)
_NOT_AFTER = dt.datetime(9999, 12, 31, 23, 59, 59, tzinfo=dt.UTC)
_SECRET_FIELDS = ("name", "ed25519", "x25519", "state_key", "cert_der")
_CARD_FIELDS = (
    "name",
    "identity_key",
    "dh_key",
    "cert_der",
    "addresses",
    "created_at",
    "signature",
)
_RFC3339_UTC = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?Z$")


def b64(data: bytes) -> str:
    """Standard base64 as ASCII text (cards and key files)."""
    return base64.b64encode(data).decode("ascii")


def unb64(text: str) -> bytes:
    """The inverse of :func:`b64`; ``binascii.Error`` on anything but strict base64."""
    return base64.b64decode(text, validate=True)


def _raw_public(key: Ed25519PrivateKey | X25519PrivateKey) -> bytes:
    return key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def _check_name(name: str, error: type[IdentityError]) -> None:
    try:
        validate_name(name, "terminal name")
    except DeliveryError as e:
        raise error(f"{e}") from None


def canonical_json(obj: Any) -> bytes:
    """One byte string per value: sorted keys, no spaces, ASCII only."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()


# -- signatures and key ids ---------------------------------------------------------------


def verify(public_key: bytes, context: bytes, data: bytes, signature: bytes) -> None:
    """Check an Ed25519 signature over ``context + data``; raise ``SignatureError`` if not."""
    if len(public_key) != 32 or len(signature) != 64:
        raise SignatureError(f"bad key or signature length: {len(public_key)}, {len(signature)}")
    try:
        Ed25519PublicKey.from_public_bytes(public_key).verify(signature, context + data)
    except (InvalidSignature, ValueError):
        raise SignatureError(f"signature does not verify (key {fingerprint(public_key)})") from None


def fingerprint(public_key: bytes) -> str:
    """A short key id for logs and listings: ``"ab12 cd34 ef56 7890"`` (64 bits of SHA-256)."""
    digest = hashlib.sha256(public_key).hexdigest()[:16]
    return " ".join(digest[i : i + 4] for i in range(0, 16, 4))


def cert_public_key(cert_der: bytes) -> bytes:
    """The raw Ed25519 public key of a DER certificate; ``IdentityError`` otherwise."""
    try:
        key = x509.load_der_x509_certificate(cert_der).public_key()
    except (ValueError, TypeError, UnsupportedAlgorithm) as e:
        raise IdentityError(f"malformed certificate: {e}") from None
    if not isinstance(key, Ed25519PublicKey):
        raise IdentityError(f"certificate key is {type(key).__name__}, not Ed25519")
    return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def _self_signed_cert(name: str, key: Ed25519PrivateKey, randbytes: RandBytes) -> bytes:
    """A self-signed certificate for TLS 1.3. The peer pins its key; validity spans
    2000-9999 so a wrong clock never breaks the line, and ``ca=True`` lets the peer
    load it as its own trust anchor (``load_verify_locations(cadata=...)``)."""
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    # Positive and below 2**159, so it fits the 20 octets of RFC 5280 4.1.2.2.
    serial = (int.from_bytes(randbytes(20), "big") >> 1) or 1
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(serial)
        .not_valid_before(_NOT_BEFORE)
        .not_valid_after(_NOT_AFTER)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, algorithm=None)
    )
    return cert.public_bytes(serialization.Encoding.DER)


# -- the private side -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Identity:
    """The private side of a terminal. Secrets are kept out of ``repr``."""

    name: str
    signing_key: Ed25519PrivateKey = field(repr=False)
    dh_key: X25519PrivateKey = field(repr=False)
    state_key: bytes = field(repr=False)
    cert_der: bytes = field(repr=False)

    def __post_init__(self) -> None:
        _check_name(self.name, IdentityError)
        if len(self.state_key) != 32:
            raise IdentityError(f"state key must be 32 bytes, got {len(self.state_key)}")
        if cert_public_key(self.cert_der) != self.public_key:
            raise IdentityError("the TLS certificate does not carry this terminal's identity key")

    @classmethod
    def generate(cls, name: str, *, randbytes: RandBytes = secrets.token_bytes) -> Identity:
        """Fresh keys for terminal ``name``; pass ``randbytes`` for deterministic tests."""
        _check_name(name, IdentityError)
        signing_key = Ed25519PrivateKey.from_private_bytes(randbytes(32))
        return cls(
            name=name,
            signing_key=signing_key,
            dh_key=X25519PrivateKey.from_private_bytes(randbytes(32)),
            state_key=randbytes(32),
            cert_der=_self_signed_cert(name, signing_key, randbytes),
        )

    @property
    def public_key(self) -> bytes:
        """The 32-byte Ed25519 identity key."""
        return _raw_public(self.signing_key)

    @property
    def dh_public(self) -> bytes:
        """The 32-byte X25519 public key."""
        return _raw_public(self.dh_key)

    def sign(self, context: bytes, data: bytes) -> bytes:
        """Ed25519 over ``context + data``; a distinct context per kind of object keeps
        a signature on one kind from ever being valid as another."""
        return self.signing_key.sign(context + data)

    def tls_key_pem(self, password: bytes) -> bytes:
        """The signing key as encrypted PKCS#8 PEM, for ``SSLContext.load_cert_chain``."""
        if not password:
            raise IdentityError("the TLS key needs a non-empty password")
        return self.signing_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(password),
        )

    def cert_pem(self) -> bytes:
        """The self-signed certificate as PEM."""
        cert = x509.load_der_x509_certificate(self.cert_der)
        return cert.public_bytes(serialization.Encoding.PEM)

    def secret_fields(self) -> dict[str, bytes | str]:
        """Every secret of this identity, by field name: the one way key material
        leaves the object (``hotline.home.keyfile`` seals it at rest). Handle the
        result as the keys themselves."""
        return {
            "name": self.name,
            "ed25519": self.signing_key.private_bytes_raw(),
            "x25519": self.dh_key.private_bytes_raw(),
            "state_key": self.state_key,
            "cert_der": self.cert_der,
        }

    @classmethod
    def from_secret_fields(cls, fields: Any) -> Identity:
        """Rebuild from :meth:`secret_fields` output, the one way key material comes
        back in; ``IdentityError`` if anything is off."""
        if not isinstance(fields, dict) or set(fields) != set(_SECRET_FIELDS):
            raise IdentityError("the key record does not hold the expected fields")
        name, ed, x, state, cert = (fields[k] for k in _SECRET_FIELDS)
        if not isinstance(name, str) or not all(isinstance(v, bytes) for v in (ed, x, state, cert)):
            raise IdentityError("the key record has a field of the wrong type")
        try:
            signing_key = Ed25519PrivateKey.from_private_bytes(ed)
            dh_key = X25519PrivateKey.from_private_bytes(x)
        except ValueError as e:
            raise IdentityError(f"invalid private key: {e}") from None
        return cls(name, signing_key, dh_key, state, cert)


# -- safety numbers (Signal's NumericFingerprintGenerator) ----------------------------------


def _side_fingerprint(key: bytes, stable_id: bytes, iterations: int) -> bytes:
    # libsignal rust/protocol/src/fingerprint.rs get_fingerprint: start from
    # version(0x0000) || key || id, then `iterations` times hash = SHA-512(hash || key).
    digest = b"\x00\x00" + key + stable_id
    for _ in range(iterations):
        digest = hashlib.sha512(digest + key).digest()
    return digest


def _digits(fprint: bytes) -> str:
    # Six 5-byte big-endian chunks, each mod 100000 as five digits (get_encoded_string).
    return "".join(f"{int.from_bytes(fprint[i : i + 5], 'big') % 100_000:05d}" for i in range(0, 30, 5))


def safety_number(
    local_key: bytes, local_id: bytes, remote_key: bytes, remote_id: bytes, iterations: int = 5200
) -> str:
    """The 60-digit safety number, in 12 groups of 5, identical on both sides.

    Signal's displayable fingerprint: each side's 30 digits, the smaller first.
    In Hotline the keys are the Ed25519 identity keys and the ids the UTF-8 names.
    """
    if not 1 < iterations <= 1_000_000:
        raise IdentityError(f"invalid safety number iterations {iterations}")
    local = _digits(_side_fingerprint(local_key, local_id, iterations))
    remote = _digits(_side_fingerprint(remote_key, remote_id, iterations))
    digits = local + remote if local < remote else remote + local
    return " ".join(digits[i : i + 5] for i in range(0, 60, 5))


# -- contact cards ----------------------------------------------------------------------------


def _check_created_at(text: str) -> None:
    try:
        if not _RFC3339_UTC.match(text):
            raise ValueError
        dt.datetime.strptime(text[:19], "%Y-%m-%dT%H:%M:%S")
    except ValueError:
        raise CardError(f"invalid created_at {text!r}: use UTC like 2026-11-24T18:00:00Z") from None


@dataclass(frozen=True, slots=True)
class ContactCard:
    """A terminal's public side, signed by its identity key, swapped at pairing."""

    name: str
    identity_key: bytes
    dh_key: bytes
    cert_der: bytes = field(repr=False)
    addresses: tuple[Address, ...]
    created_at: str
    signature: bytes = field(repr=False)

    def __post_init__(self) -> None:
        _check_name(self.name, CardError)
        for what, value in (("identity_key", self.identity_key), ("dh_key", self.dh_key)):
            if len(value) != 32:
                raise CardError(f"card field {what!r} must be 32 bytes, got {len(value)}")
        if len(self.signature) != 64:
            raise CardError(f"card signature must be 64 bytes, got {len(self.signature)}")
        if not 1 <= len(self.addresses) <= MAX_CARD_ADDRESSES:
            n = len(self.addresses)
            raise CardError(f"card must list 1 to {MAX_CARD_ADDRESSES} addresses, not {n}")
        paths = [a.path for a in self.addresses]
        if len(set(paths)) != len(paths):
            raise CardError(f"card lists a path name twice: {', '.join(paths)}")
        _check_created_at(self.created_at)
        try:
            cert_key = cert_public_key(self.cert_der)
        except IdentityError as e:
            raise CardError(f"card certificate is unusable: {e}") from None
        if cert_key != self.identity_key:
            raise CardError(
                "card certificate carries a different key than identity_key: the card was altered or assembled wrongly"
            )

    def _body(self) -> dict[str, Any]:
        return {
            "hotline_card": CARD_VERSION,
            "name": self.name,
            "identity_key": b64(self.identity_key),
            "dh_key": b64(self.dh_key),
            "cert_der": b64(self.cert_der),
            "addresses": [{"path": a.path, "host": a.host, "port": a.port} for a in self.addresses],
            "created_at": self.created_at,
        }

    def signed_bytes(self) -> bytes:
        """The canonical bytes the signature covers: every field but the signature."""
        return canonical_json(self._body())

    def verify(self) -> None:
        """Raise ``CardError`` unless the identity key signed this card."""
        try:
            verify(self.identity_key, CARD_CONTEXT, self.signed_bytes(), self.signature)
        except SignatureError:
            raise CardError("card signature does not verify: the file was altered or is not a Hotline card") from None

    @property
    def fingerprint(self) -> str:
        """Short id of the identity key."""
        return fingerprint(self.identity_key)

    def to_json(self) -> str:
        """Pretty JSON with bytes as base64; the same card always gives the same text."""
        body = self._body()
        body["signature"] = b64(self.signature)
        return json.dumps(body, indent=2, ensure_ascii=True) + "\n"

    @classmethod
    def from_json(cls, text: str | bytes) -> ContactCard:
        """Parse, validate and verify a card; ``CardError`` with a reason otherwise."""
        data = text.encode("utf-8", "surrogatepass") if isinstance(text, str) else bytes(text)
        if len(data) > MAX_CARD_BYTES:
            raise CardError("card is larger than 64 KiB: this is not a Hotline card")
        try:  # a repeated field or NaN is refused here; a stray number, by the field checks below
            obj = json.loads(
                data.decode(), object_pairs_hook=strictjson.unique_keys, parse_constant=strictjson.no_constants
            )
        except UnicodeDecodeError:
            raise CardError("card is not UTF-8 text: this is not a Hotline card") from None
        except strictjson.DuplicateKey:
            raise CardError("card repeats a field name: this is not a well-formed Hotline card") from None
        except strictjson.NotANumber as e:
            raise CardError(f"card holds the non-JSON value {e.name}") from None
        except json.JSONDecodeError as e:
            raise CardError(
                f"card is not valid JSON (line {e.lineno}, column {e.colno}: {e.msg}); "
                "the file may be truncated or not a Hotline card"
            ) from None
        if not isinstance(obj, dict):
            raise CardError("card is not a JSON object: this is not a Hotline card")
        if "hotline_card" not in obj:
            raise CardError("missing field 'hotline_card': this is not a Hotline card")
        version = obj.pop("hotline_card")
        if type(version) is not int or version != CARD_VERSION:
            raise CardError(
                f"unsupported card version {version!r}: this Hotline reads version "
                f"{CARD_VERSION}; the card was made by a different Hotline release"
            )
        for key in _CARD_FIELDS:
            if key not in obj:
                raise CardError(f"missing field {key!r}")
        unknown = sorted(set(obj) - set(_CARD_FIELDS))
        if unknown:
            raise CardError(f"unknown field {unknown[0]!r} in card")
        card = cls(
            name=_field_str(obj, "name"),
            identity_key=_field_bytes(obj, "identity_key"),
            dh_key=_field_bytes(obj, "dh_key"),
            cert_der=_field_bytes(obj, "cert_der"),
            addresses=_field_addresses(obj["addresses"]),
            created_at=_field_str(obj, "created_at"),
            signature=_field_bytes(obj, "signature"),
        )
        card.verify()
        return card


def _field_str(obj: dict[str, Any], key: str) -> str:
    value = obj[key]
    if not isinstance(value, str):
        raise CardError(f"card field {key!r} must be a string, got {type(value).__name__}")
    return value


def _field_bytes(obj: dict[str, Any], key: str) -> bytes:
    try:
        return unb64(_field_str(obj, key))
    except (binascii.Error, ValueError):
        raise CardError(f"card field {key!r} is not valid base64") from None


def _field_addresses(value: Any) -> tuple[Address, ...]:
    if not isinstance(value, list):
        raise CardError(f"card field 'addresses' must be a list, got {type(value).__name__}")
    result = []
    for i, item in enumerate(value, 1):
        if not isinstance(item, dict) or set(item) != {"path", "host", "port"}:
            raise CardError(f"card address {i} must be an object with exactly path, host and port")
        path, host, port = item["path"], item["host"], item["port"]
        if not isinstance(path, str) or not isinstance(host, str) or type(port) is not int:
            raise CardError(f"card address {i}: path and host must be strings and port an integer")
        try:
            result.append(Address(path=path, host=host, port=port))
        except DeliveryError as e:
            raise CardError(f"card address {i}: {e}") from None
    return tuple(result)


def make_card(identity: Identity, addresses: Sequence[Address], created_at: str) -> ContactCard:
    """Sign a contact card for ``identity`` reachable at ``addresses`` (preference order)."""
    unsigned = ContactCard(
        name=identity.name,
        identity_key=identity.public_key,
        dh_key=identity.dh_public,
        cert_der=identity.cert_der,
        addresses=tuple(addresses),
        created_at=created_at,
        signature=bytes(64),  # placeholder: the signature covers every other field
    )
    return replace(unsigned, signature=identity.sign(CARD_CONTEXT, unsigned.signed_bytes()))
