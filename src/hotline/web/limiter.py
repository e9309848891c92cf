"""The login rate limit: at most N failed logins per client address per sliding window.

Pure bookkeeping (the time is passed in); ``auth.try_login`` applies it.
"""

from __future__ import annotations

from collections import OrderedDict, deque

LOGIN_FAILURES_ALLOWED = 5  # per client address, per window
LOGIN_WINDOW_S = 60.0
LOGIN_CLIENTS_TRACKED = 10_000  # past this, the longest-quiet address is forgotten


class LoginLimiter:
    """At most N failed logins per client address per sliding window; then 429.

    Addresses are kept in the order of their last failure, so the quiet ones are forgotten
    from the front at constant cost; past ``tracked`` addresses the longest-quiet one is
    forgotten even inside its window, so memory stays bounded however many addresses guess.
    """

    def __init__(
        self, allowed: int = LOGIN_FAILURES_ALLOWED, window_s: float = LOGIN_WINDOW_S,
        tracked: int = LOGIN_CLIENTS_TRACKED,
    ) -> None:  # fmt: skip
        self.allowed, self.window_s, self.tracked = allowed, window_s, tracked
        self._failures: OrderedDict[str, deque[float]] = OrderedDict()

    def retry_after(self, client: str, now: float) -> float:
        """Seconds until ``client`` may try again; 0 if it may now."""
        failures = self._failures.get(client)
        if not failures:
            return 0.0
        while failures and failures[0] <= now - self.window_s:
            failures.popleft()
        if len(failures) < self.allowed:
            return 0.0
        return failures[0] + self.window_s - now

    def failed(self, client: str, now: float) -> None:
        times = self._failures.pop(client, None) or deque(maxlen=self.allowed)
        times.append(now)
        self._failures[client] = times  # to the back: the most recent failure
        cutoff = now - self.window_s
        while len(self._failures) > 1:
            quietest = next(iter(self._failures.values()))
            if quietest and quietest[-1] > cutoff and len(self._failures) <= self.tracked:
                break
            self._failures.popitem(last=False)

    def __len__(self) -> int:
        """How many client addresses are remembered."""
        return len(self._failures)

    def succeeded(self, client: str) -> None:
        self._failures.pop(client, None)
