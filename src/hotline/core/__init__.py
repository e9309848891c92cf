"""The pure core: model, errors, wire, protocol, delivery, paths, alarms, supervision, the access model.

No I/O, no clock, no event loop (no os, time, asyncio, socket, ssl, sqlite3); imports nothing of ours.
"""
