"""Times and durations as people write them, and as the journal keeps them (integer ns, UTC).

Pure: the current time is always passed in.
"""

from __future__ import annotations

import datetime as dt
import re

from hotline.core.errors import ConfigError

_DURATION_RE = re.compile(r"^(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?$")
_UNITS_S = (86400, 3600, 60, 1)


def rfc3339(ns: int) -> str:
    """A journal time as RFC 3339 text in UTC, to the microsecond."""
    t = dt.datetime.fromtimestamp(ns / 1e9, tz=dt.UTC)
    return t.strftime("%Y-%m-%dT%H:%M:%S.") + f"{t.microsecond:06d}Z"


def parse_time(text: str, what: str = "time") -> int:
    """RFC 3339 text ("2025-10-16T14:00:00Z", "2025-10-16T17:00+03:00") or a date ("2025-10-23",
    midnight UTC) as integer nanoseconds. A time without an offset is refused: UTC must be said."""
    value = text.strip()
    try:
        if re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
            parsed = dt.datetime.fromisoformat(value).replace(tzinfo=dt.UTC)
        else:
            parsed = dt.datetime.fromisoformat(value.replace("z", "Z"))
    except ValueError:
        raise ConfigError(f"invalid {what} {text!r}: expected RFC 3339 such as 2025-10-16T14:00:00Z") from None
    if parsed.tzinfo is None:
        raise ConfigError(f"{what} {text!r} has no UTC offset: add Z (UTC) or +HH:MM")
    return int(parsed.timestamp()) * 1_000_000_000 + parsed.microsecond * 1000


def parse_duration(text: str, what: str = "duration") -> int:
    """ "2h30m", "30m", "1d", "90s" as whole seconds."""
    match = _DURATION_RE.match(text.strip().lower())
    if not text.strip() or match is None:
        raise ConfigError(f"invalid {what} {text!r}: expected a duration such as 2h30m, 30m, 1d or 90s")
    return sum(int(part) * unit for part, unit in zip(match.groups(), _UNITS_S, strict=True) if part)


def format_duration(seconds: int) -> str:
    """Whole seconds as people write them: 9000 -> "2h30m"."""
    if seconds <= 0:
        return "0m"
    parts = []
    for unit, name in zip(_UNITS_S, "dhms", strict=True):
        count, seconds = divmod(seconds, unit)
        if count:
            parts.append(f"{count}{name}")
    return "".join(parts)
