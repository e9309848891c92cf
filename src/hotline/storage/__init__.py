"""The record and the tables beside it, behind the Protocols of ``storage.base``; audit and integrity checks.

May import ``crypto`` and ``core``. Only ``storage.backend`` names a backend (``storage.sqlite``).
"""
