"""The asyncio daemon: listeners, dialers, timers and the local control socket."""
