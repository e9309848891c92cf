"""A terminal's home folder and its TOML configuration.

HOME/
  config.toml      name, listen addresses, passphrase protection, timings
  keys.json        identity keys, encrypted under the passphrase (see keyfile)
  journal.sqlite   the record (see journal)
  control.sock     the running terminal's local control socket
  terminal.lock    held (flock) by the running terminal
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import tomli_w

from hotline.core.errors import ConfigError, HotlineError
from hotline.core.model import DEFAULT_MARKINGS, Address, validate_marking, validate_name

CONFIG_FILE = "config.toml"
KEYS_FILE = "keys.json"
JOURNAL_FILE = "journal.sqlite"
CONTROL_SOCKET = "control.sock"
LOCK_FILE = "terminal.lock"
MAX_CONFIG_BYTES = 64 * 1024


LOG_FORMATS = ("text", "json")  # `hotline run --log-format`, `[log] format`
DEFAULT_ACK_DEADLINES_S = {"flash": 600.0, "immediate": 1800.0, "priority": 10800.0, "routine": 21600.0}


@dataclass(frozen=True, slots=True)
class Config:
    name: str
    listen: tuple[Address, ...]
    passphrase: bool = True
    heartbeat_ms: int = 200
    missed_heartbeats: int = 3
    synchronous: str = "FULL"
    window: int = 1024
    log_level: str = "INFO"
    log_format: str = "text"  # or "json": one JSON object a line (LOG_FORMATS)
    hold_down_s: float = 5.0
    test_interval_s: float = 3600.0
    test_timeout_s: float = 30.0
    alarm_command: str = ""
    # Handling times for a person's acknowledgement (CCEB): flash 10 min, immediate 30 min,
    # priority 3 h, routine 6 h.
    ack_deadlines_s: dict[str, float] = field(default_factory=lambda: dict(DEFAULT_ACK_DEADLINES_S))
    # The classification markings this deployment sends, lowest first; the first is the default.
    markings: tuple[str, ...] = DEFAULT_MARKINGS
    # How often a running terminal checks the entries appended since its last check (issue 14).
    journal_check_s: float = 60.0
    # Up to this many entries the start-up check reads the whole chain, past it only from the
    # signed checkpoint (storage.integrity.WHOLE_CHAIN_AT_START); lower only to test that path.
    journal_whole_chain: int = 50_000
    extra: dict[str, Any] = field(default_factory=dict)

    def to_toml(self) -> str:
        doc: dict[str, Any] = {
            "name": self.name,
            "passphrase": self.passphrase,
            "listen": [{"path": a.path, "host": a.host, "port": a.port} for a in self.listen],
            "link": {
                "heartbeat_ms": self.heartbeat_ms,
                "missed_heartbeats": self.missed_heartbeats,
                "window": self.window,
                "hold_down_s": self.hold_down_s,
                "test_interval_s": self.test_interval_s,
                "test_timeout_s": self.test_timeout_s,
            },
            "alarms": {"command": self.alarm_command},
            "deadlines": dict(self.ack_deadlines_s),
            "messages": {"markings": list(self.markings)},
            "journal": {
                "synchronous": self.synchronous,
                "check_interval_s": self.journal_check_s,
                "whole_chain_at_start": self.journal_whole_chain,
            },
            "log": {"level": self.log_level, "format": self.log_format},
        }
        doc.update(self.extra)
        header = "# Hotline terminal configuration.\n"
        if not self.passphrase:
            header += (
                "# passphrase = false: the private keys in keys.json are NOT encrypted at rest.\n"
                "# This is meant for demos and tests only.\n"
            )
        return header + tomli_w.dumps(doc)


def resolve_home(home: str | None) -> Path:
    """``--home`` wins, then ``HOTLINE_HOME``; one of them is required."""
    value = home or os.environ.get("HOTLINE_HOME")
    if not value:
        raise ConfigError("no home folder: pass --home DIR or set HOTLINE_HOME")
    return Path(value).expanduser().absolute()


def _get(table: dict[str, Any], key: str, kind: Any, default: Any, where: str) -> Any:
    value = table.get(key, default)
    if not isinstance(value, kind) or (kind is not bool and isinstance(value, bool)):
        raise ConfigError(f"{where}: {key!r} must be {getattr(kind, '__name__', kind)}, not {value!r}")
    return value


def load_config(home: Path) -> Config:
    path = home / CONFIG_FILE
    if not path.exists():
        raise ConfigError(f"{home} is not a Hotline home (no {CONFIG_FILE}); create one with `hotline init`")
    raw = path.read_bytes()
    if len(raw) > MAX_CONFIG_BYTES:
        raise ConfigError(f"{path} is larger than {MAX_CONFIG_BYTES} bytes")
    try:
        doc = tomllib.loads(raw.decode())
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise ConfigError(f"{path} is not valid TOML: {e}") from None
    where = str(path)
    try:
        listen = tuple(
            Address(path=_get(a, "path", str, "primary", where), host=_get(a, "host", str, "", where),
                    port=_get(a, "port", int, 0, where))
            for a in _get(doc, "listen", list, [], where)
        )  # fmt: skip
        link = _get(doc, "link", dict, {}, where)
        journal = _get(doc, "journal", dict, {}, where)
        log = _get(doc, "log", dict, {}, where)
        alarms = _get(doc, "alarms", dict, {}, where)
        deadlines = _get(doc, "deadlines", dict, {}, where)
        messages = _get(doc, "messages", dict, {}, where)
        markings = _get(messages, "markings", list, list(DEFAULT_MARKINGS), where)
        if not markings or not all(isinstance(m, str) for m in markings) or len(set(markings)) != len(markings):
            raise ConfigError(f"{where}: [messages] markings must be a list of distinct texts, the default first")
        known = {"name", "passphrase", "listen", "link", "journal", "log", "alarms", "deadlines", "messages"}
        ack_deadlines = dict(DEFAULT_ACK_DEADLINES_S)
        for key, value in deadlines.items():
            if key not in ack_deadlines or not isinstance(value, int | float) or isinstance(value, bool) or value <= 0:
                raise ConfigError(f"{where}: [deadlines] {key} must be a positive number of seconds for a precedence")
            ack_deadlines[key] = float(value)
        config = Config(
            name=validate_name(_get(doc, "name", str, "", where)),
            listen=listen,
            passphrase=_get(doc, "passphrase", bool, True, where),
            heartbeat_ms=_get(link, "heartbeat_ms", int, 200, where),
            missed_heartbeats=_get(link, "missed_heartbeats", int, 3, where),
            window=_get(link, "window", int, 1024, where),
            synchronous=_get(journal, "synchronous", str, "FULL", where),
            log_level=_get(log, "level", str, "INFO", where),
            log_format=_get(log, "format", str, "text", where),
            hold_down_s=float(_get(link, "hold_down_s", int | float, 5.0, where)),
            test_interval_s=float(_get(link, "test_interval_s", int | float, 3600.0, where)),
            test_timeout_s=float(_get(link, "test_timeout_s", int | float, 30.0, where)),
            alarm_command=_get(alarms, "command", str, "", where),
            ack_deadlines_s=ack_deadlines,
            markings=tuple(validate_marking(m) for m in markings),
            journal_check_s=float(_get(journal, "check_interval_s", int | float, 60.0, where)),
            journal_whole_chain=_get(journal, "whole_chain_at_start", int, 50_000, where),
            extra={k: v for k, v in doc.items() if k not in known},
        )
    except ConfigError:
        raise
    except HotlineError as e:
        raise ConfigError(f"{where}: {e}") from None
    if not config.listen:
        raise ConfigError(f"{where}: no [[listen]] address")
    if config.log_format not in LOG_FORMATS:
        raise ConfigError(f"{where}: [log] format must be one of {', '.join(LOG_FORMATS)}, not {config.log_format!r}")
    if not 10 <= config.heartbeat_ms <= 60_000 or not 1 <= config.missed_heartbeats <= 100:
        raise ConfigError(f"{where}: heartbeat_ms must be 10-60000 and missed_heartbeats 1-100")
    if config.hold_down_s < 0 or config.test_interval_s < 1 or not 0 < config.test_timeout_s <= config.test_interval_s:
        raise ConfigError(f"{where}: hold_down_s >= 0, test_interval_s >= 1 and 0 < test_timeout_s <= test_interval_s")
    if not 0.05 <= config.journal_check_s <= 86_400:
        raise ConfigError(f"{where}: [journal] check_interval_s must be 0.05-86400 seconds")
    if config.journal_whole_chain < 0:
        raise ConfigError(f"{where}: [journal] whole_chain_at_start must be 0 or more entries")
    if not 1 <= config.window <= 65536:
        raise ConfigError(f"{where}: window must be 1-65536")
    return config


def parse_api_listen(text: str) -> tuple[str, int]:
    """``[HOST:]PORT`` for the console and API; the host defaults to 127.0.0.1, port 0 = any free."""
    host, sep, port = text.strip().rpartition(":")
    host = host.strip("[]") if sep else "127.0.0.1"
    if not host or not port.isdigit() or not 0 <= int(port) < 65536:
        raise ConfigError(f"invalid console address {text!r}: expected [HOST:]PORT, e.g. 127.0.0.1:8480")
    return host, int(port)
