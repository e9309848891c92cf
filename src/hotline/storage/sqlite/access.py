"""Users, API tokens and console sessions in SQLite: the ``AccessStore`` of ``hotline.storage.base``.

The tables live in the terminal's journal database, beside the record they
guard, and every change to them is journaled as an operator action in the same
transaction (who was added, which token was created, by whom). What a role may
do, and how passwords and secrets are hashed, is the model's
(``hotline.core.access``); only digests and hashes reach these tables.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from hotline.core.access import (
    MAX_SESSION_ID_CHARS,
    Principal,
    Role,
    Session,
    check_password,
    may_be_token,
    new_session,
    new_token,
    secret_digest,
    unknown_user_hash,
    validate_console_lang,
    validate_token_label,
)
from hotline.core.errors import AccessError, UnknownToken, UnknownUser
from hotline.core.model import validate_name
from hotline.storage.sqlite.journal import Journal


class Access:
    """Users, tokens and sessions in the journal database; each change is its own transaction."""

    def __init__(self, journal: Journal) -> None:
        self.journal = journal

    # -- users ------------------------------------------------------------------------------

    def add_user(self, name: str, role: Role, password_hash: str, lang: str, *, by: str, at_ns: int) -> None:
        """Add a user whose password was hashed by `new_password_hash`."""
        name = validate_name(name, "user name")
        validate_console_lang(lang)
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
        validate_console_lang(lang)
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

    def record_login_throttle(self, detail: Mapping[str, object], at_ns: int) -> None:
        """A login throttle started or ended (``web.limiter.Throttle.record``): a decision of the
        terminal's, journaled with its counts, once per start and once per end."""
        with self.journal.transaction():
            self.journal.append("operator.action", {"action": "login.throttle", **detail}, at_ns)

    def authenticate(self, name: str, password: str) -> Principal | None:
        """Blocking check (~70-150 ms); the web server splits it: `password_record`, then
        `check_password` in a worker thread."""
        user, stored = self.password_record(name)
        return user if check_password(password, stored) else None

    # -- tokens -----------------------------------------------------------------------------

    def create_token(self, role: Role, label: str, *, by: str, at_ns: int) -> tuple[str, str]:
        """A new bearer token for a program; returns (id, secret). The secret is shown once."""
        label = validate_token_label(label)
        token_id, secret = new_token()
        with self.journal.transaction():
            self.journal.execute(
                "INSERT INTO tokens(id, digest, role, label, created_by, created_at_ns) VALUES (?,?,?,?,?,?)",
                (token_id, secret_digest(secret), role.value, label, by, at_ns),
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
        if not may_be_token(secret):
            return None
        row = self.journal.execute(
            "SELECT id, role FROM tokens WHERE digest = ? AND revoked_at_ns IS NULL", (secret_digest(secret),)
        ).fetchone()
        return None if row is None else Principal(name=row[0], role=Role(row[1]), via="token")

    # -- console sessions -------------------------------------------------------------------

    def open_session(self, user: Principal, lifetime_ns: int, now_ns: int, client: str = "") -> tuple[str, Session]:
        """A console login: who was at the screen, from where, is part of the record."""
        session_id, session = new_session(user, lifetime_ns, now_ns)
        with self.journal.transaction():
            self.journal.execute("DELETE FROM console_sessions WHERE expires_at_ns <= ?", (now_ns,))
            self.journal.execute(
                "INSERT INTO console_sessions(digest, user, csrf, expires_at_ns) VALUES (?,?,?,?)",
                (secret_digest(session_id), user.name, session.csrf, session.expires_at_ns),
            )
            self.journal.append("operator.action", {"action": "login", "by": user.name, "from": client}, now_ns)
        return session_id, session

    def session(self, session_id: str, now_ns: int) -> Session | None:
        if len(session_id) > MAX_SESSION_ID_CHARS:
            return None
        row = self.journal.execute(
            "SELECT s.csrf, s.expires_at_ns, u.name, u.role, u.lang FROM console_sessions s "
            "JOIN users u ON u.name = s.user WHERE s.digest = ?",
            (secret_digest(session_id),),
        ).fetchone()
        if row is None or row[1] <= now_ns:
            return None
        return Session(user=Principal(name=row[2], role=Role(row[3]), lang=row[4]), csrf=row[0], expires_at_ns=row[1])

    def close_session(self, session_id: str, now_ns: int) -> None:
        with self.journal.transaction():
            row = self.journal.execute(
                "SELECT user FROM console_sessions WHERE digest = ?", (secret_digest(session_id),)
            ).fetchone()
            if row is None:
                return
            self.journal.execute("DELETE FROM console_sessions WHERE digest = ?", (secret_digest(session_id),))
            self.journal.append("operator.action", {"action": "logout", "by": row[0]}, now_ns)
