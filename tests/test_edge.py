"""The node's edge against strangers and slow clients, on a real ``sifa serve`` over raw sockets.

Memory is the serving process's own, read from /proc: its peak resident set (VmHWM) is reset
(``clear_refs`` 5) before each attack and read after it.
"""

from __future__ import annotations

import contextlib
import json
import os
import resource
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import httpx2
import pytest

from api.server import LINGER_SECONDS
from tests.nodes import Serve, init

MB = 1 << 20
BODY_TIMEOUT = 1.0


@dataclass
class Node:
    serve: Serve
    clerk: str  # a clerk's bearer credential
    dossier: str

    @property
    def port(self) -> int:
        return self.serve.port


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Node]:
    data = tmp_path_factory.mktemp("edge") / "data"
    admin = init(data, "1101-0105", "北京市朝阳区人民法院")
    serve = Serve(data, SIFA_SEQUENCER="thread", SIFA_BODY_TIMEOUT_SECONDS=str(BODY_TIMEOUT))
    try:
        with httpx2.Client(base_url=serve.url, timeout=30) as http:
            r = http.post("/v1/principals", json={"name": "书记员", "role": "clerk"},
                          headers={"Authorization": f"Bearer {admin}"})  # fmt: skip
            clerk = r.json()["token"]
            r = http.post("/v1/dossiers", json={"case_number": "（2026）京0105民初6001号", "case_type": "民事"},
                          headers={"Authorization": f"Bearer {clerk}"})  # fmt: skip
            assert r.status_code == 201, r.text
        yield Node(serve, clerk, r.json()["dossier"])
    finally:
        serve.stop()


def _status(pid: int, field: str) -> int:
    """A /proc/PID/status memory figure, in bytes."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    raise AssertionError(f"no {field} in /proc/{pid}/status")


def _reset_peak(pid: int) -> int:
    Path(f"/proc/{pid}/clear_refs").write_text("5")  # VmHWM := VmRSS (Linux >= 4.0)
    return _status(pid, "VmHWM")


def _json_document(size: int) -> Iterator[bytes]:
    """One JSON object of ``size`` bytes, in 1 MiB pieces: a case number of digits."""
    head, tail = '{"case_type": "民事", "case_number": "'.encode(), b'"}'
    digits = size - len(head) - len(tail)
    yield head
    while digits > 0:
        n = min(MB, digits)
        digits -= n
        yield b"1" * n
    yield tail


def _answer(sock: socket.socket) -> tuple[int, dict[str, str], bytes]:
    """One HTTP answer read from ``sock``: status, headers, body (by its Content-Length)."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        assert chunk, f"the connection closed before an answer: {data!r}"
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
    while len(body) < int(headers.get("content-length", "0")):
        chunk = sock.recv(65536)
        assert chunk, "the connection closed in the middle of an answer"
        body += chunk
    return int(lines[0].split()[1]), headers, body


def _send_large(port: int, head: str, size: int, *, chunked: bool = False) -> tuple[int, dict[str, str], bytes]:
    """Send a request with a ``size``-byte JSON body as fast as the server takes it; its answer."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=30)
    framing = "Transfer-Encoding: chunked" if chunked else f"Content-Length: {size}"
    sock.sendall(f"{head}Host: x\r\nContent-Type: application/json\r\n{framing}\r\n\r\n".encode())
    with contextlib.suppress(OSError):  # the server may answer, and close, before the whole body is sent
        for piece in _json_document(size):
            sock.sendall(b"%x\r\n%s\r\n" % (len(piece), piece) if chunked else piece)
        if chunked:
            sock.sendall(b"0\r\n\r\n")
    with sock:
        return _answer(sock)


def _closed_within(sock: socket.socket, seconds: float) -> bool:
    """True if the server closes ``sock`` within ``seconds`` (what it sends meanwhile is dropped)."""
    sock.settimeout(0.2)
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            if sock.recv(65536) == b"":
                return True
        except TimeoutError:
            continue
        except OSError:  # reset
            return True
    return False


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
@pytest.mark.parametrize("who", ["stranger", "clerk"])
def test_a_large_json_body_costs_no_memory(node: Node, who: str, chunked: bool) -> None:
    """A stranger's 60 MB JSON body is refused on its missing credential before it is read (it grew
    the node by 180 MB); a clerk's is refused at 1 MiB (413), by its length or as it streams."""
    pid = node.serve.proc.pid
    before = _reset_peak(pid)
    auth = f"Authorization: Bearer {node.clerk}\r\n" if who == "clerk" else ""
    status, _, body = _send_large(node.port, f"POST /v1/dossiers HTTP/1.1\r\n{auth}", 60 * MB, chunked=chunked)
    grown = _status(pid, "VmHWM") - before
    expected = (413, "payload_too_large") if who == "clerk" else (401, "unauthenticated")
    assert (status, json.loads(body)["code"]) == expected
    assert grown < 16 * MB, f"the server grew by {grown / MB:.1f} MB"


def test_a_refused_body_is_dropped_then_the_connection_closed(node: Node) -> None:
    """Answered before its body came, a request's body is read and dropped: a client that sends it
    all keeps its connection; one that does not is closed after a few seconds."""
    sock = socket.create_connection(("127.0.0.1", node.port), timeout=10)
    with sock:
        sock.sendall(b"POST /v1/dossiers HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                     b"Content-Length: %d\r\n\r\n" % (2 * MB))  # fmt: skip
        assert _answer(sock)[0] == 401
        for piece in _json_document(2 * MB):
            sock.sendall(piece)
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        assert _answer(sock)[0] == 200
    sock = socket.create_connection(("127.0.0.1", node.port), timeout=10)
    with sock:
        sock.sendall(b"POST /v1/dossiers HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n{")
        assert _answer(sock)[0] == 401
        assert _closed_within(sock, LINGER_SECONDS + 5)


def test_headers_have_a_size_bound(node: Node) -> None:
    with socket.create_connection(("127.0.0.1", node.port), timeout=10) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        with contextlib.suppress(OSError):
            for _ in range(200):  # 200 KiB of headers, never ending
                sock.sendall(b"X-Pad: " + b"a" * 1017 + b"\r\n")
        status, headers, body = _answer(sock)
        assert (status, json.loads(body)["code"], headers["connection"]) == (431, "headers_too_large", "close")


@pytest.mark.parametrize("route", ["json", "upload"])
def test_a_body_that_stops_is_answered_408(node: Node, route: str) -> None:
    """A body that pauses longer than SIFA_BODY_TIMEOUT_SECONDS: 408, for a JSON route (read by the
    edge) and for an upload (streamed by its route); nothing is recorded."""
    head = (f"POST /v1/dossiers/{node.dossier}/documents HTTP/1.1\r\nAuthorization: Bearer {node.clerk}\r\n"
            f"X-File-Name: {quote('证据.pdf')}\r\nContent-Type: application/pdf\r\n") if route == "upload" else (
            "POST /v1/verify HTTP/1.1\r\nContent-Type: application/json\r\n")  # fmt: skip
    with socket.create_connection(("127.0.0.1", node.port), timeout=10) as sock:
        started = time.monotonic()
        sock.sendall(f"{head}Host: x\r\nContent-Length: 100000\r\n\r\n".encode() + b"%PDF-1.4 " * 100)
        status, _, body = _answer(sock)
        assert (status, json.loads(body)["code"]) == (408, "request_timeout")
        assert BODY_TIMEOUT <= time.monotonic() - started < BODY_TIMEOUT + 5
    with httpx2.Client(base_url=node.serve.url) as http:
        view = http.get(f"/v1/dossiers/{node.dossier}", headers={"Authorization": f"Bearer {node.clerk}"}).json()
        assert view["documents"] == {}


MP4 = b"\x00\x00\x00\x18ftypmp42"  # an MP4's first box: the content is checked against its declared type


def test_large_uploads_on_one_connection(node: Node) -> None:
    """Bodies are not headers: the last piece of a large upload does not count against the header bound
    (a kept-alive connection's second upload was once cut off there)."""
    with httpx2.Client(base_url=node.serve.url, timeout=60) as http:
        for i in range(3):
            r = http.post(f"/v1/dossiers/{node.dossier}/documents", content=MP4 + os.urandom(9 * MB + 12345 * i),
                          headers={"Authorization": f"Bearer {node.clerk}", "X-File-Name": quote(f"录像{i}.mp4"),
                                   "Content-Type": "video/mp4"})  # fmt: skip
            assert r.status_code == 201, r.text


def _open_files_for(n: int) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < n:
        if hard != resource.RLIM_INFINITY and hard < n:
            pytest.skip(f"this test holds {n} connections; the open files limit is {hard}")
        resource.setrlimit(resource.RLIMIT_NOFILE, (n, hard))


def _half_sent(port: int) -> socket.socket:
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ")
    s.setblocking(False)
    return s


def _healthz(port: int) -> tuple[float, int, bytes]:
    """A normal client's GET /healthz: seconds taken, status, body."""
    started = time.monotonic()
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        status, _, body = _answer(s)
    return time.monotonic() - started, status, body


def _closed(s: socket.socket) -> bool:
    try:
        return s.recv(4096) == b""
    except BlockingIOError:
        return False
    except OSError:  # reset
        return True


HELD, LIMIT, HEADER_TIMEOUT = 3000, 3500, 3.0


def test_slow_clients_are_timed_out_and_bounded(tmp_path: Path) -> None:
    """Thousands of connections that never finish their headers: a normal client is still served at
    once; beyond the connection limit requests are answered 503; the server closes every one of them,
    also those that keep sending a byte now and then."""
    _open_files_for(2 * (HELD + 700))
    data = tmp_path / "data"
    init(data, "1101-0105", "北京市朝阳区人民法院")
    serve = Serve(data, SIFA_SEQUENCER="thread", SIFA_HEADER_TIMEOUT_SECONDS=str(HEADER_TIMEOUT),
                  SIFA_MAX_CONNECTIONS=str(LIMIT))  # fmt: skip
    held: list[socket.socket] = []
    try:
        started = time.monotonic()
        held = [_half_sent(serve.port) for _ in range(HELD)]
        took, status, _ = _healthz(serve.port)
        assert (status, took < 2.0) == (200, True), took
        held += [_half_sent(serve.port) for _ in range(LIMIT - HELD + 100)]  # beyond the limit
        _, status, body = _healthz(serve.port)
        assert (status, json.loads(body)["code"]) == (503, "server_busy")
        for _ in range(4):
            for s in held[:50]:
                with contextlib.suppress(OSError):
                    s.send(b"x")
            time.sleep(HEADER_TIMEOUT / 4)
        deadline = started + HEADER_TIMEOUT + 15
        still = list(held)
        while still and time.monotonic() < deadline:
            still = [s for s in still if not _closed(s)]
            time.sleep(0.2)
        assert not still, f"{len(still)} of {len(held)} half-sent connections still open"
        assert _healthz(serve.port)[1] == 200
    finally:
        for s in held:
            s.close()
        serve.stop()


def test_the_edge_finds_each_request_the_route_the_router_finds() -> None:
    """The edge's index (one expression per method) names, for a request to every route and to paths
    no route has, the rule a scan of the routes in the router's order names."""
    import re

    from api.app import create_app
    from api.edge import RuleIndex, rules
    from api.settings import Settings

    found = rules(create_app(Settings()))
    index = RuleIndex(found)
    paths = [re.sub(r"\(\?P<\w+>[^)]*\)", "3", rule.path.pattern.strip("^$")).replace("\\", "") for rule in found]
    assert all(index.find(min(rule.methods), path) is not None for rule, path in zip(found, paths, strict=True))
    paths += ["/", "/v1/dossiers/x/y/z/none", "/v1/dossiers/a\n", "/tlog/tile/0/000"]
    assert len(found) > 20
    for method in ("GET", "POST", "PUT", "DELETE", "PATCH"):
        for path in paths:
            scanned = next((r for r in found if method in r.methods and r.path.match(path)), None)
            assert index.find(method, path) is scanned, (method, path)


def _stalled_upload(port: int, token: str, dossier: str) -> socket.socket:
    """An upload that announces a large body, sends a few bytes of it and then nothing (within the body
    timeout): it holds whatever consumes its body."""
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    s.sendall(f"POST /v1/dossiers/{dossier}/documents HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\n"
              f"X-File-Name: slow.bin\r\nContent-Type: application/octet-stream\r\nContent-Length: 1000000\r\n\r\n"
              "slow".encode())  # fmt: skip
    return s


def test_slow_uploads_hold_only_their_own_senders_slots(tmp_path: Path) -> None:
    """A principal has at most SIFA_MAX_UPLOADS_PER_PRINCIPAL uploads in flight (the next: 429
    too_many_uploads, Retry-After); and slow uploads from several principals, as many as the event
    loop's default thread pool has threads, do not stop another clerk's upload (bodies are consumed by
    threads of their own). Once, six slow uploads hung every upload on the node."""
    data = tmp_path / "data"
    admin = init(data, "1101-0105", "北京市朝阳区人民法院")
    per, default_pool = 2, min(32, (os.cpu_count() or 1) + 4)
    serve = Serve(data, SIFA_SEQUENCER="thread", SIFA_MAX_UPLOADS_PER_PRINCIPAL=str(per))
    held: list[socket.socket] = []
    try:
        with httpx2.Client(base_url=serve.url, timeout=30) as http:
            clerks = []
            for i in range(default_pool // per + 2):
                r = http.post("/v1/principals", json={"name": f"书记员{i}", "role": "clerk"},
                              headers={"Authorization": f"Bearer {admin}"})  # fmt: skip
                clerks.append(r.json()["token"])
            r = http.post("/v1/dossiers", json={"case_number": "（2026）京0105民初6101号", "case_type": "民事"},
                          headers={"Authorization": f"Bearer {clerks[0]}"})  # fmt: skip
            dossier = r.json()["dossier"]
            for token in clerks[:-1]:
                held += [_stalled_upload(serve.port, token, dossier) for _ in range(per)]
            time.sleep(1.0)  # every stalled upload is in its handler, holding its slot
            with _stalled_upload(serve.port, clerks[0], dossier) as extra:
                status, headers, body = _answer(extra)
            assert (status, json.loads(body)["code"]) == (429, "too_many_uploads")
            assert int(headers["retry-after"]) > 0
            started = time.monotonic()
            r = http.post(f"/v1/dossiers/{dossier}/documents", content=b"hello", timeout=10,
                          headers={"Authorization": f"Bearer {clerks[-1]}", "X-File-Name": "a.txt",
                                   "Content-Type": "text/plain"})  # fmt: skip
            assert r.status_code == 201, r.text
            assert time.monotonic() - started < 5
    finally:
        for s in held:
            s.close()
        serve.stop()


def test_an_upload_cut_off_by_its_client_is_logged_once_without_a_traceback(tmp_path: Path) -> None:
    """A client that disconnects in the middle of an upload's body is a line in the log, not an
    ``ERROR: Exception in ASGI application`` with a traceback; nothing is recorded."""
    data, log = tmp_path / "data", tmp_path / "serve.log"
    admin = init(data, "1101-0105", "北京市朝阳区人民法院")
    serve = Serve(data, log=log, SIFA_SEQUENCER="thread")
    try:
        with httpx2.Client(base_url=serve.url, timeout=30) as http:
            r = http.post("/v1/dossiers", json={"case_number": "（2026）京0105民初6102号", "case_type": "民事"},
                          headers={"Authorization": f"Bearer {admin}"})  # fmt: skip
            assert r.status_code == 403  # an administrator opens no dossier: a clerk does
            clerk = http.post("/v1/principals", json={"name": "书记员", "role": "clerk"},
                              headers={"Authorization": f"Bearer {admin}"}).json()["token"]  # fmt: skip
            r = http.post("/v1/dossiers", json={"case_number": "（2026）京0105民初6102号", "case_type": "民事"},
                          headers={"Authorization": f"Bearer {clerk}"})  # fmt: skip
            dossier = r.json()["dossier"]
            for _ in range(2):
                with _stalled_upload(serve.port, clerk, dossier):
                    time.sleep(0.5)
            time.sleep(1.0)
            events = http.get(f"/v1/dossiers/{dossier}/events", headers={"Authorization": f"Bearer {clerk}"}).json()
            assert [e["type"] for e in events if e["type"] != "Retrieved"] == ["Opened"]
    finally:
        serve.stop()
    text = log.read_text(encoding="utf-8", errors="replace")
    assert "Traceback" not in text and "Exception in ASGI" not in text, text
    assert text.count("disconnected") == 2, text
