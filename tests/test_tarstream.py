"""The package's tar reader against Python's ``tarfile``, on archives with damaged headers.

Differential: archives written by ``tarfile`` (ustar, GNU, PAX; ASCII, Chinese and long names),
then headers mutated — random byte flips (with and without the checksum made right again), PAX
records with bad sizes and bad lengths, ustar size fields rewritten, truncations. sifa's reader
and ``tarfile`` must both refuse, or both yield the same members (names, sizes, bytes). Where sifa
is stricter on purpose (evidence/tarstream.py's docstring lists how), the ``tarfile`` side applies
the same rule to what ``tarfile`` parsed — never sifa's code. Every read sifa makes is bounded.
"""

from __future__ import annotations

import io
import tarfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx2
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from evidence.tarstream import CHUNK, MAX_EXTENDED, MalformedPackageError, tar_members

BLOCK = 512
ZERO = b"\0" * BLOCK
REGULAR = (tarfile.REGTYPE, tarfile.AREGTYPE, tarfile.CONTTYPE)
View = list[tuple[str, int, bytes]] | None  # the regular members, or None: refused


class BoundedReads(io.BytesIO):
    """A stream that fails the test on any read not bounded by the reader's chunk."""

    def read(self, n: int | None = -1, /) -> bytes:
        assert isinstance(n, int) and 0 <= n <= CHUNK, f"unbounded read({n})"
        return super().read(n)


def sifa_view(data: bytes) -> View:
    try:
        return [(m.name, m.size, b"".join(m.chunks())) for m in tar_members(BoundedReads(data), len(data))]
    except (MalformedPackageError, EOFError):
        return None


def _utf8(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:  # tarfile keeps undecodable bytes as surrogates
        return False
    return True


def tarfile_view(data: bytes) -> View:
    """What ``tarfile`` yields, with sifa's deliberate refusals applied to tarfile's own parse."""
    out = []
    try:
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:") as tf:
            while (m := tf.next()) is not None:
                if m.size < 0 or tf.pax_headers:  # a negative size; a global header that says something
                    return None
                if not _utf8(m.name) or not all(_utf8(k) for k in m.pax_headers):
                    return None
                if m.issparse() or any(k.startswith("GNU.sparse.") for k in m.pax_headers):
                    return None
                if "size" in m.pax_headers and m.pax_headers["size"] != str(m.size):
                    return None  # tarfile reads an unreadable PAX size as 0, and "+5" or " 5" as 5
                outer = tarfile.TarInfo.frombuf(data[m.offset : m.offset + BLOCK], "utf-8", "surrogateescape")
                headers = m.offset_data - m.offset
                if headers != BLOCK and not (
                    outer.type in (tarfile.XHDTYPE, tarfile.GNUTYPE_LONGNAME)
                    and headers == 2 * BLOCK + outer.size + -outer.size % BLOCK
                    and outer.size <= MAX_EXTENDED
                ):
                    return None  # more than one extended header, or one of another kind
                if m.isdir():
                    if m.size != 0:
                        return None  # tarfile reads no data for a directory: sifa wants its size 0
                    continue
                if m.type not in REGULAR:
                    return None
                f = tf.extractfile(m)
                assert f is not None
                out.append((m.name, m.size, f.read()))
            rest = data[tf.offset : tf.offset + BLOCK]
            if rest and rest != ZERO:
                return None  # tarfile stops quietly at a damaged header; sifa refuses
    except Exception:
        return None
    return out


# --- archives and their mutations ---

NAMES = st.one_of(
    st.sampled_from(["bagit.txt", "sifa/events.jsonl", "data/" + "ab" * 32, "证据/聊天记录.txt", "a/b/"]),
    st.text(st.sampled_from("abc证据/ ._-"), min_size=1, max_size=150),
)
FORMATS = st.sampled_from([tarfile.USTAR_FORMAT, tarfile.GNU_FORMAT, tarfile.PAX_FORMAT])


@st.composite
def archives(draw: Any) -> bytes:
    fmt = draw(FORMATS)
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=fmt, encoding="utf-8") as t:
        for name, content in draw(st.lists(st.tuples(NAMES, st.binary(max_size=1500)), max_size=4)):
            info = tarfile.TarInfo(name)
            info.size = len(content)
            if name.endswith("/"):
                info.type, info.size, content = tarfile.DIRTYPE, 0, b""
            try:
                t.addfile(info, io.BytesIO(content))
            except ValueError:  # a name ustar cannot hold
                return draw(archives())
    return out.getvalue()


def _headers(data: bytes) -> list[tuple[int, int]]:
    """(start, end) of each member's header blocks (extended headers with their data included)."""
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:") as tf:
        return [(m.offset, m.offset_data) for m in tf.getmembers()]


def _checksummed(block: bytearray) -> bytearray:
    block[148:156] = b" " * 8
    block[148:156] = b"%06o\0 " % (sum(block) & 0o7777777)
    return block


def _pax(records: list[tuple[str, bytes]], *, wrong_length: int = 0) -> bytes:
    body = b""
    for key, value in records:
        tail = f" {key}=".encode() + value + b"\n"
        n = len(tail) + 1
        while len(str(n)) + len(tail) != n:
            n += 1
        body += str(n + wrong_length).encode() + tail
    info = tarfile.TarInfo("././@PaxHeader")
    info.type, info.size = tarfile.XHDTYPE, len(body)
    return info.tobuf(tarfile.USTAR_FORMAT, "utf-8", "surrogateescape") + body + b"\0" * (-len(body) % BLOCK)


BAD_SIZES = st.one_of(
    st.sampled_from(["-1", "", "abc", "1e3", " 5", "+5", "05", "0x10", "٥", "5 ", "99999999999999999999999999"]),
    st.integers(-3, 3000).map(str),
    st.integers(0, 2**80).map(str),
)


@st.composite
def mutated(draw: Any) -> bytes:
    data = bytearray(draw(archives()))
    for _ in range(draw(st.integers(1, 3))):
        spans = _headers(bytes(data)) if tarfile_view(bytes(data)) is not None else []
        kind = draw(st.sampled_from(["flip", "flip-fixed", "pax-size", "pax-length", "ustar-size", "truncate"]))
        if kind == "truncate" or not spans:
            data = data[: draw(st.integers(0, len(data)))]
            continue
        start, end = draw(st.sampled_from(spans))
        member = end - BLOCK  # the member's own header block
        if kind in ("flip", "flip-fixed"):
            at = draw(st.integers(start, end - 1))
            data[at] = draw(st.integers(0, 255))
            if kind == "flip-fixed" and at >= member:
                data[member:end] = _checksummed(bytearray(data[member:end]))
        elif kind in ("pax-size", "pax-length"):
            records = [("size", draw(BAD_SIZES).encode())]
            if draw(st.booleans()):
                records.insert(0, ("path", draw(NAMES).encode()))
            wrong = draw(st.integers(-20, 20)) if kind == "pax-length" else 0
            data[start:member] = _pax(records, wrong_length=wrong)
        else:
            block = bytearray(data[member:end])
            size = draw(st.one_of(st.integers(-(2**40), -1), st.integers(0, 2**40)))
            # GNU base-256: 0x80 then the size, or 0xff then 256**11 + a negative size (tarfile's nti reads both)
            block[124:136] = (
                b"\xff" + (256**11 + size).to_bytes(11, "big") if size < 0 else b"\x80" + size.to_bytes(11, "big")
            )
            data[member:end] = _checksummed(block)
    return bytes(data)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=mutated())
def test_sifa_and_tarfile_agree_on_damaged_archives(data: bytes) -> None:
    assert sifa_view(data) == tarfile_view(data)


@settings(max_examples=100, deadline=None)
@given(data=archives())
def test_sifa_and_tarfile_agree_on_whole_archives(data: bytes) -> None:
    view = sifa_view(data)
    assert view is not None and view == tarfile_view(data)


@pytest.mark.parametrize(
    ("size", "why"),
    [
        (b"-1", "is not a decimal"),
        (b"twelve", "is not a decimal"),
        (b"+12", "is not a decimal"),
        (b"99999999999999999999999999", "may follow"),
        (b"100000", "may follow"),
    ],
)
def test_pax_sizes_are_checked_before_use(size: bytes, why: str) -> None:
    """Issue 16 item 6: a PAX size of -1 once made the reader ask the stream for everything."""
    content = b"x" * 10
    member = tarfile.TarInfo("data/file")
    member.size = len(content)
    data = _pax([("size", size)]) + member.tobuf(tarfile.USTAR_FORMAT) + content + b"\0" * 502 + ZERO * 2
    with pytest.raises(MalformedPackageError, match=why):
        sifa_view_strict(data)


def sifa_view_strict(data: bytes) -> list[tuple[str, int, bytes]]:
    return [(m.name, m.size, b"".join(m.chunks())) for m in tar_members(BoundedReads(data), len(data))]


def test_an_extended_header_is_bounded() -> None:
    records = [("comment", b"x" * (MAX_EXTENDED + 1))]
    data = _pax(records) + tarfile.TarInfo("data/file").tobuf(tarfile.USTAR_FORMAT) + ZERO * 2
    with pytest.raises(MalformedPackageError, match="extended header claims"):
        sifa_view_strict(data)


def _rss_peak(pid: int) -> int:
    """The process's peak resident memory (VmHWM), in bytes."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) << 10
    raise AssertionError("no VmHWM")


def test_a_pax_size_of_minus_one_sent_to_a_node_is_refused_without_holding_the_stream(tmp_path: Path) -> None:
    """Issue 16 item 6, over HTTP to a ``sifa serve`` process: a package whose first member has a PAX
    size of -1, followed by 256 MiB. Once, the reader asked the body for everything and joined it in
    memory; now it refuses at the header, and the server's peak memory does not grow by the stream."""
    from tests.nodes import COURTS, MID, start_peer_nodes

    nodes = start_peer_nodes(tmp_path, COURTS[:2])
    try:
        node = nodes[MID]
        with httpx2.Client(base_url=node.serve.url, timeout=120) as http:
            r = http.post("/v1/principals", json={"name": "书记员", "role": "clerk"},
                          headers={"Authorization": f"Bearer {node.admin}"})  # fmt: skip
            clerk = {"Authorization": f"Bearer {r.json()['token']}", "Content-Type": "application/x-tar"}
            member = tarfile.TarInfo("bagit.txt")
            member.size = 10
            head = _pax([("size", b"-1")]) + member.tobuf(tarfile.USTAR_FORMAT)
            warm = http.post("/v1/received", content=head + ZERO * 2, headers=clerk)  # the route's first use
            assert (warm.status_code, warm.json()["code"]) == (400, "malformed_package"), warm.text
            before = _rss_peak(node.serve.proc.pid)
            stream = 256 << 20

            def body() -> Iterator[bytes]:
                yield head
                for _ in range(stream >> 20):
                    yield b"\0" * (1 << 20)

            r = http.post("/v1/received", content=body(), headers=clerk)
            assert (r.status_code, r.json()["code"]) == (400, "malformed_package"), r.text
            assert "PAX size '-1'" in r.json()["message"]
            grown = _rss_peak(node.serve.proc.pid) - before
            assert grown < stream // 8, f"the server grew by {grown >> 20} MiB reading a {stream >> 20} MiB stream"
            assert http.get("/healthz").status_code == 200
    finally:
        for n in nodes.values():
            n.serve.stop()


def test_a_request_body_is_never_read_whole() -> None:
    """ChunkReader.read(-1) once joined the rest of a request body in memory."""
    from api.peers import ChunkReader

    body = ChunkReader(iter([b"a" * 10, b"b" * 10]))
    with pytest.raises(ValueError, match="needs a bound"):
        body.read(-1)
    assert body.read(1 << 40) == b"a" * 10  # at most one chunk, however much is asked
    assert body.read(4) == b"bbbb" and body.read(100) == b"b" * 6 and body.read(1) == b""
