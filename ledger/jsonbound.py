"""JSON with bounded nesting: ``loads`` refuses text nested deeper than ``max_depth`` before
``json.loads`` sees it, so hostile input ("[[[[…") is a ValueError, never a RecursionError.

(Another branch adds a reader of the same kind for other inputs; the two are to be unified.)
"""

from __future__ import annotations

import json
from typing import Any, Final

MAX_DEPTH: Final = 64


class TooDeepError(ValueError):
    """JSON nested deeper than allowed (a ValueError, as json.loads's own errors are)."""


def check_depth(text: str | bytes, max_depth: int = MAX_DEPTH) -> None:
    """Raise TooDeepError when arrays and objects in ``text`` nest deeper than ``max_depth``: one
    linear scan, brackets inside strings not counted."""
    data = text.encode("utf-8", "surrogatepass") if isinstance(text, str) else bytes(text)
    depth, in_string, escaped = 0, False, False
    for byte in data:
        if in_string:
            if escaped:
                escaped = False
            elif byte == 0x5C:  # backslash
                escaped = True
            elif byte == 0x22:  # quote
                in_string = False
        elif byte == 0x22:
            in_string = True
        elif byte in (0x5B, 0x7B):  # [ {
            depth += 1
            if depth > max_depth:
                raise TooDeepError(f"JSON nested deeper than {max_depth} levels")
        elif byte in (0x5D, 0x7D):  # ] }
            depth -= 1


def loads(text: str | bytes, max_depth: int = MAX_DEPTH) -> Any:
    """``json.loads`` of ``text`` nested at most ``max_depth`` deep. Raises ValueError (TooDeepError,
    json.JSONDecodeError, or an integer too long to convert)."""
    check_depth(text, max_depth)
    return json.loads(text)
