"""Hotline: a direct, end-to-end encrypted, always-tested link between a few parties."""

__version__ = "0.1.0"
