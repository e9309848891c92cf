"""The `hotline` command.

Every listing takes ``--json`` and then prints exactly one JSON document on
stdout. Errors go to stderr as one line a person can act on, with exit code 1
(2 for usage errors, from argparse). ``HOTLINE_HOME`` stands in for ``--home``.

Each command group is a module of ``hotline.cli`` with a ``register(add)`` that
adds its subcommands; this one assembles them, in the order ``--help`` lists them.
"""

from __future__ import annotations

import argparse
import os
import sys

from hotline import __version__
from hotline.cli import (
    access,
    backups,
    channels,
    demo,
    desk,
    journal,
    keys,
    messages,
    notify,
    peers,
    record,
    run,
    setup,
    status,
)
from hotline.cli.common import HOME_HELP, Command, home_option, json_option
from hotline.core.errors import HotlineError

EPILOG = """\
examples:
  hotline init --home ~/dc-washington --name washington --listen 127.0.0.1:7401
  hotline --home ~/dc-washington card > washington.card
  hotline --home ~/dc-washington pair moscow.card      # read the safety number aloud
  hotline --home ~/dc-washington run                   # the terminal, in the foreground
  hotline --home ~/dc-washington send --to moscow --precedence flash "Call in ten minutes"
  hotline --home ~/dc-washington outbox --json

HOTLINE_HOME may replace --home; HOTLINE_PASSPHRASE supplies the key passphrase.
"""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="hotline",
        description="Hotline: a direct, end-to-end encrypted, always-tested link between a few parties.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--home", help=HOME_HELP)
    parser.add_argument("--version", action="version", version=f"hotline {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def add(name: str, func: Command, help_text: str, listing: bool = False) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_text, description=help_text)
        home_option(p)
        if listing:
            json_option(p)
        p.set_defaults(func=func)
        return p

    # The groups, in the order `hotline --help` lists their commands.
    setup.register(add)  # init, card
    peers.register(add)  # pair, peers, verify
    keys.register(add)  # rotate-key, revoke
    run.register(add)  # run
    messages.register(add)  # send, inbox, outbox, attachment, ack
    status.register(add)  # alarms, status
    desk.register(add)  # call, calls, readout, commitment, commitments
    channels.register(add)  # channel, channels
    notify.register(add)  # notify, notifications, notification
    record.register(add)  # record report
    access.register(add)  # user, token
    journal.register(add)  # journal verify, journal export
    backups.register(add)  # backup, restore
    demo.register(add)  # demo
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not hasattr(args, "home"):
        args.home = None
    try:
        return int(args.func(args))
    except HotlineError as e:
        print(f"hotline: error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # The reader went away (`hotline journal export | head`): not an error worth a traceback.
        # Point stdout at /dev/null so the interpreter's own final flush does not fail again.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141  # 128 + SIGPIPE, as a shell reports a pipe's writer stopped by it


if __name__ == "__main__":
    sys.exit(main())
