"""The SQLite implementation of the storage interfaces."""
