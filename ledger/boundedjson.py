"""One JSON reader for untrusted bytes: bounded in size and nesting depth before it parses.

``json.loads`` recurses once per nesting level, so ``"[" * 100000`` raises RecursionError (not
ValueError) out of any parser that catches only what malformed JSON raises. Every parse of input that
crossed a trust boundary (a package, a receipt, a trust file, a proof, a monitor's state, a log
server's answer, a peers file) goes through :func:`loads`, which refuses too deep or too large input
with :class:`JSONBoundError` — a ``json.JSONDecodeError``, so every caller's existing ``except
ValueError`` reports it as the malformed input it is.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

MAX_DEPTH = 64  # sifa's own documents nest at most a handful of levels
MAX_BYTES = 64 << 20

# A string literal, escapes included; an unterminated one runs to the end (so the scan never backtracks).
_STRING = re.compile(r'"(?:[^"\\]|\\.)*(?:"|\\?\Z)', re.S)
_NOT_BRACKET = re.compile(r"[^\[\]{}]+")


class JSONBoundError(json.JSONDecodeError):
    """JSON nested deeper than the bound, or larger than it (a ValueError)."""

    def __init__(self, message: str) -> None:
        super().__init__(message, "", 0)
        self.args = (message,)  # the message alone: there is no position worth naming


def depth(text: str) -> int:
    """How deep the arrays and objects of JSON text nest (brackets inside strings do not count)."""
    if text.count("[") + text.count("{") == 0:
        return 0
    brackets = _NOT_BRACKET.sub("", _STRING.sub("", text))
    deepest = level = 0
    for c in brackets:
        if c in "[{":
            level += 1
            deepest = max(deepest, level)
        else:
            level -= 1
    return deepest


def loads(data: str | bytes | bytearray, *, max_depth: int = MAX_DEPTH, max_bytes: int = MAX_BYTES) -> Any:
    """``json.loads`` for untrusted input. Raises JSONBoundError (too deep or too large), ValueError
    (not JSON, UnicodeDecodeError included)."""
    if len(data) > max_bytes:
        raise JSONBoundError(f"JSON over {max_bytes} bytes")
    if isinstance(data, (bytes, bytearray)):
        text = bytes(data).decode(json.detect_encoding(data), "surrogatepass")
    else:
        text = data
    # Cheap first: fewer opening brackets than the bound cannot nest deeper than it.
    if text.count("[") + text.count("{") > max_depth and depth(text) > max_depth:
        raise JSONBoundError(f"JSON nested deeper than {max_depth} levels")
    return json.loads(text)


def load_path(path: Path, *, max_depth: int = MAX_DEPTH, max_bytes: int = MAX_BYTES) -> Any:
    """A JSON file, read at most ``max_bytes`` + 1 bytes. Raises OSError, JSONBoundError, ValueError."""
    with path.open("rb") as f:
        data = f.read(max_bytes + 1)
    return loads(data, max_depth=max_depth, max_bytes=max_bytes)
