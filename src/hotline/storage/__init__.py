"""The journal and the record tables, behind the interfaces of ``storage.base``."""
