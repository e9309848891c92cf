"""The SQLite implementation of the storage Protocols: the only place with SQL."""
