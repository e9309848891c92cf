"""People and programs allowed at a terminal: users, roles, API tokens, console sessions.

The tables live in the terminal's journal database, beside the record they
guard, and every change to them is journaled as an operator action in the same
transaction (who was added, which token was created, by whom). Secrets are never
stored: passwords as scrypt hashes, tokens and session ids as SHA-256 digests
(they are 256-bit random values, so a fast hash is enough).
"""

from __future__ import annotations

import enum
import functools
import hashlib
import hmac
import secrets
from dataclasses import dataclass
from typing import Any

from hotline.core.errors import AccessError, DeliveryError, UnknownToken, UnknownUser
from hotline.core.model import validate_label, validate_name
from hotline.storage.sqlite.journal import Journal

# scrypt at n=2**15, r=8: ~32 MiB and ~70-150 ms a guess on these machines; OWASP's floor is n=2**17
# for new deployments with more memory to spare, n=2**15 keeps login and tests quick.
SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**15, 8, 1
MIN_PASSWORD = 10
MAX_PASSWORD = 1024
LANGUAGES = ("en", "ru")
TOKEN_PREFIX = "hlt_"  # noqa: S105 -- a marker that names what a secret is, not a secret


class Role(enum.StrEnum):
    OPERATOR = "operator"  # send, read, acknowledge
    SUPERVISOR = "supervisor"  # also users, tokens and pairing
    AUDITOR = "auditor"  # read and verify the record; never send

    @classmethod
    def parse(cls, text: str) -> Role:
        try:
            return cls(text.lower())
        except ValueError:
            raise AccessError(f"unknown role {text!r}; choose operator, supervisor or auditor") from None


class Permission(enum.StrEnum):
    READ = "read"  # messages, peers, paths, alarms
    SEND = "send"  # send and acknowledge
    AUDIT = "audit"  # journal verify and export
    ADMINISTER = "administer"  # users, tokens


GRANTS: dict[Role, frozenset[Permission]] = {
    Role.OPERATOR: frozenset({Permission.READ, Permission.SEND}),
    Role.SUPERVISOR: frozenset(Permission),
    Role.AUDITOR: frozenset({Permission.READ, Permission.AUDIT}),
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


def _digest(secret: str) -> bytes:
    return hashlib.sha256(secret.encode()).digest()


def validate_password(password: str) -> str:
    if len(password) < MIN_PASSWORD:
        raise AccessError(f"a password needs at least {MIN_PASSWORD} characters")
    if len(password) > MAX_PASSWORD:
        raise AccessError(f"a password may have at most {MAX_PASSWORD} characters")
    return password


def validate_lang(lang: str) -> str:
    if lang not in LANGUAGES:
        raise AccessError(f"the console speaks {', '.join(LANGUAGES)}; not {lang!r}")
    return lang


class Access:
    """Users, tokens and sessions in the journal database."""

    def __init__(self, journal: Journal) -> None:
        self.journal = journal

    # -- users ------------------------------------------------------------------------------

    def add_user(self, name: str, role: Role, password_hash: str, lang: str, *, by: str, at_ns: int) -> None:
        """Add a user whose password was hashed by `new_password_hash`."""
        name = validate_name(name, "user name")
        validate_lang(lang)
        with self.journal.transaction():
            if self.journal.execute("SELECT 1 FROM users WHERE name = ?", (name,)).fetchone():
                raise AccessError(f"there is already a user named {name!r}")
            self.journal.execute(
                "INSERT INTO users(name, role, password, lang, created_at_ns) VALUES (?,?,?,?,?)",
                (name, role.value, password_hash, lang, at_ns),
            )
            self.journal.append(
                "operator.action", {"action": "user.add", "user": name, "role": role.value, "by": by}, at_ns
            )

    def remove_user(self, name: str, *, by: str, at_ns: int) -> None:
        with self.journal.transaction():
            if not self.journal.execute("DELETE FROM users WHERE name = ?", (name,)).rowcount:
                raise UnknownUser(f"no user named {name!r}; see `hotline user list`")
            self.journal.execute("DELETE FROM console_sessions WHERE user = ?", (name,))
            self.journal.append("operator.action", {"action": "user.remove", "user": name, "by": by}, at_ns)

    def set_lang(self, name: str, lang: str) -> None:
        validate_lang(lang)
        with self.journal.transaction():
            self.journal.execute("UPDATE users SET lang = ? WHERE name = ?", (lang, name))

    def users(self) -> list[dict[str, Any]]:
        rows = self.journal.execute("SELECT name, role, lang, created_at_ns FROM users ORDER BY name").fetchall()
        return [{"name": r[0], "role": r[1], "lang": r[2], "created_at_ns": r[3]} for r in rows]

    def password_record(self, name: str) -> tuple[Principal | None, str]:
        """The user and their stored password hash; for an unknown name, no user and a hash of a
        random secret, so that checking it takes as long and a guess cannot tell names apart."""
        row = self.journal.execute("SELECT role, password, lang FROM users WHERE name = ?", (name,)).fetchone()
        if row is None:
            return None, unknown_user_hash()
        return Principal(name=name, role=Role(row[0]), lang=row[2]), row[1]

    def authenticate(self, name: str, password: str) -> Principal | None:
        """Blocking check (~70-150 ms); the web server splits it: `password_record`, then
        `check_password` in a worker thread."""
        user, stored = self.password_record(name)
        return user if check_password(password, stored) else None

    # -- tokens -----------------------------------------------------------------------------

    def create_token(self, role: Role, label: str, *, by: str, at_ns: int) -> tuple[str, str]:
        """A new bearer token for a program; returns (id, secret). The secret is shown once."""
        label = label.strip()
        if label:
            try:
                validate_label(label, "a token label")
            except DeliveryError as e:
                raise AccessError(str(e)) from None
        token_id = secrets.token_hex(4)
        secret = f"{TOKEN_PREFIX}{token_id}_{secrets.token_urlsafe(32)}"
        with self.journal.transaction():
            self.journal.execute(
                "INSERT INTO tokens(id, digest, role, label, created_by, created_at_ns) VALUES (?,?,?,?,?,?)",
                (token_id, _digest(secret), role.value, label, by, at_ns),
            )
            self.journal.append(
                "operator.action",
                {"action": "token.create", "token": token_id, "role": role.value, "label": label, "by": by},
                at_ns,
            )
        return token_id, secret

    def revoke_token(self, token_id: str, *, by: str, at_ns: int) -> None:
        with self.journal.transaction():
            changed = self.journal.execute(
                "UPDATE tokens SET revoked_at_ns = ? WHERE id = ? AND revoked_at_ns IS NULL", (at_ns, token_id)
            ).rowcount
            if not changed:
                raise UnknownToken(f"no live token with id {token_id!r}; see `hotline token list`")
            self.journal.append("operator.action", {"action": "token.revoke", "token": token_id, "by": by}, at_ns)

    def tokens(self) -> list[dict[str, Any]]:
        rows = self.journal.execute(
            "SELECT id, role, label, created_by, created_at_ns, revoked_at_ns FROM tokens ORDER BY created_at_ns"
        ).fetchall()
        return [
            {"id": r[0], "role": r[1], "label": r[2], "created_by": r[3], "created_at_ns": r[4],
             "revoked_at_ns": r[5]}
            for r in rows
        ]  # fmt: skip

    def token_principal(self, secret: str) -> Principal | None:
        if not secret.startswith(TOKEN_PREFIX) or len(secret) > 200:
            return None
        row = self.journal.execute(
            "SELECT id, role FROM tokens WHERE digest = ? AND revoked_at_ns IS NULL", (_digest(secret),)
        ).fetchone()
        return None if row is None else Principal(name=row[0], role=Role(row[1]), via="token")

    # -- console sessions -------------------------------------------------------------------

    def open_session(self, user: Principal, lifetime_ns: int, now_ns: int, client: str = "") -> tuple[str, Session]:
        """A console login: who was at the screen, from where, is part of the record."""
        session_id = secrets.token_urlsafe(32)
        session = Session(user=user, csrf=secrets.token_urlsafe(32), expires_at_ns=now_ns + lifetime_ns)
        with self.journal.transaction():
            self.journal.execute("DELETE FROM console_sessions WHERE expires_at_ns <= ?", (now_ns,))
            self.journal.execute(
                "INSERT INTO console_sessions(digest, user, csrf, expires_at_ns) VALUES (?,?,?,?)",
                (_digest(session_id), user.name, session.csrf, session.expires_at_ns),
            )
            self.journal.append("operator.action", {"action": "login", "by": user.name, "from": client}, now_ns)
        return session_id, session

    def session(self, session_id: str, now_ns: int) -> Session | None:
        if len(session_id) > 100:
            return None
        row = self.journal.execute(
            "SELECT s.csrf, s.expires_at_ns, u.name, u.role, u.lang FROM console_sessions s "
            "JOIN users u ON u.name = s.user WHERE s.digest = ?",
            (_digest(session_id),),
        ).fetchone()
        if row is None or row[1] <= now_ns:
            return None
        return Session(user=Principal(name=row[2], role=Role(row[3]), lang=row[4]), csrf=row[0], expires_at_ns=row[1])

    def close_session(self, session_id: str, now_ns: int) -> None:
        with self.journal.transaction():
            row = self.journal.execute(
                "SELECT user FROM console_sessions WHERE digest = ?", (_digest(session_id),)
            ).fetchone()
            if row is None:
                return
            self.journal.execute("DELETE FROM console_sessions WHERE digest = ?", (_digest(session_id),))
            self.journal.append("operator.action", {"action": "logout", "by": row[0]}, now_ns)


@functools.cache
def unknown_user_hash() -> str:
    return hash_password(secrets.token_hex(16))
