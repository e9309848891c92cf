"""Strict JSON: what Python's ``json`` module lets through, and Hotline must not.

``json.loads`` accepts a repeated key (the last one silently wins, so two readers
of the same text may disagree about it), the non-JSON words ``NaN``,
``Infinity`` and ``-Infinity``, numbers too large for a float (they become
``inf``), and escapes of lone surrogates (``"\\ud800"``: it parses, but can be
written as UTF-8 nowhere later). The hooks below refuse the first three where
they are met; ``loads`` uses them all and also refuses the last and any nesting
deep enough to exhaust the parser. Every refusal is a ``StrictJSONError`` (a
``ValueError``) whose text names what was wrong.

Contact cards use the first two hooks (``crypto.identity``); request bodies the
whole of ``loads`` (``web.forms``).
"""

from __future__ import annotations

import json
import math
from typing import Any


class StrictJSONError(ValueError):
    """Text that ``json`` would accept, refused."""


class DuplicateKey(StrictJSONError):
    def __init__(self, key: str) -> None:
        super().__init__(f"the key {key[:60]!r} appears twice")
        self.key = key


class NotANumber(StrictJSONError):
    def __init__(self, name: str) -> None:
        super().__init__(f"{name} is not a JSON number")
        self.name = name  # NaN, Infinity or -Infinity


class NumberTooLarge(StrictJSONError):
    def __init__(self, text: str) -> None:
        super().__init__(f"{text[:40]} is too large a number")


class LoneSurrogate(StrictJSONError):
    def __init__(self) -> None:
        super().__init__("the text holds a lone surrogate, which is not valid Unicode")


class TooDeep(StrictJSONError):
    def __init__(self) -> None:
        super().__init__("the value is nested too deeply")


def unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """``object_pairs_hook``: an object whose keys are all different, else ``DuplicateKey``."""
    value: dict[str, Any] = {}
    for key, item in pairs:
        if key in value:
            raise DuplicateKey(key)
        value[key] = item
    return value


def no_constants(name: str) -> Any:
    """``parse_constant``: NaN, Infinity and -Infinity are not JSON."""
    raise NotANumber(name)


def finite_float(text: str) -> float:
    """``parse_float``: a number that fits a float, else ``NumberTooLarge`` (not ``inf``)."""
    value = float(text)
    if not math.isfinite(value):
        raise NumberTooLarge(text)
    return value


def loads(data: str | bytes) -> Any:
    """Parse ``data`` as JSON strictly: every hook above, no lone surrogate, no nesting too deep.

    Malformed text raises ``json.JSONDecodeError`` and bytes that are not UTF-8
    ``UnicodeDecodeError``, as from ``json.loads``; both are ``ValueError`` too.
    """
    try:
        value = json.loads(data, object_pairs_hook=unique_keys, parse_constant=no_constants, parse_float=finite_float)
        json.dumps(value, ensure_ascii=False).encode("utf-8")  # a lone surrogate fails here
    except UnicodeEncodeError:
        raise LoneSurrogate() from None
    except RecursionError:
        raise TooDeep() from None
    return value
