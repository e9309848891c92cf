"""The work around the link: calls, readouts, commitments, notifications, channels."""
