"""The asyncio daemon: listeners, dialers, timers, the control socket, the journal watch.

May import ``engine`` and below. ``terminal.port`` is what the servers beside it (web) may use.
"""
