"""`hotline run`: the terminal itself, in the foreground, logging to stderr in UTC (text or JSON: ``logs``)."""

from __future__ import annotations

import argparse

from hotline.cli import logs
from hotline.cli.common import Add, load_identity, open_home
from hotline.home.config import LOG_FORMATS


def cmd_run(args: argparse.Namespace) -> int:
    home, config = open_home(args)
    logs.configure(args.log_level or config.log_level, args.log_format or config.log_format)
    identity = load_identity(home, config)
    from hotline.app import run_terminal

    run_terminal(home, config, identity)
    return 0


def register(add: Add) -> None:
    p = add("run", cmd_run, "run the terminal in the foreground (SIGTERM or Ctrl-C stops it)")
    p.add_argument("--log-level", choices=["DEBUG", "INFO", "WARNING", "ERROR"], help="override the config")
    p.add_argument(
        "--log-format",
        choices=LOG_FORMATS,
        help="text (the default) or json: one JSON object a line with ts, level, logger, msg and the "
        "message_id, peer and path a line concerns; overrides [log] format",
    )
