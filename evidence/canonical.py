"""RFC 8785 (JSON Canonicalization Scheme) for the values a ``sifa-leaf/2`` leaf holds: pure, stdlib only."""

from __future__ import annotations

import json
from typing import Any, Final

SAFE_INT: Final = 2**53 - 1  # RFC 8785 §3.2.2.3: integers beyond IEEE-754 double precision are not portable


def canonical_json(value: Any) -> bytes:
    """RFC 8785 bytes of a value built of str, int (|n| < 2^53), bool, None, lists and str-keyed objects.

    Raises ValueError for anything else (floats included: no leaf holds one) and for lone surrogates.
    """
    if check_types(value):  # code-point order is UTF-16 order: the stdlib's sorted, compact JSON is RFC 8785
        text = json.dumps(value, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
    else:
        out: list[str] = []
        _write(value, out)
        text = "".join(out)
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("a text holds a lone surrogate, which has no UTF-8 form") from None


def check_types(value: Any) -> bool:
    """Check the value's types; True unless an object key has a character beyond U+FFFF.

    Sorting keys by code point and by UTF-16 code unit (RFC 8785 §3.2.3) differ only there.
    ECMAScript's and Python's string escapes agree (both: \\b \\t \\n \\f \\r, \\u00xx lower case).
    """
    plain, stack = True, [value]
    while stack:
        v = stack.pop()
        if v is None or isinstance(v, (str, bool)):
            continue
        if isinstance(v, int):
            if not -SAFE_INT <= v <= SAFE_INT:
                raise ValueError(f"integer {v} is outside RFC 8785's exact range")
        elif isinstance(v, dict):
            for k in v:
                if not isinstance(k, str):
                    raise ValueError(f"object key {k!r} is not a text")
                if plain and not k.isascii() and max(map(ord, k)) > 0xFFFF:
                    plain = False
            stack.extend(v.values())
        elif isinstance(v, list):
            stack.extend(v)
        else:
            raise ValueError(f"a leaf holds no {type(v).__name__}")
    return plain


def _write(v: Any, out: list[str]) -> None:
    if isinstance(v, dict):
        out.append("{")
        for i, k in enumerate(sorted(v, key=lambda k: k.encode("utf-16-be", "surrogatepass"))):
            out.append("," if i else "")
            out.append(json.dumps(k, ensure_ascii=False) + ":")
            _write(v[k], out)
        out.append("}")
    elif isinstance(v, list):
        out.append("[")
        for i, item in enumerate(v):
            out.append("," if i else "")
            _write(item, out)
        out.append("]")
    else:
        out.append(json.dumps(v, ensure_ascii=False))
