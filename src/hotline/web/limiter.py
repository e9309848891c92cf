"""The login throttle: growing delays per account, per address and per (account, address).

Pure bookkeeping (the time is passed in); ``auth.try_login`` applies it and reports
what it decides. After OWASP's Authentication Cheat Sheet ("Login Throttling"): never a
wall that locks a user out, but delays that grow with recent failures, counted where
the failures come from, so that one attacker slows only what it attacks.

Three counts, each allowing a few failures and then delaying the next try by a
doubling wait after its latest failure (``BASE_DELAY_S``, 2x, 4x... up to ``MAX_DELAY_S``):

    pair     one user from one address: 5 failures, then 1 s, 2 s, 4 s ... 5 min.
             One attacker flooding alice from 127.0.0.1 slows only alice-from-127.0.0.1.
    account  one user from every address: 10 failures, then the same doubling.
             A guess spread over many addresses is slowed however many it has.
    address  every user from one address: 20 failures, then the same doubling.
             One address trying many users (or made-up names) is slowed.

Into the account's and the address's counts each pair brings at most its own allowance
(5) until that count is itself throttled (then every failure counts): so one flooding
address cannot, by itself, delay the account it floods for the user's other addresses,
nor every user behind it — that takes the failures of two addresses against one account,
or of four accounts from one address; past that, the wait grows with every failure.

Each count is forgotten ``FORGET_S`` after its own latest failure, so an account or an
address under a steady guess stays counted however its addresses or names come and go
(a pair is forgiven at once when its user logs in from there, and its failures are taken
out of the other two); while a count is at or past its allowance, that is a *throttle*,
which starts once and ends once (``Throttle``), so a flood is reported as two events,
not one per refused try. At most ``REPORTED_MAX`` throttles are named at once; past
that, one ``many`` throttle stands for the rest (they are still enforced).

Memory is bounded: pairs, accounts and addresses are each kept in the order of their
latest failure, the quiet ones forgotten from the front at constant cost, and past
``tracked`` of one kind the longest-quiet is forgotten even if still counting; a
throttle exists only while its count does.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from typing import TypeAlias

PAIR_ALLOWED = 5  # failures of one user from one address before the next try waits
ACCOUNT_ALLOWED = 10  # failures for one user, from all addresses (each counting at most PAIR_ALLOWED)
ADDRESS_ALLOWED = 20  # failures from one address, for all users (each counting at most PAIR_ALLOWED)
BASE_DELAY_S = 1.0  # the first wait; each further failure doubles it
MAX_DELAY_S = 300.0  # the longest wait between two tries
FORGET_S = 900.0  # a count is forgotten this long after its latest failure; its throttle ends
TRACKED = 10_000  # pairs, and accounts, and addresses: past this, the longest-quiet is forgotten
REPORTED_MAX = 20  # throttles named at once; the rest are reported together as one
MAX_ACCOUNT_CHARS = 64  # a longer name is no user's (core.model.validate_name): counted by its start

PAIR, ACCOUNT, ADDRESS, MANY = "pair", "account", "address", "many"

Key: TypeAlias = tuple[str, str, str]  # (scope, account, address), "" where the scope has none


def _keys(account: str, address: str) -> tuple[Key, Key, Key]:
    """The counts a try of ``account`` from ``address`` is held to: its pair's, its account's, its address's."""
    account = account[:MAX_ACCOUNT_CHARS]
    return (PAIR, account, address), (ACCOUNT, account, ""), (ADDRESS, "", address)


def delay_s(count: int, allowed: int) -> float:
    """The wait after the latest failure, for a count of ``count`` failures: 0 below the allowance."""
    if count < allowed:
        return 0.0
    return min(BASE_DELAY_S * 2.0 ** min(count - allowed, 64), MAX_DELAY_S)


@dataclass(frozen=True, slots=True)
class Throttle:
    """A throttle that started or ended: the decision to report (journal it, raise or clear the alarm)."""

    scope: str  # pair, account, address, or many (the throttles past REPORTED_MAX, together)
    account: str  # the user name tried ("" for address and many)
    address: str  # the client address ("" for account and many)
    started: bool  # True: started now; False: ended now
    failures: int  # the count now (at the start), or the highest it reached (at the end)
    delay_s: float  # the wait it imposed at the start, or at its highest
    refused: int = 0  # tries refused while it lasted (at the end)
    members: int = 0  # account: the addresses it failed from; address: the names tried; many: the throttles
    reason: str = ""  # why it ended

    @property
    def subject(self) -> str:
        """Names the condition: ``alice@127.0.0.1``, ``alice@*``, ``*@127.0.0.1``, or ``*``."""
        return {PAIR: f"{self.account}@{self.address}", ACCOUNT: f"{self.account}@*",
                ADDRESS: f"*@{self.address}"}.get(self.scope, "*")  # fmt: skip

    def describe(self) -> str:
        """The alarm's detail: what is delayed, and what is not."""
        wait = f"the next try waits {self.delay_s:.0f} s, doubling with each failure up to {MAX_DELAY_S:.0f} s"
        if self.scope == PAIR:
            return (f"{self.failures} failed logins as {self.account!r} from {self.address}: from there {wait}; "
                    "other users and addresses are not delayed")  # fmt: skip
        if self.scope == ACCOUNT:
            return (f"{self.failures} failed logins as {self.account!r} from {self.members} addresses: "
                    f"from any address {wait}")  # fmt: skip
        if self.scope == ADDRESS:
            return f"{self.failures} failed logins from {self.address} for {self.members} user names: as anyone {wait}"
        return f"more than {REPORTED_MAX} login throttles at once: the others are enforced, and counted here"

    def record(self) -> dict[str, object]:
        """What the journal keeps of it (an ``operator.action``)."""
        record: dict[str, object] = {
            "state": "started" if self.started else "ended", "scope": self.scope, "failures": self.failures,
            "delay_s": self.delay_s,
        }  # fmt: skip
        if self.account:
            record["user"] = self.account
        if self.address:
            record["from"] = self.address
        if self.scope != PAIR:
            record[{ACCOUNT: "addresses", ADDRESS: "users", MANY: "throttles"}[self.scope]] = self.members
        if not self.started:
            record.update(refused=self.refused, reason=self.reason)
        return record


@dataclass(slots=True)
class _Count:
    failures: int = 0
    last: float = 0.0  # monotonic time of the latest failure
    members: int = 0  # account: the addresses that failed for it; address: the names tried from it
    # (one forgotten and back again counts twice: an account keeps no list of its addresses)


@dataclass(slots=True)
class _Open:
    """A throttle in progress."""

    named: bool  # reported on its own (else counted in the ``many`` throttle)
    peak: int
    peak_delay_s: float
    members: int = 0
    refused: int = 0


class LoginLimiter:
    """Growing delays per (account, address), per account and per address; see the module's comment."""

    def __init__(
        self, pair_allowed: int = PAIR_ALLOWED, account_allowed: int = ACCOUNT_ALLOWED,
        address_allowed: int = ADDRESS_ALLOWED, forget_s: float = FORGET_S, tracked: int = TRACKED,
        reported_max: int = REPORTED_MAX,
    ) -> None:  # fmt: skip
        self.allowed = {PAIR: pair_allowed, ACCOUNT: account_allowed, ADDRESS: address_allowed}
        self.forget_s, self.tracked, self.reported_max = forget_s, tracked, reported_max
        # Each by its latest failure, oldest first, so the quiet ones are forgotten from the front.
        self._counts: dict[str, OrderedDict[Key, _Count]] = {scope: OrderedDict() for scope in self.allowed}
        self._open: dict[Key, _Open] = {}
        self._named = 0
        self._many: _Open | None = None

    # -- asking -----------------------------------------------------------------------------

    def retry_after(self, account: str, address: str, now: float) -> float:
        """Seconds until ``account`` may be tried from ``address``; 0 if it may now.

        A refusal (a wait above 0) is counted against the throttles that cause it."""
        wait = 0.0
        for key in _keys(account, address):
            count = self._counts[key[0]].get(key)
            if count is None:
                continue
            own = count.last + delay_s(count.failures, self.allowed[key[0]]) - now
            if own > 0:
                wait = max(wait, own)
                opened = self._open.get(key)
                if opened is not None:
                    opened.refused += 1
        return wait

    def __len__(self) -> int:
        """How many (account, address) pairs are remembered."""
        return len(self._counts[PAIR])

    def throttled(self) -> list[Key]:
        """The throttles in progress (named or not)."""
        return list(self._open)

    def footprint(self) -> int:
        """Everything remembered: pairs, accounts, addresses and throttles (what bounds the memory)."""
        return sum(map(len, self._counts.values())) + len(self._open)

    # -- telling ----------------------------------------------------------------------------

    def failed(self, account: str, address: str, now: float) -> list[Throttle]:
        """A wrong password (or an unknown user) for ``account`` from ``address``; returns the
        throttles that started (and those that ended, forgotten on the way)."""
        changes = self.expire(now)
        pair_key, *aggregate_keys = _keys(account, address)
        pair = self._bump(pair_key, now)
        changes += self._settle(pair_key, pair)
        for key in aggregate_keys:
            # A pair brings its first failures into the account's and the address's counts, and
            # every failure once that count is itself throttled.
            table = self._counts[key[0]]
            throttled = key in table and table[key].failures >= self.allowed[key[0]]
            count = self._bump(key, now, by=int(pair.failures <= self.allowed[PAIR] or throttled))
            count.members += pair.failures == 1
            changes += self._settle(key, count)
        for scope, table in self._counts.items():
            while len(table) > self.tracked:
                changes += self._forget(next(iter(table)), f"forgotten past {self.tracked} {scope}s tracked")
        return changes

    def succeeded(self, account: str, address: str, now: float) -> list[Throttle]:
        """The user logged in from there: that pair's failures are forgiven, and taken out of the
        account's and the address's counts (not the failures from other addresses or for other users)."""
        changes = self.expire(now)
        pair_key, *aggregate_keys = _keys(account, address)
        pair = self._counts[PAIR].get(pair_key)
        if pair is None:
            return changes
        why = f"{pair_key[1]!r} logged in from {address}"
        changes += self._forget(pair_key, why)
        for key in aggregate_keys:
            count = self._counts[key[0]].get(key)
            if count is None:
                continue
            count.failures = max(0, count.failures - min(pair.failures, self.allowed[PAIR]))
            count.members = max(0, count.members - 1)
            changes += self._forget(key, why) if count.failures == 0 else self._settle(key, count, why)
        return changes

    def expire(self, now: float) -> list[Throttle]:
        """Forget the counts quiet for ``forget_s``; returns the throttles that ended with them."""
        changes: list[Throttle] = []
        cutoff = now - self.forget_s
        why = f"no failed login for {self.forget_s / 60:.0f} min"
        for table in self._counts.values():
            while table:
                key, count = next(iter(table.items()))
                if count.last > cutoff:
                    break
                changes += self._forget(key, why)
        return changes

    # -- inside -----------------------------------------------------------------------------

    def _bump(self, key: Key, now: float, by: int = 1) -> _Count:
        table = self._counts[key[0]]
        count = table.pop(key, None) or _Count()
        table[key] = count  # to the back: the latest failure
        count.failures += by
        count.last = now
        return count

    def _forget(self, key: Key, why: str) -> list[Throttle]:
        del self._counts[key[0]][key]
        return self._settle(key, None, why)

    def _settle(self, key: Key, count: _Count | None, why: str = "") -> list[Throttle]:
        """Start or end ``key``'s throttle if its count crossed its allowance; else note its peak."""
        scope, account, address = key
        allowed = self.allowed[scope]
        opened = self._open.get(key)
        if count is not None and count.failures >= allowed:
            wait = delay_s(count.failures, allowed)
            if opened is not None:
                opened.peak = max(opened.peak, count.failures)
                opened.peak_delay_s = max(opened.peak_delay_s, wait)
                opened.members = max(opened.members, count.members)
                return []
            named = self._named < self.reported_max
            self._open[key] = _Open(named, count.failures, wait, count.members)
            if named:
                self._named += 1
                return [Throttle(scope, account, address, True, count.failures, wait, members=count.members)]
            return self._many_changed(+1)
        if opened is None:
            return []
        del self._open[key]
        if not opened.named:
            return self._many_changed(-1, opened.refused, why)
        self._named -= 1
        return [Throttle(scope, account, address, False, opened.peak, opened.peak_delay_s, opened.refused,
                         opened.members, why)]  # fmt: skip

    def _many_changed(self, by: int, refused: int = 0, why: str = "") -> list[Throttle]:
        """One more (or one fewer) throttle past ``reported_max``: the ``many`` throttle stands for them."""
        if self._many is None:  # by == +1: the first beyond the named ones
            self._many = _Open(named=True, peak=1, peak_delay_s=0.0, members=1)
            return [Throttle(MANY, "", "", True, 0, 0.0, members=1)]
        self._many.members += by
        self._many.refused += refused
        self._many.peak = max(self._many.peak, self._many.members)
        if self._many.members > 0:
            return []
        many, self._many = self._many, None
        return [Throttle(MANY, "", "", False, 0, 0.0, many.refused, many.peak, why)]
