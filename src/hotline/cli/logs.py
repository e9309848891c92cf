"""How `hotline run` logs, to stderr in UTC: readable text (the default) or, with ``--log-format
json`` or ``[log] format = "json"``, one JSON object a line for a log shipper.

A JSON line has ``ts`` (RFC 3339, UTC), ``level``, ``logger`` and ``msg`` (the same words as the
text format), and ``message_id``, ``peer`` and ``path`` on every line that concerns them: the
engine passes them with ``extra=`` (``engine.links.about``). An exception's traceback is ``exc``.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from typing import Any

from hotline.core.times import rfc3339

TEXT_FORMAT = "%(asctime)s.%(msecs)03dZ %(levelname)s %(name)s: %(message)s"
CONTEXT_FIELDS = ("message_id", "peer", "path")  # what a line concerns, when it names them


class JsonFormatter(logging.Formatter):
    """One JSON object per record, on one line (newlines inside are escaped by JSON itself)."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "ts": rfc3339(int(record.created * 1_000_000_000)),
            "level": record.levelname,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for name in CONTEXT_FIELDS:
            value = getattr(record, name, None)
            if value is not None and value != "":
                line[name] = str(value)
        if record.exc_info:
            line["exc"] = self.formatException(record.exc_info)
        if record.stack_info:
            line["stack"] = self.formatStack(record.stack_info)
        return json.dumps(line, ensure_ascii=False)


def text_formatter() -> logging.Formatter:
    formatter = logging.Formatter(TEXT_FORMAT, datefmt="%Y-%m-%dT%H:%M:%S")
    formatter.converter = time.gmtime
    return formatter


def configure(level: str, log_format: str) -> None:
    """Send every logger's records at ``level`` and above to stderr, as text or JSON."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if log_format == "json" else text_formatter())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(getattr(logging, level.upper(), logging.INFO))
