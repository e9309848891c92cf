"""`hotline backup` and `hotline restore`: a hot backup of a home, and bringing one back safely."""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any

from hotline.cli.common import Add, now_ns, open_home, open_journal, out_json
from hotline.core.errors import ControlError
from hotline.terminal.backup import restore_backup, write_backup
from hotline.terminal.control import ControlClient


def cmd_backup(args: argparse.Namespace) -> int:
    home, config = open_home(args)
    dest = Path(args.output).resolve()
    try:
        with ControlClient(home, timeout=600) as client:
            result: dict[str, Any] = client.request("backup", path=str(dest))
    except ControlError as e:
        if "no running terminal" not in str(e):
            raise
        with open_journal(home, readonly=True) as storage:  # stopped: take it here
            result = write_backup(home, config, storage.record, dest, now_ns())
    if args.json:
        out_json(result)
        return 0
    print(f"backup of {result['terminal']} written to {result['file']} ({result['size']} bytes): "
          f"{result['entries']} journal entries, head hash {result['head_hash']}, "
          f"taken {result['taken_at']}")  # fmt: skip
    if not result["keys_encrypted"]:
        print("warning: this home's keys have no passphrase (a demo terminal): the backup holds them unencrypted")
    else:
        print("the keys in it are encrypted under the terminal's passphrase, as at rest")
    return 0


def cmd_restore(args: argparse.Namespace) -> int:
    target = args.home or os.environ.get("HOTLINE_HOME")
    if not target:
        raise ControlError("restore needs --home DIR: an empty or new folder to restore into")
    by = f"cli:{os.environ.get('USER') or os.environ.get('LOGNAME') or 'unknown'}"
    result = restore_backup(Path(args.file), Path(target).resolve(), now_ns(), by)
    if args.json:
        out_json(result)
        return 0
    print(f"restored {result['terminal']} (backup of {result['taken_at']}) into {result['home']}: "
          f"journal OK, {result['verified_entries']} entries")  # fmt: skip
    if result["peers_to_rekey"]:
        print(f"marked for a re-key before anything is sent: {', '.join(result['peers_to_rekey'])} "
              "(the restored ratchets are older than the ones last used; `hotline run` re-keys first)")  # fmt: skip
    return 0


def register(add: Add) -> None:
    b = add("backup", cmd_backup, "write a consistent backup of this terminal's home (hot, if it runs)", listing=True)
    b.add_argument("-o", "--output", required=True, help="the backup file to write (must not exist)")
    r = add("restore", cmd_restore, "restore a backup into an empty home; every peer is re-keyed before use",
            listing=True)  # fmt: skip
    r.add_argument("file", help="a file written by `hotline backup`")
