"""The HTTP API and the web console served beside a terminal, and their shared request handling.

May import ``terminal.port`` (not the daemon), ``engine``, ``storage``, ``home``, ``crypto``, ``core``.
"""
