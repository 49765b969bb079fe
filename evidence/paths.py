"""Field paths: an event body flattened to ``/``-joined paths (RFC 6901 escaping, list items by index)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Final

from evidence.canonical import SAFE_INT, check_types

MAX_INDEX: Final = 100_000  # a list index beyond this in a path is refused (no event holds such lists)


def escape(key: str) -> str:
    # SPEC: RFC 6901 §3 "'~' needs to be encoded as '~0' and '/' needs to be encoded as '~1'"
    return key.replace("~", "~0").replace("/", "~1")


def unescape(segment: str) -> str:
    # SPEC: RFC 6901 §4 "first transforming any occurrence of '~1' to '/', and then ... '~0' to '~'"
    return segment.replace("~1", "/").replace("~0", "~")


def index_of(segment: str) -> int | None:
    """The list index a path segment names (a decimal without leading zeroes), else None."""
    if segment.isascii() and segment.isdigit() and (segment == "0" or segment[0] != "0"):
        return int(segment)
    return None


def flatten(body: Mapping[str, Any]) -> dict[str, Any]:
    """Every scalar of ``body`` under its path; an empty list or object is a value under its own path.

    Raises ValueError for an object key that reads as a list index (``unflatten`` could not tell it
    from a list) or a value outside ``canonical_json``'s types.
    """
    out: dict[str, Any] = {}

    def walk(path: str, v: Any) -> None:
        if isinstance(v, dict) and v:
            for k, x in v.items():
                walk(f"{path}/{_key(k)}", x)
        elif isinstance(v, list) and v:
            for i, x in enumerate(v):
                walk(f"{path}/{i}", x)
        else:
            t = type(v)
            if not (t is str or v is None or t is bool or (t is int and -SAFE_INT <= v <= SAFE_INT)):
                check_types(v)  # an empty list or object passes; anything else raises
            out[path] = v

    for k, v in body.items():
        t = type(v)
        if (t is str or v is None or t is bool or (t is int and -SAFE_INT <= v <= SAFE_INT)) and type(
            k
        ) is str and k.isidentifier():  # fmt: skip
            out[k] = v  # the common case: a field holding a scalar
        else:
            walk(_key(k), v)
    return out


def _key(k: Any) -> str:
    if type(k) is str and k.isidentifier():  # the common case: an event's field names
        return k
    if not isinstance(k, str):
        raise ValueError(f"object key {k!r} is not a text")
    if index_of(k) is not None:
        raise ValueError(f"object key {k!r} reads as a list index")
    return escape(k)


class _Node(dict[str, Any]):
    """An object or list being rebuilt by ``unflatten``."""


def unflatten(values: Mapping[str, Any], *, missing: Any = None) -> dict[str, Any]:
    """The nested object ``flatten`` was given, from some or all of its paths (for display).

    List items not given are ``missing``. Raises ValueError when paths disagree on the shape
    (a value where another path needs an object or list, a list index beside an object key).
    """
    root = _Node()
    for path, value in values.items():
        segments = [unescape(s) for s in path.split("/")]
        node = root
        for seg in segments[:-1]:
            child = node.setdefault(seg, _Node())
            if not isinstance(child, _Node):
                raise ValueError(f"path {path!r} goes through a value")
            node = child
        if segments[-1] in node:
            raise ValueError(f"path {path!r} is given twice or also holds other paths")
        node[segments[-1]] = value
    built = _build(root, missing)
    if not isinstance(built, dict):
        raise ValueError("the top level is an object, not a list")
    return built


def _build(node: _Node, missing: Any) -> dict[str, Any] | list[Any]:
    indices = [index_of(k) for k in node]
    if node and all(i is not None for i in indices):
        top = max(i for i in indices if i is not None)
        if top > MAX_INDEX:
            raise ValueError(f"list index {top} is too large")
        items = [missing] * (top + 1)
        for k, i in zip(node, indices, strict=True):
            assert i is not None
            items[i] = _value(node[k], missing)
        return items
    if any(i is not None for i in indices):
        raise ValueError("a list index beside an object key")
    return {k: _value(v, missing) for k, v in node.items()}


def _value(v: Any, missing: Any) -> Any:
    if not isinstance(v, _Node):
        return v
    return _build(v, missing)


def check_shape(paths: Iterable[str]) -> None:
    """Raise ValueError unless ``paths`` are exactly what ``flatten`` makes of some object (lists dense)."""
    paths = list(paths)
    for path in paths:
        if any(escape(unescape(seg)) != seg for seg in path.split("/")):
            raise ValueError(f"path {path!r} is not escaped as RFC 6901 does")
    hole = object()
    stack: list[Any] = [unflatten(dict.fromkeys(paths, 0), missing=hole)]
    while stack:
        v = stack.pop()
        if v is hole:
            raise ValueError("a list misses an item")
        if isinstance(v, dict):
            stack.extend(v.values())
        elif isinstance(v, list):
            stack.extend(v)
