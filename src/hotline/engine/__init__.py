"""Every decision between the links and the journal, without asyncio."""
