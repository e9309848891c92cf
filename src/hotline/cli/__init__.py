"""The ``hotline`` command, one module per command group; ``main`` assembles the parser.

May import every layer below it.
"""
