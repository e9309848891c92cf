"""What every command group of the `hotline` command shares.

Opening a terminal's home, its keys and its journal; asking the running
terminal over the control socket; printing JSON and times; and the two options
every subcommand may take, ``--home`` and ``--json``. Each group (``setup``,
``peers``, ``messages``, ...) has a ``register(add)`` that adds its subcommands
through the ``add`` that ``main.build_parser`` hands it.
"""

from __future__ import annotations

import argparse
import getpass
import json
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

from hotline.core import times
from hotline.core.errors import ControlError, PassphraseError
from hotline.crypto.identity import Identity, fingerprint
from hotline.crypto.succession import signer_of
from hotline.home.config import JOURNAL_FILE, KEYS_FILE, Config, load_config, resolve_home
from hotline.home.keyfile import load_keys
from hotline.storage.backend import Storage, open_storage
from hotline.storage.integrity import refuse_if_damaged
from hotline.terminal.control import ControlClient

HOME_HELP = "terminal home folder (default: $HOTLINE_HOME)"

Command = Callable[[argparse.Namespace], int]


class Add(Protocol):
    """``build_parser``'s way to add a subcommand: with ``--home``, and ``--json`` if a listing."""

    def __call__(self, name: str, func: Command, help_text: str, listing: bool = False) -> argparse.ArgumentParser: ...


def home_option(parser: argparse.ArgumentParser) -> None:
    """``--home`` on a subcommand; left unset there, so a ``--home`` before the command still counts."""
    parser.add_argument("--home", help=HOME_HELP, default=argparse.SUPPRESS)


def json_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print one JSON document")


def now_ns() -> int:
    return time.time_ns()


def out_json(value: Any) -> None:
    json.dump(value, sys.stdout, ensure_ascii=False, indent=2, sort_keys=True)
    sys.stdout.write("\n")


def ts(ns: int | None) -> str:
    """A journal time for a person to read: RFC 3339, or "-" for none."""
    return times.rfc3339(ns) if ns else "-"


def ask_passphrase(config: Config | None, *, confirm: bool = False) -> str | None:
    """The key passphrase from $HOTLINE_PASSPHRASE or a prompt; None when the keys have none.

    ``config`` is None at ``init``, where the new passphrase is asked twice (``confirm``).
    """
    if config is not None and not config.passphrase:
        return None
    value = os.environ.get("HOTLINE_PASSPHRASE")
    if value:
        return value
    if value == "":
        raise PassphraseError("HOTLINE_PASSPHRASE is set but empty; an empty passphrase is not allowed "
                              "(use --no-passphrase at init for a demo terminal)")  # fmt: skip
    if not sys.stdin.isatty():
        what = "the new keys need a passphrase" if confirm else "the keys are passphrase-protected"
        raise PassphraseError(f"{what}: set HOTLINE_PASSPHRASE or run from a terminal")
    value = getpass.getpass("Hotline key passphrase: ")
    if confirm and getpass.getpass("Repeat the passphrase: ") != value:
        raise PassphraseError("the two passphrases differ")
    if not value:
        raise PassphraseError("an empty passphrase is not allowed; use --no-passphrase for a demo terminal")
    return value


def open_home(args: argparse.Namespace) -> tuple[Path, Config]:
    """The terminal's home (``--home`` or $HOTLINE_HOME) and its config: a clear error if it is none."""
    home = resolve_home(args.home)
    return home, load_config(home)


NEXT_KEYS = "keys.next.json"  # the new keys of a rotation or revocation, until it is journaled


def load_identity(home: Path, config: Config) -> Identity:
    passphrase = ask_passphrase(config)
    identity = load_keys(home / KEYS_FILE, passphrase)
    if (home / NEXT_KEYS).exists():
        identity = _finish_key_change(home, identity, passphrase)
    return identity


def _finish_key_change(home: Path, current: Identity, passphrase: str | None) -> Identity:
    """A `rotate-key` or `revoke` stopped between its two steps (journal the change; move the new keys
    into place): the journal decides. Its latest statement made by the key in place means the change
    was journaled, and the new keys are the terminal's now; otherwise it never happened."""
    with open_journal(home, readonly=True) as storage:
        statements = storage.store.own_statements()
    if statements and signer_of(statements[-1].statement) == current.public_key:
        new = load_keys(home / NEXT_KEYS, passphrase)
        os.replace(home / NEXT_KEYS, home / KEYS_FILE)
        print(f"note: finished an interrupted key change; the identity key is now {fingerprint(new.public_key)}; "
              "check `hotline card` before giving it out", file=sys.stderr)  # fmt: skip
        return new
    (home / NEXT_KEYS).unlink()
    return current


def open_journal(home: Path, *, readonly: bool = False) -> Storage:
    """The terminal's record and stores, to use as ``with open_journal(home) as storage:``."""
    return open_storage(home / JOURNAL_FILE, readonly=readonly)


def open_journal_to_record(home: Path) -> Storage:
    """The journal, for a command that records something while the terminal is stopped: refused,
    as the terminal refuses, while a check has found damage no supervisor has accepted."""
    storage = open_journal(home)
    try:
        refuse_if_damaged(storage.record)
    except BaseException:
        storage.close()
        raise
    return storage


def ask_running(home: Path, op: str) -> Any:
    """The running terminal's answer to ``op`` on the control socket; None if it does not answer."""
    try:
        with ControlClient(home, timeout=10) as client:
            return client.request(op)
    except ControlError:
        return None  # not running: the caller reads the journal (which the terminal reads when it starts)
