"""Wires a terminal to the servers it runs beside (the HTTP API and console): the one place that knows both.

The terminal daemon knows nothing of the web layer; the web layer talks to the
terminal through ``terminal.port.TerminalPort``. Whoever starts a terminal
(``hotline run``) calls ``run_terminal`` here, which hands the daemon the
servers its config asks for.
"""

from __future__ import annotations

from pathlib import Path

from hotline.crypto.identity import Identity
from hotline.home.config import Config, parse_api_listen
from hotline.terminal.port import Service, TerminalPort


def run_terminal(home: Path, config: Config, identity: Identity) -> None:
    """Run the terminal in the foreground until it is stopped (SIGTERM, SIGINT)."""
    from hotline.terminal.daemon import run_terminal as run_daemon

    run_daemon(home, config, identity, services(home, config))


def services(home: Path, config: Config) -> list[Service]:
    """The servers the config asks for: the HTTP API and console if it has ``[api] listen``.

    ``hotline.web`` is imported only then: it pulls in starlette and uvicorn."""
    section = config.extra.get("api")
    if not isinstance(section, dict) or not section.get("listen"):
        return []
    host, port = parse_api_listen(str(section["listen"]))
    minutes = int(section.get("session_minutes", 480))
    from hotline.web.server import serve_api

    async def api(terminal: TerminalPort) -> None:
        await serve_api(terminal, home=home, host=host, port=port, session_minutes=minutes)

    return [api]
