"""Reading a tar stream (POSIX ustar, PAX, GNU long names) once, front to back, with bounded reads.

A package arrives from another court or from a request body: nothing in it is trusted, its sizes
least of all. Every size is checked before it is used (0 ≤ size ≤ what may remain of the stream,
and an extended header at most MAX_EXTENDED bytes), every read asks for at most one chunk, and a
member's bytes pass through in chunks, never held whole.

What the reader accepts is what Python's ``tarfile`` yields for the same bytes, minus what a
package never holds (tests/test_tarstream.py compares the two on mutated archives):

- regular files (types ``0``, ``\\0``, ``7``) and directories of size 0 (skipped); links, devices,
  fifos, sparse files and unknown types are refused;
- one extended header per member, a PAX ``x`` or a GNU long name ``L``; PAX records parsed as
  ``tarfile`` parses them, but a ``size`` must be a canonical decimal and names valid UTF-8;
  a PAX global header ``g`` is refused unless it says nothing;
- the end of the archive is a zero block or the end of the stream at a header boundary (as in
  ``tarfile``, which also stops silently at a damaged header: here that is refused).

Raises MalformedPackageError for bytes that are not such a tar stream, EOFError when the stream
ends inside a header or a member.
"""

from __future__ import annotations

import re
import tarfile
from collections.abc import Iterator
from typing import Protocol

from ledger.errors import MalformedError

BLOCK = 512
MAX_EXTENDED = 1 << 20  # a PAX header or GNU long name: a name and a size need far less
CHUNK = 1 << 20  # the most one read asks of the stream
REGULAR = (tarfile.REGTYPE, tarfile.AREGTYPE, tarfile.CONTTYPE)
ZERO = b"\0" * BLOCK
# SPEC: POSIX.1-2008 pax "<length> <keyword>=<value>\n"; parsed as CPython's tarfile does (_proc_pax).
_RECORD = re.compile(rb"(\d+) ([^=]+)=")
_HDRCHARSET = re.compile(rb"\d+ hdrcharset=([^\n]+)\n")


class MalformedPackageError(MalformedError):
    code = "malformed_package"


class Readable(Protocol):
    """What a package is read from: a file, an HTTP response, a request body."""

    def read(self, n: int = -1, /) -> bytes: ...


class Member:
    """One regular file of the stream: read its bytes once, in chunks, before the next member."""

    def __init__(self, name: str, size: int, stream: Readable) -> None:
        self.name, self.size, self._stream = name, size, stream
        self._left = size

    def chunks(self, most: int = CHUNK) -> Iterator[bytes]:
        while self._left > 0:
            chunk = self._stream.read(min(most, self._left))
            if not chunk:
                raise EOFError(f"the stream ends inside {self.name}")
            self._left -= len(chunk)
            yield chunk

    def finish(self) -> None:
        for _ in self.chunks():
            pass
        exact(self._stream, -self.size % BLOCK)


def exact(stream: Readable, n: int) -> bytes:
    """Exactly ``n`` bytes (n ≤ MAX_EXTENDED), read in chunks. Raises EOFError."""
    out = bytearray()
    while len(out) < n:
        chunk = stream.read(min(n - len(out), CHUNK))
        if not chunk:
            raise EOFError(f"the stream ends {n - len(out)} bytes early")
        out += chunk
    return bytes(out)


def _header(stream: Readable) -> bytes:
    """The next 512-byte header block; b"" at the end of the stream. Raises EOFError inside one."""
    out = bytearray()
    while len(out) < BLOCK:
        chunk = stream.read(BLOCK - len(out))
        if not chunk:
            if out:
                raise EOFError(f"the stream ends {BLOCK - len(out)} bytes inside a header")
            return b""
        out += chunk
    return bytes(out)


def _claim(size: int, left: int, what: str, most: int | None = None) -> int:
    """``size`` rounded up to whole blocks, if 0 ≤ size (≤ most) and that much may still follow."""
    padded = size + -size % BLOCK
    if size < 0 or (most is not None and size > most) or padded > left:
        raise MalformedPackageError(f"{what} claims {size} bytes; at most {min(left, most or left)} may follow")
    return padded


def pax_records(data: bytes) -> dict[str, bytes]:
    """The records of a PAX header, keyword → raw value, as tarfile reads them: from the start,
    while a record matches; a later record of the same keyword wins. Raises MalformedPackageError."""
    out: dict[str, bytes] = {}
    pos = 0
    while (found := _RECORD.match(data, pos)) is not None:
        length = int(found.group(1))
        if length == 0:
            raise MalformedPackageError("a PAX record of length 0")
        try:
            keyword = found.group(2).decode("utf-8")
        except UnicodeDecodeError:
            raise MalformedPackageError("a PAX keyword is not UTF-8") from None
        out[keyword] = data[found.end(2) + 1 : found.start(1) + length - 1]
        pos += length
    charset = _HDRCHARSET.search(data)
    if charset is not None:
        try:
            out.setdefault("hdrcharset", charset.group(1).decode("utf-8").encode())
        except UnicodeDecodeError:
            raise MalformedPackageError("a PAX hdrcharset is not UTF-8") from None
    return out


def _pax_size(value: bytes) -> int:
    text = value.decode("ascii", "replace")
    if not text.isascii() or not text.isdigit() or str(int(text)) != text:
        raise MalformedPackageError(f"a PAX size {text[:40]!r} is not a decimal number of bytes")
    return int(text)


def _utf8(value: bytes, what: str) -> str:
    try:
        return value.decode("utf-8")
    except UnicodeDecodeError:
        raise MalformedPackageError(f"{what} is not UTF-8") from None


def tar_members(stream: Readable, limit: int) -> Iterator[Member]:
    """The regular files of a tar stream of at most ``limit`` bytes, each to be read (or skipped
    by ``finish``) before the next is asked for. Raises MalformedPackageError, EOFError."""
    left = limit  # what may remain of the stream
    extended: tuple[str | None, int | None] | None = None  # (name, size) from an extended header
    header_seen = need_member = False
    while True:
        header = _header(stream)
        if not header or header == ZERO:
            if not header and not header_seen:
                raise EOFError("the stream is empty")
            if need_member:
                raise MalformedPackageError("an extended header is not followed by its member")
            return  # the end-of-archive block, or the end of the stream at a header boundary
        header_seen = True
        left -= _claim(BLOCK, left, "a header")
        try:
            info = tarfile.TarInfo.frombuf(header, "utf-8", "surrogateescape")
        except tarfile.HeaderError as exc:
            raise MalformedPackageError(f"a damaged tar header: {exc}") from None
        if info.type in (tarfile.XHDTYPE, tarfile.XGLTYPE, tarfile.GNUTYPE_LONGNAME):
            padded = _claim(info.size, left, "an extended header", MAX_EXTENDED)
            left -= padded
            data = exact(stream, padded)  # with its padding: tarfile parses that too
            if info.type == tarfile.XGLTYPE:  # tarfile would apply it to every later member
                if extended is not None or pax_records(data):
                    raise MalformedPackageError("a PAX global header is not read here")
            elif extended is not None:
                raise MalformedPackageError("a member has more than one extended header")
            elif info.type == tarfile.GNUTYPE_LONGNAME:
                extended = (_utf8(data.split(b"\0", 1)[0], "a GNU long name"), None)
            else:
                extended = _pax_member(pax_records(data))
            need_member = True
            continue
        name, size = info.name, info.size
        if extended is not None:
            name = extended[0] if extended[0] is not None else name
            size = extended[1] if extended[1] is not None else size
        extended, need_member = None, False
        _utf8(name.encode("utf-8", "surrogateescape"), f"the name of member {name!r}")
        if info.isdir():
            if size != 0:  # tarfile reads no data for a directory, whatever its size says
                raise MalformedPackageError(f"directory {name!r} claims {size} bytes")
            continue
        if info.type not in REGULAR:
            raise MalformedPackageError(f"package member {name!r} is not a regular file")
        left -= _claim(size, left, f"member {name!r}")
        member = Member(name, size, stream)
        yield member
        member.finish()


def _pax_member(records: dict[str, bytes]) -> tuple[str | None, int | None]:
    """The name and size a PAX header gives its member (None: the ustar header's)."""
    if any(k.startswith("GNU.sparse.") for k in records):
        raise MalformedPackageError("a sparse file is not read here")
    path, size = records.get("path"), records.get("size")
    return (None if path is None else _utf8(path, "a PAX path").rstrip("/"),
            None if size is None else _pax_size(size))  # fmt: skip
