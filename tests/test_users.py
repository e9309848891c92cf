"""Users, roles, tokens, sessions and the login limiter, against a real journal database."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from starlette.exceptions import HTTPException

from hotline.core.access import Permission, Principal, Role, check_password, hash_password, new_password_hash
from hotline.core.errors import AccessError
from hotline.storage.sqlite.access import Access
from hotline.storage.sqlite.journal import Journal
from hotline.web.auth import LOGINS_WAITING_MAX, try_login
from hotline.web.context import ApiContext
from hotline.web.limiter import LoginLimiter

NOW = 1_800_000_000_000_000_000
HOUR = 3600 * 1_000_000_000


@pytest.fixture
def access(tmp_path: Path) -> Access:
    return Access(Journal(tmp_path / "journal.sqlite"))


def actions(access: Access) -> list[dict[str, object]]:
    return [e.decoded() for e in access.journal.entries() if e.kind == "operator.action"]


def test_passwords_are_salted_scrypt_and_checked_in_constant_form() -> None:
    a, b = hash_password("correct horse"), hash_password("correct horse")
    assert a != b and a.startswith("scrypt$")
    assert check_password("correct horse", a)
    assert not check_password("correct hors", a)
    assert not check_password("correct horse", "garbage")


def test_roles_grant_what_the_issue_says() -> None:
    operator, supervisor, auditor = (Principal("x", r) for r in (Role.OPERATOR, Role.SUPERVISOR, Role.AUDITOR))
    assert operator.may(Permission.SEND) and not operator.may(Permission.AUDIT)
    assert not operator.may(Permission.ADMINISTER)
    assert all(supervisor.may(p) for p in Permission)
    assert auditor.may(Permission.AUDIT) and auditor.may(Permission.READ)
    assert not auditor.may(Permission.SEND)
    with pytest.raises(AccessError, match="unknown role"):
        Role.parse("admin")


def test_users_are_added_checked_removed_and_every_change_journaled(access: Access) -> None:
    access.add_user("alice", Role.OPERATOR, new_password_hash("a long password"), "ru", by="cli:root", at_ns=NOW)
    user = access.authenticate("alice", "a long password")
    assert user is not None and user.role is Role.OPERATOR and user.lang == "ru"
    assert access.authenticate("alice", "wrong password!") is None
    assert access.authenticate("nobody", "a long password") is None
    with pytest.raises(AccessError, match="already a user"):
        access.add_user("alice", Role.AUDITOR, new_password_hash("another password"), "en", by="cli:root", at_ns=NOW)
    with pytest.raises(AccessError, match="at least"):
        new_password_hash("short")
    with pytest.raises(AccessError, match="speaks"):
        access.add_user("bob", Role.OPERATOR, new_password_hash("a long password"), "de", by="cli:root", at_ns=NOW)
    access.remove_user("alice", by="sam", at_ns=NOW + 1)
    assert access.authenticate("alice", "a long password") is None
    assert [(a["action"], a["user"], a["by"]) for a in actions(access)] == [
        ("user.add", "alice", "cli:root"),
        ("user.remove", "alice", "sam"),
    ]


def test_tokens_are_shown_once_stored_as_digests_and_revocable(access: Access) -> None:
    token_id, secret = access.create_token(Role.AUDITOR, "audit bot", by="sam", at_ns=NOW)
    stored = access.journal.execute("SELECT digest FROM tokens").fetchone()[0]
    assert secret.encode() not in bytes(stored) and len(bytes(stored)) == 32
    who = access.token_principal(secret)
    assert who is not None and who.role is Role.AUDITOR and who.label == f"token:{token_id}"
    assert access.token_principal(secret + "x") is None
    assert access.token_principal("not a token") is None
    access.revoke_token(token_id, by="sam", at_ns=NOW + 1)
    assert access.token_principal(secret) is None
    with pytest.raises(AccessError, match="no live token"):
        access.revoke_token(token_id, by="sam", at_ns=NOW + 2)
    assert [a["action"] for a in actions(access)] == ["token.create", "token.revoke"]


def test_sessions_expire_and_end_with_their_user(access: Access) -> None:
    access.add_user("alice", Role.OPERATOR, new_password_hash("a long password"), "en", by="cli:root", at_ns=NOW)
    user = access.authenticate("alice", "a long password")
    assert user is not None
    session_id, session = access.open_session(user, HOUR, NOW)
    found = access.session(session_id, NOW + HOUR - 1)
    assert found is not None and found.csrf == session.csrf and found.user.name == "alice"
    assert access.session(session_id, NOW + HOUR) is None, "an expired session must not work"
    assert access.session("forged", NOW) is None
    access.close_session(session_id, NOW + 1)
    access.close_session(session_id, NOW + 2)  # twice: nothing more happens
    second, _ = access.open_session(user, HOUR, NOW, client="127.0.0.1")
    access.remove_user("alice", by="sam", at_ns=NOW)
    assert access.session(second, NOW) is None, "a removed user's sessions must end"
    assert [(a["action"], a["by"], a.get("from")) for a in actions(access)][1:] == [
        ("login", "alice", ""),
        ("logout", "alice", None),
        ("login", "alice", "127.0.0.1"),
        ("user.remove", "sam", None),
    ]


def test_login_limiter_blocks_after_five_failures_per_window() -> None:
    limiter = LoginLimiter(allowed=5, window_s=60)
    for i in range(5):
        assert limiter.retry_after("10.0.0.1", 100.0 + i) == 0
        limiter.failed("10.0.0.1", 100.0 + i)
    assert limiter.retry_after("10.0.0.1", 105.0) == pytest.approx(55.0)
    assert limiter.retry_after("10.0.0.2", 105.0) == 0, "another client is not blocked"
    assert limiter.retry_after("10.0.0.1", 160.5) == 0, "the window slides"
    limiter.succeeded("10.0.0.1")
    assert limiter.retry_after("10.0.0.1", 106.0) == 0


def test_login_limiter_memory_is_bounded_by_forgetting_quiet_addresses() -> None:
    limiter = LoginLimiter(allowed=5, window_s=60, tracked=100)
    for i in range(100):
        limiter.failed(f"10.0.0.{i}", 100.0 + i / 1000)
    limiter.failed("10.9.9.9", 130.0)  # full: the longest-quiet address goes, even inside its window
    assert len(limiter) == 100
    for _ in range(5):
        limiter.failed("10.9.9.8", 170.0)  # the rest of the first hundred are quiet for 70 s: forgotten
    assert len(limiter) == 2  # 10.9.9.9 (failed 40 s ago) and 10.9.9.8
    assert limiter.retry_after("10.9.9.8", 170.0) > 0, "a client still guessing stays blocked"
    for i in range(50_000):  # a flood from fresh addresses, all inside one window
        limiter.failed(f"fd00::{i:x}", 171.0 + i / 1e6)
    assert len(limiter) == 100


def test_a_flood_of_logins_is_turned_away_at_once_not_queued(access: Access) -> None:
    """Sixteen logins in progress at most (one checked, fifteen waiting); the rest are told to
    come back (503) at once, so a flood cannot hold every connection the server allows."""
    access.add_user("alice", Role.OPERATOR, new_password_hash("a long password"), "en", by="cli:root", at_ns=NOW)
    ctx = ApiContext(terminal=None, access=access, session_lifetime_ns=HOUR)  # type: ignore[arg-type]

    async def attempt(i: int) -> int:
        try:
            await try_login(ctx, f"10.0.0.{i}", "alice", "a wrong password")
        except HTTPException as e:
            return e.status_code
        return 200

    async def flood() -> list[int]:
        return await asyncio.gather(*(attempt(i) for i in range(40)))

    answers = asyncio.run(flood())
    assert answers.count(401) == LOGINS_WAITING_MAX and answers.count(503) == 40 - LOGINS_WAITING_MAX
    assert ctx.logins_waiting == 0, "every waiting login was let go"
