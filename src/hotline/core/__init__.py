"""The pure core: no I/O, no clock, no asyncio, no sqlite3 (enforced by import-linter)."""
