"""The ``hotline`` command."""
