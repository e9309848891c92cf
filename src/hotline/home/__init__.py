"""A terminal's home folder: its config file and its key files at rest.

May import ``crypto`` and ``core``.
"""
