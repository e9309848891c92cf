"""The key file at rest: ``HOME/keys.json``, and the atomic write every home file uses.

The file holds an :class:`~hotline.crypto.identity.Identity`'s secrets (taken out
with ``Identity.secret_fields``) either sealed under a passphrase (scrypt, then
AES-256-GCM with the header bound into the associated data) or, for demos and
tests, in the clear. This module is the edge where they touch the disk; the keys
themselves, cards and safety numbers are ``hotline.crypto.identity``'s.

The format (``"format": "hotline-keys"``, version 1)::

    {"format", "version", "protection": "none", "keys": {name, ed25519, x25519, state_key, cert_der}}
    {"format", "version", "protection": "scrypt+aes-256-gcm",
     "kdf": {"n", "r", "p", "salt"}, "nonce", "ciphertext"}   # ciphertext of the msgpack'd fields

Bytes are standard base64. Changing any of this stops existing homes from opening.
"""

from __future__ import annotations

import binascii
import json
import os
import unicodedata
from pathlib import Path
from typing import Any

import msgpack
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

from hotline.core.errors import ConfigError, IdentityError, PassphraseError
from hotline.crypto.identity import Identity, b64, canonical_json, unb64

KEYS_FORMAT = "hotline-keys"
KEYS_VERSION = 1
MAX_KEYS_FILE_BYTES = 1024 * 1024
# scrypt at n=2**15, r=8 costs 32 MiB and ~100 ms: the cost an offline guesser pays per try.
SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**15, 8, 1


def _scrypt_key(passphrase: str, salt: bytes, n: int, r: int, p: int) -> bytes:
    # NFC so the same passphrase typed on differently configured keyboards unlocks the file.
    secret = unicodedata.normalize("NFC", passphrase).encode("utf-8")
    return Scrypt(salt=salt, length=32, n=n, r=r, p=p).derive(secret)


def _keys_aad(header: dict[str, Any]) -> bytes:
    # The header (format, version, protection, kdf parameters and salt) is bound into
    # the AEAD so none of it can be swapped without failing authentication.
    return canonical_json({k: header[k] for k in ("format", "version", "protection", "kdf")})


def save_keys(path: Path, identity: Identity, passphrase: str | None) -> None:
    """Write ``identity`` to ``path`` atomically, mode 0600, sealed under ``passphrase``.

    ``None`` stores the keys in the clear (demos and tests only; the CLI warns).
    """
    path = Path(path)
    doc: dict[str, Any] = {"format": KEYS_FORMAT, "version": KEYS_VERSION}
    if passphrase is None:
        doc["protection"] = "none"
        doc["keys"] = {k: b64(v) if isinstance(v, bytes) else v for k, v in identity.secret_fields().items()}
    else:
        if not passphrase:
            raise PassphraseError("an empty passphrase is not allowed; use --no-passphrase for a demo terminal")
        salt = os.urandom(16)
        doc["protection"] = "scrypt+aes-256-gcm"
        doc["kdf"] = {"n": SCRYPT_N, "r": SCRYPT_R, "p": SCRYPT_P, "salt": b64(salt)}
        nonce = os.urandom(12)
        key = _scrypt_key(passphrase, salt, SCRYPT_N, SCRYPT_R, SCRYPT_P)
        plaintext = msgpack.packb(identity.secret_fields(), use_bin_type=True)
        doc["nonce"] = b64(nonce)
        doc["ciphertext"] = b64(AESGCM(key).encrypt(nonce, plaintext, _keys_aad(doc)))
    write_atomic(path, (json.dumps(doc, indent=2) + "\n").encode())


def write_atomic(path: Path, data: bytes, mode: int = 0o600) -> None:
    """Write a file atomically and durably: temp file, fsync, rename, fsync the folder."""
    tmp = path.with_name(f".{path.name}.{os.urandom(6).hex()}.tmp")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            os.fchmod(fd, mode)  # exactly this mode whatever the umask
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)  # make the rename itself durable
        finally:
            os.close(dir_fd)
    except OSError as e:
        tmp.unlink(missing_ok=True)
        raise ConfigError(f"cannot write {path}: {e.strerror or e}") from None


def load_keys(path: Path, passphrase: str | None) -> Identity:
    """Read the identity from ``path``; ``PassphraseError`` if it cannot be unlocked,
    ``ConfigError`` if the file is missing, damaged or not a Hotline keys file."""
    path = Path(path)
    try:
        with path.open("rb") as f:
            raw = f.read(MAX_KEYS_FILE_BYTES + 1)
    except FileNotFoundError:
        raise ConfigError(f"keys file {path} does not exist; run `hotline init` first") from None
    except OSError as e:
        raise ConfigError(f"cannot read keys file {path}: {e.strerror or e}") from None
    damaged = f"keys file {path} is damaged or not a Hotline keys file"
    if len(raw) > MAX_KEYS_FILE_BYTES:
        raise ConfigError(f"{damaged}: larger than 1 MiB")
    try:
        doc = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ConfigError(f"{damaged}: {e}") from None
    if not isinstance(doc, dict) or doc.get("format") != KEYS_FORMAT:
        raise ConfigError(damaged)
    if doc.get("version") != KEYS_VERSION:
        version = doc.get("version")
        raise ConfigError(f"keys file {path} has version {version!r}; Hotline reads {KEYS_VERSION}")
    try:
        if doc.get("protection") == "none":
            secrets = {k: v if k == "name" else unb64(v) for k, v in doc["keys"].items()}
        elif doc.get("protection") == "scrypt+aes-256-gcm":
            if passphrase is None:
                raise PassphraseError(
                    f"keys file {path} is passphrase-protected: set HOTLINE_PASSPHRASE or run from a terminal"
                )
            secrets = _unseal(doc, passphrase, path)
        else:
            raise ConfigError(f"{damaged}: unknown protection {doc.get('protection')!r}")
        return Identity.from_secret_fields(secrets)
    except KeyError as e:
        raise ConfigError(f"{damaged}: missing field {e}") from None
    except (TypeError, AttributeError, binascii.Error, ValueError, IdentityError) as e:
        raise ConfigError(f"{damaged}: {e}") from None


def _unseal(doc: dict[str, Any], passphrase: str, path: Path) -> Any:
    kdf = doc["kdf"]
    n, r, p = kdf["n"], kdf["r"], kdf["p"]
    # Bounded so a doctored file cannot make us allocate gigabytes or spin for minutes.
    if not all(type(v) is int for v in (n, r, p)) or not (
        n >= 2 and n & (n - 1) == 0 and r >= 1 and 128 * n * r <= 2**28 and 1 <= p <= 4
    ):
        raise ValueError("scrypt parameters out of range")
    salt, nonce, ciphertext = unb64(kdf["salt"]), unb64(doc["nonce"]), unb64(doc["ciphertext"])
    key = _scrypt_key(passphrase, salt, n, r, p)
    try:
        plaintext = AESGCM(key).decrypt(nonce, ciphertext, _keys_aad(doc))
    except InvalidTag:
        raise PassphraseError(f"wrong passphrase for keys file {path}") from None
    try:
        return msgpack.unpackb(plaintext, raw=False, strict_map_key=True)
    except (ValueError, msgpack.exceptions.UnpackException) as e:
        raise ValueError(f"sealed key record is malformed: {e}") from None
