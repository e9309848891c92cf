"""Which path carries traffic to a peer: failover at once, failback after a hold-down. Sans-IO.

A peer has named paths in preference order (``primary``, ``backup``, ...). Each
path is *up* while it has an authenticated connection whose heartbeats arrive
(the liveness rule itself, BFD-like, lives in ``protocol``), and *down*
otherwise. The selector decides:

* no active path, or the active one went down -> the most preferred path that
  is up, at once (failover; nothing waits);
* a path more preferred than the active one has been up without interruption
  for ``hold_down`` seconds -> move back to it (failback), so a flapping
  circuit does not drag traffic back and forth;
* nothing up -> no active path (and "all paths down" is an alarm upstream).

Round-trip times are kept per path for ``status``: the last sample and the
median over the last minute.
"""

from __future__ import annotations

import statistics
from collections import deque
from dataclasses import dataclass, field

RTT_WINDOW_S = 60.0
MAX_RTT_SAMPLES = 2048


@dataclass
class PathHealth:
    name: str
    rank: int  # 0 is the most preferred
    up: bool = False
    up_since: float | None = None
    down_since: float | None = None
    last_heartbeat: float | None = None  # monotonic time anything last arrived on it
    rtts: deque[tuple[float, float]] = field(default_factory=lambda: deque(maxlen=MAX_RTT_SAMPLES))
    last_test: dict[str, object] | None = None
    # Counted since the terminal started (for metrics): how often the path went down, and how
    # often of those because its heartbeats stopped arriving.
    downs: int = 0
    heartbeat_misses: int = 0

    def add_rtt(self, now: float, rtt: float) -> None:
        self.rtts.append((now, rtt))

    def rtt_last(self) -> float | None:
        return self.rtts[-1][1] if self.rtts else None

    def rtt_p50(self, now: float) -> float | None:
        recent = [r for t, r in self.rtts if now - t <= RTT_WINDOW_S]
        return statistics.median(recent) if recent else None


@dataclass(frozen=True, slots=True)
class Switch:
    """The active path changed. ``reason`` is "failover", "failback", "first" or "lost"."""

    old: str | None
    new: str | None
    reason: str


class PathSelector:
    def __init__(self, preference: list[str], hold_down: float) -> None:
        if hold_down < 0:
            raise ValueError("hold-down must not be negative")
        self.hold_down = hold_down
        self.paths: dict[str, PathHealth] = {}
        for name in preference:
            self.ensure(name)
        self.active: str | None = None

    def ensure(self, name: str) -> PathHealth:
        """A path we did not know about (the peer dialled us on one of our own listen paths)."""
        if name not in self.paths:
            self.paths[name] = PathHealth(name=name, rank=len(self.paths))
        return self.paths[name]

    def mark_up(self, name: str, now: float) -> Switch | None:
        path = self.ensure(name)
        if not path.up:
            path.up, path.up_since, path.down_since = True, now, None
        path.last_heartbeat = now
        return self.evaluate(now)

    def mark_down(self, name: str, now: float) -> Switch | None:
        path = self.ensure(name)
        if path.up:
            path.up, path.up_since, path.down_since = False, None, now
        return self.evaluate(now)

    def _best_up(self) -> PathHealth | None:
        up = [p for p in self.paths.values() if p.up]
        return min(up, key=lambda p: p.rank) if up else None

    def evaluate(self, now: float) -> Switch | None:
        """Apply the rules above; return the switch if the active path changes."""
        best = self._best_up()
        current = self.paths.get(self.active) if self.active else None
        if current is None or not current.up:
            new = best.name if best else None
            if new == self.active:
                return None
            old, self.active = self.active, new
            if new is None:
                return Switch(old, None, "lost")
            return Switch(old, new, "first" if old is None else "failover")
        if best is not None and best.rank < current.rank:
            steady = best.up_since is not None and now - best.up_since >= self.hold_down
            if steady:
                old, self.active = self.active, best.name
                return Switch(old, best.name, "failback")
        return None

    def next_deadline(self, now: float) -> float | None:
        """When a pending failback becomes due (for timers)."""
        current = self.paths.get(self.active) if self.active else None
        best = self._best_up()
        if current is None or best is None or best.rank >= current.rank or best.up_since is None:
            return None
        return best.up_since + self.hold_down

    def any_up(self) -> bool:
        return any(p.up for p in self.paths.values())
