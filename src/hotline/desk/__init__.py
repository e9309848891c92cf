"""The work around the link, coming next: calls proposed and held, readouts, commitments, formatted
notifications, channels.

Each will be a pure state machine here (sans-IO, like ``core``), its records stored through the
Protocols of ``storage.base`` and exchanged by the engine. May import ``crypto`` and ``core`` only.
"""
