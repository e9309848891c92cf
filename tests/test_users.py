"""Users, roles, tokens, sessions and the login limiter, against a real journal database."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Iterator
from pathlib import Path

import pytest
from starlette.exceptions import HTTPException

from hotline.core.access import Permission, Principal, Role, check_password, hash_password, new_password_hash
from hotline.core.alarms import AlarmBoard, AlarmChange
from hotline.core.errors import AccessError
from hotline.storage.sqlite.access import Access
from hotline.storage.sqlite.journal import Journal
from hotline.web.auth import LOGINS_WAITING_MAX, clear_stale_throttles, expire_throttles, try_login
from hotline.web.context import ApiContext
from hotline.web.limiter import FORGET_S, LoginLimiter

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


# -- the login throttle (pure, with a fake clock) -----------------------------------------------

CHECK_S = 0.1  # what one password check takes (scrypt), in the attacker simulations


def attack(limiter: LoginLimiter, tries: Iterator[tuple[str, str]], seconds: float) -> int:
    """How many passwords an attacker checks in ``seconds`` if it tries as soon as it is let,
    each try as the next (user, address) of ``tries``; a refused try is made again after its wait."""
    now, checked = 0.0, 0
    for account, address in tries:
        now += limiter.retry_after(account, address, now)
        assert limiter.retry_after(account, address, now) == 0
        now += CHECK_S
        if now > seconds:
            return checked
        limiter.failed(account, address, now)
        checked += 1
    return checked


def fresh_addresses(account: str) -> Iterator[tuple[str, str]]:
    return ((account, f"10.{i >> 16 & 255}.{i >> 8 & 255}.{i & 255}") for i in itertools.count())


def test_one_user_from_one_address_gets_five_tries_then_doubling_waits_up_to_five_minutes() -> None:
    limiter = LoginLimiter()
    waits = []
    for i in range(16):  # each after the wait before it, and well inside the 15 min it is remembered
        limiter.failed("alice", "127.0.0.1", 400.0 * i)
        waits.append(limiter.retry_after("alice", "127.0.0.1", 400.0 * i))
    assert waits == [0, 0, 0, 0, 1, 2, 4, 8, 16, 32, 64, 128, 256, 300, 300, 300]
    assert limiter.retry_after("alice", "127.0.0.1", 6000.0 + 299.5) == pytest.approx(0.5), "from the last failure"
    assert limiter.retry_after("alice", "127.0.0.1", 6000.0 + 300) == 0


def test_a_flood_on_one_user_from_one_address_delays_nobody_else() -> None:
    """The issue's run: thirty wrong passwords for alice from 127.0.0.1 in two seconds."""
    limiter = LoginLimiter()
    answers = []
    for i in range(30):
        now = i / 15
        if limiter.retry_after("alice", "127.0.0.1", now) > 0:
            answers.append(429)
        else:
            limiter.failed("alice", "127.0.0.1", now)
            answers.append(401)
    # Five wrong answers, then a second's wait; the sixth guess, let in after it, doubles the wait.
    assert answers == [401] * 5 + [429] * 14 + [401] + [429] * 10
    assert limiter.retry_after("alice", "127.0.0.1", 2.0) > 0, "the flooding pair waits"
    assert limiter.retry_after("bob", "127.0.0.1", 2.0) == 0, "another user behind the same address does not"
    assert limiter.retry_after("alice", "127.0.0.2", 2.0) == 0, "nor the same user from another address"
    # ...however long the flood goes on at the pace it is let.
    assert attack(limiter, iter(lambda: ("alice", "127.0.0.1"), None), 3600) < 30
    assert limiter.retry_after("bob", "127.0.0.1", 3600) == 0
    assert limiter.retry_after("alice", "127.0.0.2", 3600) == 0


@pytest.mark.parametrize("addresses", [3, 30, 100_000])
def test_a_guess_spread_over_many_addresses_is_slowed_however_many_there_are(addresses: int) -> None:
    limiter = LoginLimiter()
    spread = (("alice", f"10.0.{i % addresses >> 8}.{i % addresses & 255}") for i in itertools.count())
    checked = attack(limiter, spread, 3600)
    assert checked <= 30, f"{checked} guesses in an hour from {addresses} addresses"  # unthrottled: 36,000
    assert limiter.retry_after("alice", "192.0.2.1", 3600) > 0, "the account itself is slowed, from anywhere"
    assert limiter.retry_after("bob", "10.0.0.1", 3600) == 0, "other users are not"


def test_the_account_count_takes_at_most_five_failures_from_each_address() -> None:
    limiter = LoginLimiter()
    for i in range(30):
        limiter.failed("alice", "10.0.0.1", float(i))
    assert limiter.retry_after("alice", "10.0.0.2", 30.0) == 0, "one address alone does not slow the account"
    for i in range(5):
        limiter.failed("alice", "10.0.0.2", 30.0 + i)
    assert limiter.retry_after("alice", "10.0.0.3", 34.5) > 0, "two addresses' worth does (10 failures)"


def test_one_address_trying_many_user_names_is_slowed_for_every_name() -> None:
    limiter = LoginLimiter()
    sprayed = ((f"user{i}", "10.0.0.9") for i in itertools.count())
    assert attack(limiter, sprayed, 3600) < 40
    assert limiter.retry_after("anyone", "10.0.0.9", 3600) > 0, "the spraying address is slowed as anyone"
    assert limiter.retry_after("anyone", "10.0.0.8", 3600) == 0, "other addresses are not"


def test_a_login_forgives_its_own_failures_only() -> None:
    limiter = LoginLimiter()
    for address in ("10.0.0.1", "10.0.0.2", "10.0.0.3"):
        for i in range(5):
            limiter.failed("alice", address, float(i))
    assert limiter.retry_after("alice", "10.0.0.1", 4.5) > 0
    changes = limiter.succeeded("alice", "10.0.0.1", 4.5)
    assert [(c.scope, c.started) for c in changes] == [("pair", False)]
    assert limiter.retry_after("alice", "10.0.0.2", 4.5) > 0, "another address's failures are not forgiven"
    assert limiter.retry_after("alice", "10.0.0.4", 4.5) > 0, "nor the account's (10 left from two addresses)"
    limiter.succeeded("alice", "10.0.0.2", 4.5)
    assert limiter.retry_after("alice", "10.0.0.4", 4.5) == 0, "with 5 left, the account is not delayed"
    assert limiter.retry_after("alice", "10.0.0.1", 4.5) == 0


def test_a_throttle_is_reported_once_when_it_starts_and_once_when_it_ends() -> None:
    limiter = LoginLimiter()
    changes = []
    now = 0.0
    for _ in range(8):
        now += 1.0
        while (wait := limiter.retry_after("alice", "127.0.0.1", now)) > 0:  # refused tries are not reported
            now += wait / 2
        changes += limiter.failed("alice", "127.0.0.1", now)
    assert [c.subject for c in changes] == ["alice@127.0.0.1"]
    (started,) = changes
    assert (started.scope, started.started, started.failures, started.delay_s) == ("pair", True, 5, 1.0)
    assert "other users and addresses are not delayed" in started.describe()
    assert limiter.expire(now + FORGET_S - 1) == [], "not yet forgotten"
    (ended,) = limiter.expire(now + FORGET_S)
    assert (ended.subject, ended.started, ended.failures, ended.delay_s) == ("alice@127.0.0.1", False, 8, 8.0)
    assert ended.refused > 0 and "15 min" in ended.reason
    assert ended.record() == {"state": "ended", "scope": "pair", "user": "alice", "from": "127.0.0.1", "failures": 8,
                              "delay_s": 8.0, "refused": ended.refused, "reason": ended.reason}  # fmt: skip
    assert limiter.footprint() == 0, "everything about it is forgotten"


def test_past_twenty_throttles_at_once_one_stands_for_the_rest() -> None:
    limiter = LoginLimiter(reported_max=2)
    changes = []
    for n in range(5):
        for i in range(5):
            changes += limiter.failed(f"user{n}", f"10.0.0.{n}", float(n * 5 + i))
    assert [(c.subject, c.started) for c in changes] == [("user0@10.0.0.0", True), ("user1@10.0.0.1", True),
                                                         ("*", True)]  # fmt: skip
    assert len(limiter.throttled()) == 5, "every one is still enforced"
    assert limiter.retry_after("user4", "10.0.0.4", 24.5) > 0
    ended = limiter.expire(1e6)
    assert sorted((c.subject, c.started, c.members) for c in ended) == [
        ("*", False, 3), ("user0@10.0.0.0", False, 0), ("user1@10.0.0.1", False, 0)
    ]  # fmt: skip


def test_the_throttle_memory_is_bounded_however_many_addresses_and_names_guess() -> None:
    limiter = LoginLimiter(tracked=100)
    for i in range(50_000):  # a flood from fresh addresses, with fresh names, all inside one window
        limiter.failed(f"user{i % 7_000}", f"fd00::{i:x}", 100.0 + i / 1000)
    assert len(limiter) == 100
    assert limiter.footprint() <= 4 * 100, "accounts, addresses and throttles exist only while a pair names them"
    for i in range(5):
        limiter.failed("alice", "10.9.9.9", 200.0 + i)
    assert limiter.retry_after("alice", "10.9.9.9", 204.5) > 0, "a pair still guessing stays delayed"
    limiter.expire(1e6)
    assert limiter.footprint() == 0


def test_a_user_name_longer_than_any_is_counted_by_its_start() -> None:
    limiter = LoginLimiter()
    for i in range(5):
        limiter.failed("x" * 64 + str(i) * 10_000, "10.0.0.1", float(i))
    assert limiter.retry_after("x" * 64 + "different", "10.0.0.1", 4.5) > 0
    assert limiter.footprint() < 10


def test_a_flood_of_logins_is_turned_away_at_once_not_queued(access: Access) -> None:
    """Sixteen logins in progress at most (one checked, fifteen waiting); the rest are told to
    come back (503) at once, so a flood cannot hold every connection the server allows."""
    access.add_user("alice", Role.OPERATOR, new_password_hash("a long password"), "en", by="cli:root", at_ns=NOW)
    ctx = ApiContext(terminal=FakeTerminal(), access=access, session_lifetime_ns=HOUR)  # type: ignore[arg-type]

    async def attempt(i: int) -> int:
        try:  # each a name and an address of its own, so that no throttle answers before the queue does
            await try_login(ctx, f"10.0.0.{i}", f"user{i}", "a wrong password")
        except HTTPException as e:
            return e.status_code
        return 200

    async def flood() -> list[int]:
        return await asyncio.gather(*(attempt(i) for i in range(40)))

    answers = asyncio.run(flood())
    assert answers.count(401) == LOGINS_WAITING_MAX and answers.count(503) == 40 - LOGINS_WAITING_MAX
    assert ctx.logins_waiting == 0, "every waiting login was let go"


# -- the throttle applied: journaled, alarmed, cleared -----------------------------------------


PASSWORD = "the right password"


class FakeTerminal:
    """What the login side needs of a terminal: its wall clock and its alarms, kept on the engine's
    own board (which refuses a kind it does not know)."""

    def __init__(self) -> None:
        self.board = AlarmBoard()
        self.changes: list[AlarmChange] = []

    def now_ns(self) -> int:
        return NOW

    def alarms(self) -> list[dict[str, object]]:
        return self.board.listing()

    async def raise_alarm(self, kind: str, peer: str, subject: str, detail: str) -> None:
        change = self.board.raise_(kind, peer, subject, detail, NOW)
        self.changes += [change] if change else []

    async def clear_alarm(self, kind: str, peer: str, subject: str, reason: str) -> None:
        change = self.board.clear(kind, peer, subject, NOW, reason)
        self.changes += [change] if change else []


class Logins:
    """``try_login`` against a real journal, a fake terminal and a fake clock."""

    def __init__(self, access: Access) -> None:
        for user in ("alice", "bob"):
            access.add_user(user, Role.OPERATOR, new_password_hash(PASSWORD), "en", by="cli:root", at_ns=NOW)
        self.access, self.terminal, self.now = access, FakeTerminal(), 1000.0
        self.ctx = ApiContext(self.terminal, access, HOUR, clock=lambda: self.now)  # type: ignore[arg-type]

    def login(self, name: str, address: str, password: str = PASSWORD) -> tuple[int, str]:
        """The answer's status and its Retry-After (or "")."""
        try:
            user = asyncio.run(try_login(self.ctx, address, name, password))
        except HTTPException as e:
            return e.status_code, (e.headers or {}).get("Retry-After", "")
        assert user.name == name
        return 200, ""

    def throttles(self) -> list[dict[str, object]]:
        return [a for a in actions(self.access) if a["action"] == "login.throttle"]


def test_a_flood_on_one_user_is_journaled_and_alarmed_once_and_cleared_when_it_subsides(access: Access) -> None:
    logins = Logins(access)
    answers = []
    for _ in range(30):  # the issue's thirty wrong passwords in two seconds
        answers.append(logins.login("alice", "127.0.0.1", "wrong password"))
        logins.now += 2 / 30
    assert [status for status, _ in answers] == [401] * 5 + [429] * 14 + [401] + [429] * 10
    assert answers[5] == (429, "1") and answers[20] == (429, "2"), "Retry-After: whole seconds, rounded up"
    assert logins.login("alice", "127.0.0.1") == (429, "2"), "the flooding pair waits, even with the password"
    assert logins.login("bob", "127.0.0.1") == (200, ""), "another user at the same address gets in"
    assert logins.login("alice", "127.0.0.2") == (200, ""), "so does alice from another address"

    (started,) = logins.throttles()  # one entry for the whole flood, not one per refused try
    assert started == {"action": "login.throttle", "state": "started", "scope": "pair", "user": "alice",
                       "from": "127.0.0.1", "failures": 5, "delay_s": 1.0}  # fmt: skip
    (alarm,) = logins.terminal.alarms()
    assert (alarm["kind"], alarm["peer"], alarm["subject"]) == ("login-flood", "", "alice@127.0.0.1")
    assert "other users and addresses are not delayed" in str(alarm["detail"])

    logins.now += FORGET_S - 10
    asyncio.run(expire_throttles(logins.ctx))
    assert logins.terminal.alarms() != [], "not while alice@127.0.0.1 is remembered"
    logins.now += 10
    asyncio.run(expire_throttles(logins.ctx))
    assert logins.terminal.alarms() == [], "cleared once the flood has subsided, with no login needed"
    ended = logins.throttles()[1]
    assert (ended["state"], ended["failures"], ended["delay_s"], ended["refused"]) == ("ended", 6, 2.0, 25)
    assert [c.raised for c in logins.terminal.changes] == [True, False]
    assert logins.login("alice", "127.0.0.1") == (200, "")


def test_a_guess_at_one_user_from_many_addresses_slows_that_user_from_anywhere(access: Access) -> None:
    logins = Logins(access)
    for i in range(12):
        logins.now += 30
        logins.login("alice", f"10.0.0.{i}", "wrong password")
    assert logins.login("alice", "10.0.1.1")[0] == 429, "a fresh address is slowed too"
    assert logins.login("bob", "10.0.1.1") == (200, ""), "another user is not"
    assert [(t["state"], t["scope"], t.get("user"), t.get("addresses")) for t in logins.throttles()] == [
        ("started", "account", "alice", 10),
    ]
    assert [a["subject"] for a in logins.terminal.alarms()] == ["alice@*"]
    logins.now += 120
    assert logins.login("alice", "10.0.1.1") == (200, ""), "a delay, not a wall: the password gets in after it"


def test_an_unknown_user_is_throttled_and_answered_as_a_known_one(access: Access) -> None:
    logins = Logins(access)
    known, unknown = [], []
    for _ in range(8):
        known.append(logins.login("alice", "10.0.0.1", "wrong password"))
        unknown.append(logins.login("nobody", "10.0.0.2", "wrong password"))
        logins.now += 1.5
    assert known == unknown and {s for s, _ in known} == {401, 429}
    assert [a["subject"] for a in logins.terminal.alarms()] == ["alice@10.0.0.1", "nobody@10.0.0.2"]


def test_login_flood_alarms_of_an_earlier_run_are_cleared_at_start(access: Access) -> None:
    logins = Logins(access)
    board = logins.terminal.board
    board.raise_("login-flood", "", "alice@127.0.0.1", "from before the restart", NOW)
    board.raise_("path-down", "moscow", "primary", "a real alarm", NOW)
    asyncio.run(clear_stale_throttles(logins.ctx))
    assert [a["kind"] for a in logins.terminal.alarms()] == ["path-down"]
    assert "restarted" in logins.terminal.changes[0].reason
