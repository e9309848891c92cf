"""Wires a terminal to the servers it runs beside (the HTTP API and console): the one place that knows both.

The terminal daemon knows nothing of the web layer; the web layer talks to the
terminal through ``terminal.port.TerminalPort``. Whoever starts a terminal
(``hotline run``) calls ``run_terminal`` here, which hands the daemon the
servers its config asks for.
"""

from __future__ import annotations

from pathlib import Path

from hotline.crypto.identity import Identity
from hotline.home.config import Config


def run_terminal(home: Path, config: Config, identity: Identity) -> None:
    """Run the terminal in the foreground until it is stopped (SIGTERM, SIGINT)."""
    from hotline.terminal.daemon import run_terminal as run_daemon

    run_daemon(home, config, identity)
