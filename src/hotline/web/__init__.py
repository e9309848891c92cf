"""The HTTP API and the web console served by the terminal."""
