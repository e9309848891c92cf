"""Who may do what at a terminal: roles, permissions, principals, sessions, passwords and tokens.

The model only; where users, tokens and sessions are kept is the storage's
business (``hotline.storage.base.AccessStore``). Secrets are never stored:
passwords as scrypt hashes, tokens and session ids as SHA-256 digests (they
are 256-bit random values, so a fast hash is enough).
"""

from __future__ import annotations

import enum
import functools
import hashlib
import hmac
import secrets
from dataclasses import dataclass

from hotline.core.errors import AccessError, DeliveryError
from hotline.core.model import validate_label

# scrypt at n=2**15, r=8: ~32 MiB and ~70-150 ms a guess on these machines; OWASP's floor is n=2**17
# for new deployments with more memory to spare, n=2**15 keeps login and tests quick.
SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**15, 8, 1
MIN_PASSWORD = 10
MAX_PASSWORD = 1024
TOKEN_PREFIX = "hlt_"  # noqa: S105 -- a marker that names what a secret is, not a secret
MAX_TOKEN_CHARS = 200  # longer presented secrets are not looked up
MAX_SESSION_ID_CHARS = 100


class Role(enum.StrEnum):
    OPERATOR = "operator"  # send, read, acknowledge
    SUPERVISOR = "supervisor"  # also users, tokens and pairing
    AUDITOR = "auditor"  # read and verify the record; never send
    MONITOR = "monitor"  # a metrics scraper (a token, never a person): reads /metrics and nothing else

    @classmethod
    def parse(cls, text: str) -> Role:
        try:
            return cls(text.lower())
        except ValueError:
            raise AccessError(f"unknown role {text!r}; choose {', '.join(r.value for r in cls)}") from None

    @classmethod
    def parse_user(cls, text: str) -> Role:
        """A role for a person (a console user): any but ``monitor``, which is for programs' tokens."""
        role = cls.parse(text)
        if role not in USER_ROLES:
            raise AccessError(
                f"the {role} role is for a program's token (`hotline token create --role {role}`), not a person; "
                f"choose {', '.join(r.value for r in USER_ROLES)}"
            )
        return role


class Permission(enum.StrEnum):
    READ = "read"  # messages, peers, paths, alarms
    SEND = "send"  # send and acknowledge
    AUDIT = "audit"  # journal verify and export
    ADMINISTER = "administer"  # users, tokens
    METRICS = "metrics"  # /metrics: the line's health and counts, no message content


USER_ROLES = (Role.OPERATOR, Role.SUPERVISOR, Role.AUDITOR)

GRANTS: dict[Role, frozenset[Permission]] = {
    Role.OPERATOR: frozenset({Permission.READ, Permission.SEND}),
    Role.SUPERVISOR: frozenset(Permission),
    Role.AUDITOR: frozenset({Permission.READ, Permission.AUDIT}),
    Role.MONITOR: frozenset({Permission.METRICS}),
}


@dataclass(frozen=True)
class Principal:
    """Who is making a request: a user (console or password) or a token (a program)."""

    name: str
    role: Role
    lang: str = "en"
    via: str = "session"  # "session" or "token"

    def may(self, permission: Permission) -> bool:
        return permission in GRANTS[self.role]

    @property
    def label(self) -> str:
        """How the journal names this principal."""
        return self.name if self.via == "session" else f"token:{self.name}"


@dataclass(frozen=True)
class Session:
    user: Principal
    csrf: str
    expires_at_ns: int


# -- the console's languages -------------------------------------------------------------------


# The console's languages as BCP 47 tags: English (the language of its sources) and one per
# catalogue in web/locale (``zh_Hans`` is how Babel names ``zh-Hans``). Listed here because the core
# reads no files; tests/test_i18n.py checks this list and the catalogues present agree, so a
# language is added by adding its catalogue and its tag here. (Messages may be in any BCP 47 language.)
LANGUAGES = ("en", "ru", "zh-Hans")


# -- passwords --------------------------------------------------------------------------------


def hash_password(password: str) -> str:
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=SCRYPT_N, r=SCRYPT_R, p=SCRYPT_P, maxmem=64 * 2**20)
    return f"scrypt${SCRYPT_N}${SCRYPT_R}${SCRYPT_P}${salt.hex()}${digest.hex()}"


def check_password(password: str, stored: str) -> bool:
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
        if scheme != "scrypt":
            return False
        got = hashlib.scrypt(
            password.encode()[:MAX_PASSWORD * 4], salt=bytes.fromhex(salt), n=int(n), r=int(r), p=int(p),
            maxmem=64 * 2**20,
        )  # fmt: skip
    except (ValueError, MemoryError):
        return False
    return hmac.compare_digest(got, bytes.fromhex(digest))


def new_password_hash(password: str) -> str:
    """Check a new password's length and hash it. ~70-150 ms of scrypt: a server runs it off the event loop."""
    return hash_password(validate_password(password))


@functools.cache
def unknown_user_hash() -> str:
    """A hash of a random secret, checked for unknown names so a guess cannot tell names apart by time."""
    return hash_password(secrets.token_hex(16))


def validate_password(password: str) -> str:
    if len(password) < MIN_PASSWORD:
        raise AccessError(f"a password needs at least {MIN_PASSWORD} characters")
    if len(password) > MAX_PASSWORD:
        raise AccessError(f"a password may have at most {MAX_PASSWORD} characters")
    return password


def validate_console_lang(lang: str) -> str:
    """One of the console's own ``LANGUAGES`` (a user's setting); not ``model.validate_lang``, which
    checks that a message's language is a well-formed BCP 47 tag."""
    if lang not in LANGUAGES:
        raise AccessError(f"the console speaks {', '.join(LANGUAGES)}; not {lang!r}")
    return lang


# -- tokens and sessions ----------------------------------------------------------------------


def secret_digest(secret: str) -> bytes:
    """How a token or session id is kept: its SHA-256, never the secret itself."""
    return hashlib.sha256(secret.encode()).digest()


def validate_token_label(label: str) -> str:
    """A token's label, stripped: empty, or printable text as for a subject line."""
    label = label.strip()
    if label:
        try:
            validate_label(label, "a token label")
        except DeliveryError as e:
            raise AccessError(str(e)) from None
    return label


def new_token() -> tuple[str, str]:
    """A fresh bearer token: (id, secret). The secret names its id, so a log line can too."""
    token_id = secrets.token_hex(4)
    return token_id, f"{TOKEN_PREFIX}{token_id}_{secrets.token_urlsafe(32)}"


def may_be_token(secret: str) -> bool:
    """Worth looking up: a token's shape, and not so long that digesting it is the attack."""
    return secret.startswith(TOKEN_PREFIX) and len(secret) <= MAX_TOKEN_CHARS


def new_session(user: Principal, lifetime_ns: int, now_ns: int) -> tuple[str, Session]:
    """A fresh console session for ``user``: (session id, session with its CSRF token)."""
    session_id = secrets.token_urlsafe(32)
    return session_id, Session(user=user, csrf=secrets.token_urlsafe(32), expires_at_ns=now_ns + lifetime_ns)
