"""Every decision between the links and the journal, without asyncio.

May import ``storage`` (its Protocols), ``home``, ``crypto`` and ``core``.
"""
