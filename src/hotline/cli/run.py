"""`hotline run`: the terminal itself, in the foreground, logging to stderr in UTC."""

from __future__ import annotations

import argparse
import logging
import sys
import time

from hotline.cli.common import Add, load_identity, open_home


def cmd_run(args: argparse.Namespace) -> int:
    home, config = open_home(args)
    logging.basicConfig(
        level=getattr(logging, (args.log_level or config.log_level).upper(), logging.INFO),
        format="%(asctime)s.%(msecs)03dZ %(levelname)s %(name)s: %(message)s",
        datefmt="%Y-%m-%dT%H:%M:%S",
        stream=sys.stderr,
    )
    logging.Formatter.converter = time.gmtime
    identity = load_identity(home, config)
    from hotline.app import run_terminal

    run_terminal(home, config, identity)
    return 0


def register(add: Add) -> None:
    p = add("run", cmd_run, "run the terminal in the foreground (SIGTERM or Ctrl-C stops it)")
    p.add_argument("--log-level", choices=["DEBUG", "INFO", "WARNING", "ERROR"], help="override the config")
