"""Fixity's repair from a peer court (api/peer_repair.py), between real nodes served by ``sifa serve``.

基层 (1101-0105) transfers a dossier to 中级 (1101-0200), which retrieves it. The lower court's
copies then rot on disk; its fixity sweep asks the intermediate court — with the signed requests
remote retrieval uses — for each file, checks size and SHA-256 before anything is written, puts it
back, and records ``FileRepaired`` naming that court; the intermediate court records the read;
``sifa audit`` is clean. A hostile node at the intermediate court's address (wrong bytes, too many,
too few) is refused and changes nothing; the high court, which received nothing, is never asked;
and the intermediate court answers only the court it received the dossier from.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx2
import pytest
from fastapi import FastAPI, Request
from fastapi.responses import Response, StreamingResponse

from api import peer_repair
from api.cli import main as sifa
from api.composition import open_node
from api.maintenance import fixity_for
from api.peer_repair import PeerCourts
from api.peers import PeerUnavailableError, fetcher, peer_get, sign_request
from api.settings import Settings
from evidence.package import read_package_bytes
from ledger.note import Ed25519Signer, Ed25519Verifier
from storage.filesystem import set_immutable
from tests.nodes import COURTS, HIGH, LOW, MID, PeerNode, clerks_at, in_thread, init, start_peer_nodes, trust_entry
from tests.servers import free_port

MID_SOURCE = f"peer court {MID} (sifa.court/{MID})"


@dataclass
class Court:
    node: PeerNode
    http: httpx2.Client
    clerk: dict[str, str]

    @property
    def data(self) -> Path:
        return self.node.data

    def signer(self) -> Ed25519Signer:
        return Ed25519Signer.from_skey((self.data / "log.key").read_text())


@dataclass
class Hostile:
    """A node at a peer court's address that answers every file request by ``mode``: ``right`` is the
    file's true bytes, which it never sends alone."""

    right: bytes
    mode: str = "wrong"
    asked: list[tuple[str, str]] = field(default_factory=list)  # (Sifa-To, path) of every request
    streamed: int = 0  # bytes the endless answer produced before the client hung up

    def app(self) -> FastAPI:
        app = FastAPI()

        @app.get("/v1/peer/dossiers/{dossier}/files/{sha256}")
        def answer(dossier: str, sha256: str, request: Request) -> Response:
            self.asked.append((request.headers.get("sifa-to", ""), request.url.path))
            n, octets = len(self.right), "application/octet-stream"
            if self.mode == "wrong":  # the recorded size, other bytes
                return Response(b"x" * n, media_type=octets)
            if self.mode == "long":  # the right bytes and more, announced
                return Response(self.right + b"x" * 4096, media_type=octets)
            if self.mode == "short":
                return Response(self.right[:-1], media_type=octets)
            if self.mode == "slow":  # the right bytes, a byte at a time
                return StreamingResponse(self._slow(), media_type=octets, headers={"Content-Length": str(n)})
            return StreamingResponse(self._endless(), media_type=octets)  # chunked: no length announced

        return app

    def _slow(self) -> Iterator[bytes]:
        for i in range(len(self.right)):
            time.sleep(0.2)
            yield self.right[i : i + 1]

    def _endless(self) -> Iterator[bytes]:
        yield self.right
        for _ in range(1 << 14):  # 1 GiB at most, should the client not stop reading
            self.streamed += 64 << 10
            yield b"y" * (64 << 10)


@pytest.fixture(scope="module")
def courts(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Court]]:
    nodes = start_peer_nodes(tmp_path_factory.mktemp("courts"), COURTS)
    with clerks_at(nodes) as clerks:
        yield {code: Court(nodes[code], http, clerk) for code, (http, clerk) in clerks.items()}


def _open(c: Court, number: str) -> str:
    r = c.http.post("/v1/dossiers", headers=c.clerk, json={"case_number": number, "case_type": "民事"})
    assert r.status_code == 201, r.text
    return str(r.json()["dossier"])


def _upload(c: Court, d: str, data: bytes, name: str) -> str:
    r = c.http.post(f"/v1/dossiers/{d}/documents", content=data, headers={
        **c.clerk, "X-File-Name": quote(name), "Content-Type": "application/octet-stream"})  # fmt: skip
    assert r.status_code == 201, r.text
    return str(r.json()["sha256"])


def _rot(data: Path, sha: str, junk: bytes = b"rot") -> bytes:
    """Change a stored file behind the store's back; its bytes now."""
    path = data / "blobs" / "blobs" / sha[:2] / sha[2:4] / sha
    set_immutable(path, False)
    os.chmod(path, 0o600)
    with path.open("r+b") as f:
        f.write(junk)
    return path.read_bytes()


def _stored(data: Path, sha: str) -> bytes:
    return (data / "blobs" / "blobs" / sha[:2] / sha[2:4] / sha).read_bytes()


def _sweep(data: Path, peers: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[int, dict[str, Any]]:
    """``sifa fixity --json`` beside the running node, with ``peers`` as its SIFA_PEERS."""
    monkeypatch.setenv("SIFA_PEERS", str(peers))
    monkeypatch.setenv("SIFA_FIXITY_BYTES_PER_SECOND", "0")
    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(io.StringIO()):
        code = sifa(["fixity", "--data-dir", str(data), "--json"])
    report: dict[str, Any] = json.loads(out.getvalue())
    return code, report


def _bodies(c: Court, d: str, kind: str) -> list[dict[str, Any]]:
    """The bodies of the dossier's events of ``kind``, from its own package (sealed, disclosed to staff)."""
    package = c.http.get(f"/v1/dossiers/{d}/package", headers=c.clerk)
    assert package.status_code == 200, package.text[:300]
    key = Ed25519Verifier.from_vkey(c.http.get("/v1/log/key").json()["verifier_key"])
    return [e.doc["body"] for e in read_package_bytes(package.content, [key]).events if e.doc["type"] == kind]


def _kinds(c: Court, d: str) -> list[str]:
    r = c.http.get(f"/v1/dossiers/{d}/events", headers=c.clerk)
    assert r.status_code == 200, r.text
    return [e["type"] for e in r.json()]


def _signed_get(c: Court, path: str, signer: Ed25519Signer) -> httpx2.Response:
    return c.http.get(path, headers=sign_request(signer, "GET", path, to=f"sifa.court/{c.node.code}"))


def test_a_rotten_file_is_repaired_from_the_peer_court_that_received_the_dossier(
    courts: dict[str, Court], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    low, mid, high = courts[LOW], courts[MID], courts[HIGH]
    d = _open(low, "（2026）京0105民初7001号")
    statement = "起诉状：请求判令被告偿还借款十万元。".encode()
    video = os.urandom(9 << 20)  # past the spool's memory: the fetched copy spills to a temp file
    small, big = _upload(low, d, statement, "起诉状.txt"), _upload(low, d, video, "庭审录像.bin")
    kept = _open(low, "（2026）京0105民初7002号")  # never transferred
    alone = _upload(low, kept, "只在本院的笔录".encode(), "笔录.txt")
    r = low.http.post(f"/v1/dossiers/{d}/transfers", headers=low.clerk,
                      json={"to_court": MID, "kind": "上诉", "reason": "被告不服一审判决"})  # fmt: skip
    assert r.status_code == 200, r.text
    r = mid.http.post("/v1/retrievals", headers=mid.clerk, json={"from_court": LOW, "dossier": d})
    assert r.status_code == 201, r.text

    # The peer side: only the court the dossier came from, only the dossier's files.
    path = f"/v1/peer/dossiers/{d}/files/{small}"
    r = _signed_get(mid, path, low.signer())
    assert (r.status_code, r.content) == (200, statement)
    r = _signed_get(mid, path, high.signer())  # a trusted court, but not the one it came from
    assert (r.status_code, r.json()["code"]) == (403, "not_received")
    r = _signed_get(mid, path, Ed25519Signer.generate(f"sifa.court/{LOW}"))  # the court's name, not its key
    assert (r.status_code, r.json()["code"]) == (401, "request_signature_invalid")
    r = _signed_get(mid, f"/v1/peer/dossiers/{d}/files/{alone}", low.signer())  # not a file of the dossier
    assert (r.status_code, r.json()["code"]) == (404, "unknown_file")
    r = _signed_get(mid, f"/v1/peer/dossiers/{kept}/files/{alone}", low.signer())  # a dossier it never received
    assert (r.status_code, r.json()["code"]) == (404, "dossier_not_found")
    r = mid.http.get(path, headers=mid.clerk)  # a bearer credential does not serve here
    assert (r.status_code, r.json()["code"]) == (403, "forbidden")

    # Both files of the transferred dossier rot; the sweep puts them back from the intermediate court.
    _rot(low.data, small)
    _rot(low.data, big, b"\x00" * 4096)
    code, report = _sweep(low.data, low.node.peers, monkeypatch)
    assert code == 0, report
    assert sorted(report["corrupt"]) == sorted([small, big])
    assert report["repaired"] == {small: MID_SOURCE, big: MID_SOURCE} and report["clean"]
    assert _stored(low.data, small) == statement and _stored(low.data, big) == video
    assert not (low.data / "blobs" / "quarantine" / small).exists()
    repaired = _bodies(low, d, "FileRepaired")  # waits for them to be sealed
    assert sorted((b["sha256"], b["size"], b["source"], b["actor"]) for b in repaired) == sorted(
        [(small, len(statement), MID_SOURCE, "sifa fixity"), (big, len(video), MID_SOURCE, "sifa fixity")]
    )
    reads = [b for b in _bodies(mid, d, "Retrieved") if b["reason"].startswith("修复 ")]
    assert sorted(b["reason"] for b in reads if b["by_court"] == LOW) == sorted(
        [f"修复 {small}", f"修复 {small}", f"修复 {big}"]  # the test's own request, then the sweep's two
    )
    audit = io.StringIO()
    with contextlib.redirect_stdout(audit), contextlib.redirect_stderr(io.StringIO()):
        assert sifa(["audit", "--data-dir", str(low.data), "--json"]) == 0
    assert json.loads(audit.getvalue())["findings"] == []

    # A hostile node answers at the intermediate court's address — and at the high court's, which
    # received nothing and must not be asked. Every wrong answer is refused; nothing is written.
    hostile = Hostile(statement)
    port = free_port()
    peers = json.loads(low.node.peers.read_text())
    for entry in peers["logs"]:
        entry["url"] = f"http://127.0.0.1:{port}"
    hostile_peers = tmp_path / "peers-hostile.json"
    hostile_peers.write_text(json.dumps(peers, ensure_ascii=False))
    rotten = _rot(low.data, small)
    lone = _rot(low.data, alone)
    before = _kinds(low, d).count("FileRepaired")
    monkeypatch.setattr(peer_repair, "GRACE", 1.0)  # the sweep runs in this process: a trickle is cut at 1 s
    with in_thread(hostile.app(), port):
        for mode in ("wrong", "long", "short", "endless", "slow"):
            hostile.mode = mode
            started = time.monotonic()
            code, report = _sweep(low.data, hostile_peers, monkeypatch)
            assert time.monotonic() - started < 8, mode  # the slow answer would take 9 s
            assert code == 1 and report["repaired"] == {}, (mode, report)
            assert sorted(report["corrupt"]) == sorted([small, alone]), mode
            assert _stored(low.data, small) == rotten and _stored(low.data, alone) == lone, mode
            assert (low.data / "blobs" / "quarantine" / small).exists(), mode
    assert len(hostile.asked) == 5
    assert hostile.streamed < 16 << 20  # the client stopped one byte past the recorded size (buffers aside)
    assert set(hostile.asked) == {(f"sifa.court/{MID}", f"/v1/peer/dossiers/{d}/files/{small}")}
    assert _kinds(low, d).count("FileRepaired") == before
    assert not list((low.data / "blobs" / "tmp").iterdir())

    # The intermediate court itself again: the right bytes, and the repair recorded.
    code, report = _sweep(low.data, low.node.peers, monkeypatch)
    assert report["repaired"] == {small: MID_SOURCE} and alone not in report["repaired"]
    assert code == 1  # the file no other court holds stays corrupt
    assert hashlib.sha256(_stored(low.data, small)).hexdigest() == small


def test_the_peer_source_is_asked_only_with_a_peers_file_and_unless_turned_off(tmp_path: Path) -> None:
    """``fixity_for`` (the sweep of ``sifa fixity`` and of the sequencer) adds the peer courts after the
    archive packages whenever SIFA_PEERS is set, unless SIFA_FIXITY_REPAIR_FROM_PEERS is false."""
    init(tmp_path / "mid", MID, "北京市第三中级人民法院")
    init(data := tmp_path / "low", LOW, "北京市朝阳区人民法院")
    peers = tmp_path / "peers.json"
    peers.write_text(json.dumps({"logs": [{**trust_entry(tmp_path / "mid"), "url": "http://127.0.0.1:9"}]}))
    for settings, asks_peers in [
        (Settings(data_dir=data, peers=None), False),
        (Settings(data_dir=data, peers=peers), True),
        (Settings(data_dir=data, peers=peers, fixity_repair_from_peers=False), False),
    ]:
        with open_node(settings) as node:
            fixity = fixity_for(settings, node.dossiers, node.blobs, signer=node.signer, peers=node.peers)
            assert [isinstance(s, PeerCourts) for s in fixity.sources][1:] == ([True] if asks_peers else [])


@contextlib.contextmanager
def never_done(mode: str) -> Iterator[str]:
    """A node's URL whose answer never finishes its headers: ``100 Continue`` forever, or one header a byte
    at a time (each byte well within a socket's timeout)."""
    server = socket.create_server(("127.0.0.1", 0))
    done = threading.Event()

    def serve() -> None:
        conn, _ = server.accept()
        with conn, contextlib.suppress(OSError):
            conn.recv(64 << 10)
            if mode == "headers-trickled":
                conn.sendall(b"HTTP/1.1 200 OK\r\nX-Slow: ")
            while not done.is_set():
                conn.sendall(b"HTTP/1.1 100 Continue\r\n\r\n" if mode == "endless-continue" else b"a")
                time.sleep(0.05)

    threading.Thread(target=serve, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.getsockname()[1]}"
    finally:
        done.set()
        server.close()


def _outcome(call: Any) -> tuple[float, list[BaseException]]:
    """How long ``call`` took (at most 15 s are waited for) and what it raised."""
    raised: list[BaseException] = []

    def run() -> None:
        try:
            call()
        except BaseException as exc:
            raised.append(exc)

    started = time.monotonic()
    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(15)
    assert not thread.is_alive(), "still waiting for the peer's headers"
    return time.monotonic() - started, raised


@pytest.mark.parametrize("mode", ["endless-continue", "headers-trickled"])
def test_a_peer_that_never_finishes_its_headers_is_cut_at_the_deadline(
    mode: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A peer that answers the file request with ``100 Continue`` forever, or its headers a byte at a time
    (each byte within the socket's timeout), is cut once the copy's deadline passes — counted from the
    request, not from the first byte of the body — and nothing is handed on: the sweep is not held."""
    monkeypatch.setattr(peer_repair, "GRACE", 1.0)
    fetch = fetcher(Ed25519Signer.generate(f"sifa.court/{LOW}"), None)
    with never_done(mode) as url:
        took, raised = _outcome(lambda: peer_repair._copy(fetch, url, "/v1/peer/dossiers/d/files/x",
                                                          f"sifa.court/{MID}", "0" * 64, 10))  # fmt: skip
    assert took < 10
    # Cut in its status line or its headers: no answer, or one that then ends before any byte
    assert len(raised) == 1 and isinstance(raised[0], PeerUnavailableError | peer_repair.WrongCopyError), raised


@pytest.mark.parametrize("mode", ["endless-continue", "headers-trickled"])
def test_any_signed_request_waits_for_headers_no_longer_than_its_timeout(mode: str) -> None:
    """Without a deadline (a retrieval's package, a witness's cosignature) the answer's status line and
    headers must come within the timeout as a whole, not merely each byte within it: a hostile node
    cannot hold the clerk's request (and its worker thread) for ever."""
    signer = Ed25519Signer.generate(f"sifa.court/{MID}")
    body: list[bytes] = []
    with never_done(mode) as url:
        target, to = "/v1/peer/dossiers/d/package", f"sifa.court/{LOW}"
        took, raised = _outcome(lambda: body.append(peer_get(url, target, signer, to=to, timeout=1.0).read(64)))
    assert took < 10
    # Cut in its status line (no answer) or in its headers (an answer whose body ends at once: a package
    # cut short, which the import refuses)
    assert (len(raised) == 1 and isinstance(raised[0], PeerUnavailableError)) or body == [b""], (raised, body)
