"""``multipart/form-data`` uploads (RFC 7578), as browsers and ``curl -F`` send them, streamed.

The body is parsed as it arrives (python-multipart's push parser, in the request's worker thread);
each file part's bytes go on, through a small bounded queue, to the upload of that one file running
in a thread of its own, so a part is never held whole, and a slow store slows the reading of the
body. Parts are handled in order, one file at a time. A text field (``doc_type``) applies to the
files after it. A file part's name is taken from ``filename*`` (RFC 8187) if present, else from
``filename`` as UTF-8 (what browsers send), its last path segment only (old browsers sent a path).
"""

from __future__ import annotations

import queue
import re
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from typing import Any, Generic, TypeVar
from urllib.parse import unquote

from python_multipart.exceptions import MultipartParseError
from python_multipart.multipart import MultipartParser

from ledger.errors import SifaError

T = TypeVar("T")
MAX_FIELD = 4096  # a text field's bytes (a declared document type needs far less)
MAX_PARTS = 1000
_PARAM = re.compile(r';\s*([A-Za-z*]+)\s*=\s*("(?:[^"\\]|\\.)*"|[^;]*)')
_END = object()
_ABORT = object()


class MalformedFormError(SifaError):
    """A multipart/form-data body that does not parse, or holds no file."""

    code = "malformed_form"


@dataclass(frozen=True)
class FilePart:
    field: str
    filename: str
    media_type: str
    fields: dict[str, str]  # the text fields before this file


def disposition_params(value: str) -> dict[str, str]:
    """The parameters of a Content-Disposition value, unquoted (``filename*`` decoded per RFC 8187)."""
    out: dict[str, str] = {}
    for key, raw in _PARAM.findall(value):
        text = raw.strip()
        if text.startswith('"'):
            text = re.sub(r"\\(.)", r"\1", text[1:-1])
        key = key.lower()
        if key.endswith("*"):
            charset, _, rest = text.partition("'")
            _, _, encoded = rest.partition("'")
            if charset.lower() != "utf-8":
                raise MalformedFormError(f"{key} names charset {charset[:20]!r}; only UTF-8 is read")
            text = unquote(encoded, errors="strict")
        out[key] = text
    return out


def _basename(name: str) -> str:
    return re.split(r"[\\/]", name)[-1]


@dataclass(frozen=True)
class FormResult(Generic[T]):
    """What a form recorded: each file's result, in order; and, if the form was refused part-way after
    some files were recorded, why (the files after them were not)."""

    results: list[T]
    refused: SifaError | None = None


def form_files(
    chunks: Iterator[bytes], boundary: bytes, store: Callable[[FilePart, Iterator[bytes]], T]
) -> FormResult[T]:
    """Each file part of the form stored by ``store(part, its bytes)``, in order, until the first refusal.
    Raises MalformedFormError, UnicodeDecodeError (a header that is not UTF-8), or what ``store`` raises,
    when nothing was recorded; once something was, a refusal is returned beside what was recorded."""
    results: list[T] = []
    try:
        _parse(chunks, boundary, store, results)
    except (SifaError, UnicodeDecodeError) as exc:
        if not results:
            raise
        if isinstance(exc, UnicodeDecodeError):
            exc = MalformedFormError("a part's header or text field is not UTF-8")
        return FormResult(results, exc)
    return FormResult(results)


def _parse(chunks: Iterator[bytes], boundary: bytes, store: Callable[[FilePart, Iterator[bytes]], T],
           results: list[T]) -> None:  # fmt: skip
    fields: dict[str, str] = {}
    state: dict[str, Any] = {"headers": {}, "field": b"", "value": b"", "text": None, "name": "", "parts": 0}
    pool = ThreadPoolExecutor(1, thread_name_prefix="sifa-form")
    running: list[tuple[queue.Queue[object], Future[T]]] = []

    def send(item: object) -> None:
        q, future = running[0]
        while True:
            try:
                q.put(item, timeout=0.1)
                return
            except queue.Full:
                if future.done():  # the upload gave up (bad name, store full): its error, now
                    future.result()
                    raise MalformedFormError("the upload stopped reading its file") from None

    def on_part_begin() -> None:
        state["headers"] = {}
        state["parts"] += 1
        if state["parts"] > MAX_PARTS:
            raise MalformedFormError(f"a form may hold at most {MAX_PARTS} parts")

    def on_header_field(data: bytes, start: int, end: int) -> None:
        state["field"] += data[start:end]

    def on_header_value(data: bytes, start: int, end: int) -> None:
        state["value"] += data[start:end]

    def on_header_end() -> None:
        state["headers"][state["field"].decode("latin-1").lower()] = state["value"]
        state["field"], state["value"] = b"", b""

    def on_headers_finished() -> None:
        headers = state["headers"]
        params = disposition_params(headers.get("content-disposition", b"").decode("utf-8", errors="strict"))
        state["name"] = params.get("name", "")
        filename = params.get("filename*", params.get("filename"))
        if filename is None:
            state["text"] = b""
            return
        state["text"] = None
        media = headers.get("content-type", b"application/octet-stream").decode("ascii", errors="strict").strip()
        part = FilePart(state["name"], _basename(filename), media or "application/octet-stream", dict(fields))
        q: queue.Queue[object] = queue.Queue(maxsize=8)
        running.append((q, pool.submit(store, part, _drain(q))))

    def on_part_data(data: bytes, start: int, end: int) -> None:
        if state["text"] is not None:
            state["text"] += data[start:end]
            if len(state["text"]) > MAX_FIELD:
                raise MalformedFormError(f"a text field holds at most {MAX_FIELD} bytes")
        elif end > start:
            send(bytes(data[start:end]))

    def on_part_end() -> None:
        if state["text"] is not None:
            fields[state["name"]] = state["text"].decode("utf-8", errors="strict")
            state["text"] = None
            return
        send(_END)
        _, future = running.pop()
        results.append(future.result())

    callbacks: Any = {"on_part_begin": on_part_begin, "on_header_field": on_header_field,
                      "on_header_value": on_header_value, "on_header_end": on_header_end,
                      "on_headers_finished": on_headers_finished, "on_part_data": on_part_data,
                      "on_part_end": on_part_end}  # fmt: skip
    parser = MultipartParser(boundary, callbacks)
    try:
        for chunk in chunks:
            parser.write(chunk)
        parser.finalize()
    except MultipartParseError as exc:
        raise MalformedFormError(f"the form does not parse as multipart/form-data: {exc}"[:300]) from None
    finally:
        for q, future in running:  # a part cut off: its upload stops, nothing of it recorded
            _abort(q, future)
        pool.shutdown(wait=True)
    if running or not results:
        raise MalformedFormError("the form holds no complete file part (send each file with a filename)")


def _abort(q: queue.Queue[object], future: Future[Any]) -> None:
    while not future.done():
        try:
            q.put(_ABORT, timeout=0.1)
            break
        except queue.Full:
            continue
    wait([future])  # cancelled or failed: it is being abandoned either way


def _drain(q: queue.Queue[object]) -> Iterator[bytes]:
    while (item := q.get()) is not _END:
        if item is _ABORT:
            raise ConnectionAbortedError("the form was cut off inside this file")
        assert isinstance(item, bytes)
        yield item
