"""Waiting on a condition with a deadline, and repeatable randomness: what the tests, the benchmarks
and the campaign tools share (each used to carry its own copy)."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def wait_until(
    predicate: Callable[[], T | None],
    deadline_s: float,
    what: str,
    *,
    interval: float = 0.02,
    failure: Callable[[str], BaseException] = AssertionError,
    not_yet: tuple[type[BaseException], ...] = (),
) -> T:
    """Poll ``predicate`` until it returns something true, and return that. Past the deadline, raise
    ``failure`` naming ``what``; an exception of ``not_yet`` (a terminal still starting) counts as
    "not yet"."""
    end = time.monotonic() + deadline_s
    while True:
        try:
            value = predicate()
        except not_yet:
            value = None
        if value:
            return value
        if time.monotonic() > end:
            raise failure(f"timed out after {deadline_s:g} s waiting for {what}")
        time.sleep(interval)


def seeded(seed: bytes) -> Callable[[int], bytes]:
    """A deterministic stand-in for os.urandom (keys, nonces and ids repeatable from ``seed``)."""
    counter = 0

    def randbytes(n: int) -> bytes:
        nonlocal counter
        counter += 1
        return hashlib.shake_256(seed + counter.to_bytes(4, "big")).digest(n)

    return randbytes
