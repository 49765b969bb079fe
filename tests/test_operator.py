"""Operator safety, over real HTTP: the last administrator, local recovery, permissions, a full disk,
a corrupted file (docs/administration.md)."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import httpx2
import pytest

from api.app import create_app
from api.cli import main as sifa
from api.node import principals_env
from api.principals import LastAdministratorError, Principals, token_id
from api.settings import Settings
from tests.dossier_fixtures import pdf_bytes
from tests.nodes import PEER, ROOT, Node, in_thread, init
from tests.servers import free_port
from tests.small_disk import small_disk

MIB = 1 << 20


def _init(data: Path) -> str:
    return init(data)


@contextlib.contextmanager
def _running(settings: Settings, admin: str) -> Iterator[Node]:
    """A node over real HTTP on the settings' data dir, stopped on the way out."""
    with in_thread(create_app(settings), settings.port):
        node = Node(f"http://127.0.0.1:{settings.port}", settings.data_dir, admin)
        try:
            for role in ("clerk", "archivist"):
                r = node.http.post(
                    "/v1/principals", json={"name": f"{role} 运维", "role": role}, headers=node.as_("administrator")
                )
                node.tokens[role], node.ids[role] = r.json()["token"], r.json()["id"]
            yield node
        finally:
            node.http.close()


def _open(node: Node, number: str) -> str:
    r = node.http.post("/v1/dossiers", headers=node.as_("clerk"), json={"case_number": number, "case_type": "民事"})
    assert r.status_code == 201, r.text
    return str(r.json()["dossier"])


def _upload(node: Node, dossier: str, data: bytes | Iterator[bytes], name: str, media: str) -> httpx2.Response:
    headers = {**node.as_("clerk"), "X-File-Name": quote(name), "Content-Type": media}
    return node.http.post(f"/v1/dossiers/{dossier}/documents", content=data, headers=headers)


def _blob_path(data: Path, sha: str) -> Path:
    return data / "blobs" / "blobs" / sha[:2] / sha[2:4] / sha


def _flip(path: Path, at: int) -> None:
    os.chmod(path, 0o600)
    with path.open("r+b") as f:
        f.seek(at)
        byte = f.read(1)
        f.seek(at)
        f.write(bytes([byte[0] ^ 0x01]))
    os.chmod(path, 0o400)


def _events(data: Path) -> int:
    with sqlite3.connect(f"file:{data / 'events.sqlite'}?mode=ro", uri=True) as db:
        (n,) = db.execute("SELECT count(*) FROM stored_events").fetchone()
    return int(n)


def _sealed(node: Node, dossier: str, version: int) -> None:
    """Wait until the sequencer (a child process, slow to start on a busy machine) has sealed the event."""
    deadline = time.monotonic() + 60
    while (
        r := node.http.get(f"/v1/dossiers/{dossier}/receipts/{version}", headers=node.as_("clerk"))
    ).status_code != 200:
        assert time.monotonic() < deadline, r.text
        time.sleep(0.1)


def _revoke(node: Node, who: str, token: str) -> httpx2.Response:
    return node.http.delete(f"/v1/principals/{who}", headers={"Authorization": f"Bearer {token}"})


def _issue_admin(node: Node, token: str, name: str) -> tuple[str, str]:
    r = node.http.post("/v1/principals", json={"name": name, "role": "administrator"},
                       headers={"Authorization": f"Bearer {token}"})  # fmt: skip
    assert r.status_code == 201, r.text
    return r.json()["id"], r.json()["token"]


# 1. The last administrator, and a lost credential.


def test_the_last_administrator_is_never_revoked(node: Node) -> None:
    first = node.admin
    r = _revoke(node, str(token_id(first)), first)
    assert (r.status_code, r.json()["code"]) == (409, "last_administrator"), r.text
    second_id, second = _issue_admin(node, first, "管理员 二")
    assert _revoke(node, str(token_id(first)), second).status_code == 204  # not the last: revoked
    assert _revoke(node, second_id, second).json()["code"] == "last_administrator"
    assert node.http.get("/v1/dossiers/x", headers={"Authorization": f"Bearer {first}"}).status_code == 401

    # Two administrators revoking each other at once: one of them stays, every time.
    survivor = second
    for n in range(8):
        other_id, other = _issue_admin(node, survivor, f"管理员 {n}")
        barrier, answers = threading.Barrier(2), {}

        def revoke(name: str, who: str, token: str, barrier: threading.Barrier, answers: dict[str, int]) -> None:
            barrier.wait()
            answers[name] = _revoke(node, who, token).status_code

        sides = [("survivor", other_id, survivor), ("other", str(token_id(survivor)), other)]
        threads = [threading.Thread(target=revoke, args=(*side, barrier, answers)) for side in sides]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert sorted(answers.values()) in ([204, 401], [204, 409]), answers
        survivor = survivor if answers["survivor"] == 204 else other
    principals = Principals(principals_env(node.data, Settings(data_dir=node.data)))
    try:
        assert principals.administrators() == [str(token_id(survivor))]
    finally:
        principals.close()
    node.tokens["administrator"] = node.admin = survivor  # for the module's other tests


def test_sifa_admin_issues_a_new_administrator_by_local_file_access(
    node: Node, capsys: pytest.CaptureFixture[str]
) -> None:
    assert sifa(["admin", "--data-dir", str(node.data), "--name", "恢复的管理员"]) == 0
    out, err = capsys.readouterr()
    token = out.strip()
    assert len(out.splitlines()) == 1 and token.startswith("sifa_")
    assert "issued by local file access" in err and "local:" in err
    assert f"other administrators not revoked are {token_id(node.admin)}" in err  # to revoke a lost one
    r = node.http.post("/v1/principals", json={"name": "书记员 新", "role": "clerk"},
                       headers={"Authorization": f"Bearer {token}"})  # fmt: skip
    assert r.status_code == 201, r.text
    principals = Principals(principals_env(node.data, Settings(data_dir=node.data)))
    try:
        recorded = principals.repository.get(token_id(token))
        assert recorded.role == "administrator" and recorded.issued_by.startswith("local:")
        assert str(token_id(token)) in principals.administrators()
    finally:
        principals.close()
    assert _revoke(node, str(token_id(token)), node.admin).status_code == 204  # one administrator again


def test_sifa_admin_refuses_without_a_node(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert sifa(["admin", "--data-dir", str(tmp_path / "nothing")]) == 2
    out, err = capsys.readouterr()
    assert out == "" and len(err.splitlines()) == 1 and "holds no node" in err
    data = tmp_path / "node"
    _init(data)
    assert sifa(["admin", "--data-dir", str(data), "--name", " "]) == 2
    assert "--name" in capsys.readouterr().err


# 2. Permissions.


def test_no_file_of_the_node_is_readable_by_other_users(tmp_path: Path) -> None:
    data = tmp_path / "node"
    admin = _init(data)
    for path in [data, *data.rglob("*")]:  # as an older sifa (or a careless copy) left it
        os.chmod(path, 0o755 if path.is_dir() else 0o644)
    trust = data / "peers.json"
    trust.write_text(json.dumps({"logs": [{"key": PEER.verifier.vkey(), "url": "http://127.0.0.1:9"}]}))
    settings = Settings(data_dir=data, port=free_port(), seal_interval_seconds=0.01, peers=trust, witness_logs=trust)
    umask = os.umask(0)  # the most permissive process: every mode must be set on purpose
    try:
        with _running(settings, admin) as node:
            d = _open(node, "（2026）京0105民初7001号")
            pdf = b"%PDF-1.4 not much of a pdf"
            assert _upload(node, d, pdf, "起诉状.pdf", "application/pdf").status_code == 201
            other = _upload(node, d, b"corrupt me " * 1000, "证据.txt", "text/plain").json()
            _sealed(node, d, 3)
            _flip(_blob_path(data, other["sha256"]), 5)
            with pytest.raises(httpx2.RemoteProtocolError):  # quarantined: a marker file
                node.http.get(f"/v1/dossiers/{d}/files/{other['sha256']}", headers=node.as_("clerk"))
            d2 = _open(node, "（2026）京0105民初7002号")
            assert _upload(node, d2, pdf_bytes(1), "答辩状.pdf", "application/pdf").status_code == 201
            r = node.http.post(f"/v1/dossiers/{d2}/archive", headers=node.as_("archivist"), json={"retention": "10"})
            assert r.status_code == 200, r.text  # a package blob, retention records
    finally:
        os.umask(umask)
    names = {p.name for p in data.rglob("*")}
    for expected in ("events.sqlite", "principals.sqlite", "tree.sqlite", "nonces.sqlite", "witness.sqlite",
                     "log.key", "events.key", "node.json", "courts.json", "quarantine", "retention"):  # fmt: skip
        assert expected in names, expected
    loose = {str(p.relative_to(data)): oct(p.stat().st_mode & 0o777)
             for p in [data, *data.rglob("*")] if p.stat().st_mode & 0o077}  # fmt: skip
    assert loose == {}
    blobs = [p for p in (data / "blobs" / "blobs").rglob("*") if p.is_file()]
    assert blobs and {p.stat().st_mode & 0o777 for p in blobs} == {0o400}


# 3. A full disk.


def test_a_full_disk_answers_503_storage_full_and_leaves_nothing(tmp_path: Path) -> None:
    with small_disk(tmp_path / "disk", 16) as disk:
        data = disk / "node"
        admin = _init(data)
        settings = Settings(data_dir=data, port=free_port(), seal_interval_seconds=0.01, max_upload_bytes=64 * MIB)
        with _running(settings, admin) as node:
            d = _open(node, "（2026）京0105民初7101号")
            assert _upload(node, d, b"first", "一.txt", "text/plain").status_code == 201
            before = (_events(data), sorted(p.name for p in (data / "blobs").rglob("*") if p.is_file()))
            big = (hashlib.sha256(str(i).encode()).digest() * (MIB // 32) for i in range(24))
            r = _upload(node, d, big, "大.bin", "application/octet-stream")
            assert (r.status_code, r.json()["code"]) == (503, "storage_full"), r.text
            assert "nothing was stored" in r.json()["message"]
            after = (_events(data), sorted(p.name for p in (data / "blobs").rglob("*") if p.is_file()))
            assert after == before  # no temp file, no half blob, no event
            assert _upload(node, d, b"after", "二.txt", "text/plain").status_code == 201  # the room came back


# 4. A corrupted file.


def test_a_corrupted_file_is_cut_quarantined_named_and_restored(
    node: Node, tmp_path: Path, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    d = _open(node, "（2026）京0105民初7201号")
    body = b"".join(hashlib.sha256(str(i).encode()).digest() for i in range(100_000))  # 3.2 MB
    up = _upload(node, d, body, "庭审录像.bin", "application/octet-stream").json()
    sha, url, clerk = up["sha256"], f"/v1/dossiers/{d}/files/{up['sha256']}", node.as_("clerk")
    _flip(_blob_path(node.data, sha), len(body) // 2)
    got = bytearray()
    with node.http.stream("GET", url, headers=clerk) as r:
        assert r.status_code == 200 and r.headers["content-length"] == str(len(body))
        with pytest.raises(httpx2.RemoteProtocolError):  # the body is cut: never a whole wrong copy
            for chunk in r.iter_bytes():
                got += chunk
    assert len(got) < len(body)
    assert any("ALARM" in m and sha in m for m in caplog.messages)
    again = node.http.get(url, headers=clerk)
    assert (again.status_code, again.json()["code"]) == (503, "blob_corrupt")

    capsys.readouterr()
    assert sifa(["audit", "--data-dir", str(node.data), "--dossier", d, "--json"]) == 1
    findings = json.loads(capsys.readouterr().out)["findings"]
    assert [(f["kind"], f["where"]) for f in findings] == [("blob_corrupt", f"blob {sha}")]
    assert f"dossier {d} as 庭审录像.bin" in findings[0]["detail"]

    backup = tmp_path / "庭审录像.bin"
    backup.write_bytes(body)
    assert sifa(["restore", "--data-dir", str(node.data), str(backup)]) == 0
    assert "restored" in capsys.readouterr().err
    restored = node.http.get(url, headers=clerk)
    assert restored.status_code == 200 and restored.content == body
    assert sifa(["audit", "--data-dir", str(node.data), "--dossier", d]) == 0


def test_a_file_replaced_by_longer_bytes_is_refused_before_a_byte(node: Node) -> None:
    d = _open(node, "（2026）京0105民初7203号")
    original = "调解协议 甲乙双方 ".encode() * 100_000  # 2.5 MB
    sha = _upload(node, d, original, "调解协议.txt", "text/plain").json()["sha256"]
    path = _blob_path(node.data, sha)
    os.chmod(path, 0o600)  # other, longer bytes: cut at the recorded Content-Length they would look whole
    path.write_bytes("伪造协议 甲方放弃全部请求 ".encode() * 200_000)
    r = node.http.get(f"/v1/dossiers/{d}/files/{sha}", headers=node.as_("clerk"))
    assert (r.status_code, r.json()["code"]) == (503, "blob_corrupt"), r.text[:200]


def test_a_corrupted_file_cuts_the_dossier_package(node: Node) -> None:
    d = _open(node, "（2026）京0105民初7202号")
    body = b"".join(hashlib.sha256(b"p" + str(i).encode()).digest() for i in range(50_000))
    sha = _upload(node, d, body, "鉴定意见.bin", "application/octet-stream").json()["sha256"]
    _flip(_blob_path(node.data, sha), 7)
    got = bytearray()
    with node.http.stream("GET", f"/v1/dossiers/{d}/package", headers=node.as_("clerk")) as r:
        assert r.status_code == 200
        size = int(r.headers["content-length"])
        with pytest.raises(httpx2.RemoteProtocolError):
            for chunk in r.iter_bytes():
                got += chunk
    assert len(got) < size
    r = node.http.get(f"/v1/dossiers/{d}/files/{sha}", headers=node.as_("clerk"))
    assert (r.status_code, r.json()["code"]) == (503, "blob_corrupt")


def test_sifa_restore_refuses_a_file_the_node_does_not_hold(
    node: Node, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    stranger = tmp_path / "stranger.bin"
    stranger.write_bytes(b"never uploaded")
    assert sifa(["restore", "--data-dir", str(node.data), str(stranger)]) == 2
    assert "no file this node holds" in capsys.readouterr().err
    assert not _blob_path(node.data, hashlib.sha256(b"never uploaded").hexdigest()).exists()


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_two_writers_never_revoke_the_last_two_administrators(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """Two stores (as two processes) revoke each other's administrator at once: one of them stays."""
    data = tmp_path / "node"
    _init(data)
    settings = Settings(data_dir=data)
    if backend == "postgres":
        settings = Settings(data_dir=data, database_url=request.getfixturevalue("pg_dsn"))
    a, b = Principals(principals_env(data, settings)), Principals(principals_env(data, settings))
    try:
        for n in range(10):
            ids = [a.issue(name=f"甲{n}", role="administrator", court="1101-0105", issued_by="test")[0],
                   b.issue(name=f"乙{n}", role="administrator", court="1101-0105", issued_by="test")[0]]  # fmt: skip
            for other in a.administrators():  # leave exactly these two
                if other not in ids:
                    a.revoke(other, by="test")
            barrier, refused = threading.Barrier(2), []

            def revoke(store: Principals, who: str, barrier: threading.Barrier, refused: list[str]) -> None:
                barrier.wait()
                try:
                    store.revoke(who, by="test")
                except LastAdministratorError:
                    refused.append(who)

            threads = [
                threading.Thread(target=revoke, args=(s, i, barrier, refused)) for s, i in ((a, ids[0]), (b, ids[1]))
            ]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            assert len(refused) == 1 and a.administrators() == b.administrators() == refused
    finally:
        a.close()
        b.close()


def test_a_revoked_administrator_changes_no_principal_on_another_node(tmp_path: Path) -> None:
    """Two nodes on one principals store: A, remembered by node X, is revoked through node Y; at once, on X,
    A can issue, admit and revoke nothing (401) and nothing is recorded."""
    data = tmp_path / "node"
    first = _init(data)
    base = Settings(data_dir=data, sequencer="thread", access_log=False)
    with (
        _running(base.model_copy(update={"port": free_port()}), first) as x,
        _running(base.model_copy(update={"port": free_port()}), first) as y,
    ):
        a_id, a = _issue_admin(x, first, "管理员 甲")
        b_id, b = _issue_admin(y, first, "管理员 乙")
        lawyer = x.http.post("/v1/principals", json={"name": "律师", "role": "lawyer"},
                             headers={"Authorization": f"Bearer {a}"}).json()["id"]  # fmt: skip
        assert (
            x.http.get("/v1/dossiers/x", headers={"Authorization": f"Bearer {a}"}).status_code != 401
        )  # X remembers A
        assert _revoke(y, a_id, b).status_code == 204
        before = Principals(principals_env(data, base))
        try:
            admins, notes = before.administrators(), before.recorder.max_notification_id()
        finally:
            before.close()
        as_a = {"Authorization": f"Bearer {a}"}
        r = x.http.post("/v1/principals", json={"name": "冒名", "role": "administrator"}, headers=as_a)
        assert (r.status_code, r.json()["code"]) == (401, "unauthenticated"), r.text
        r = x.http.post("/v1/principals", json={"name": "冒名", "role": "clerk"}, headers=as_a)
        assert (r.status_code, r.json()["code"]) == (401, "unauthenticated"), r.text
        r = _revoke(x, b_id, a)
        assert (r.status_code, r.json()["code"]) == (401, "unauthenticated"), r.text
        dossier = _open(x, "(2026)京0105民初100号")
        r = x.http.post(f"/v1/principals/{lawyer}/admissions", json={"dossier": dossier}, headers=as_a)
        assert (r.status_code, r.json()["code"]) == (401, "unauthenticated"), r.text
        after = Principals(principals_env(data, base))
        try:
            assert after.administrators() == admins and str(token_id(b)) in admins
            assert after.recorder.max_notification_id() == notes  # nothing recorded
        finally:
            after.close()


def _spoil(data: Path, what: str) -> None:
    if what == "garbage log.key":
        (data / "log.key").write_text("not a key\n")
    elif what == "garbage events.key":
        (data / "events.key").write_text("bm90IGEga2V5\n")  # base64 of 9 bytes: no AES key
    elif what == "missing events.key":
        (data / "events.key").unlink()
    elif what == "tree.sqlite no database":
        for extra in ("tree.sqlite-wal", "tree.sqlite-shm"):
            (data / extra).unlink(missing_ok=True)
        (data / "tree.sqlite").write_bytes(b"this is not an SQLite database" * 100)


def _one_line_exit_2(proc: subprocess.CompletedProcess[str]) -> None:
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr and proc.stderr.count("\n") == 1, proc.stderr


@pytest.mark.parametrize("what", ["garbage log.key", "garbage events.key", "missing events.key",
                                  "tree.sqlite no database", "port in use"])  # fmt: skip
def test_serve_refuses_a_bad_key_store_or_port_in_one_line(what: str, tmp_path: Path) -> None:
    data = tmp_path / "node"
    _init(data)
    _spoil(data, what)
    port = free_port()
    env = {**os.environ, "SIFA_DATA_DIR": str(data), "SIFA_PORT": str(port)}
    with socket.socket() as taken:
        if what == "port in use":
            taken.bind(("127.0.0.1", port))
            taken.listen()
        proc = subprocess.run([sys.executable, "-m", "api.cli", "serve"], cwd=ROOT, env=env, capture_output=True,
                              text=True, timeout=60)  # fmt: skip
    _one_line_exit_2(proc)


@pytest.mark.parametrize("command", [["seal", "--once"], ["audit"], ["admin"]])
def test_commands_refuse_a_garbage_events_key_in_one_line(command: list[str], tmp_path: Path) -> None:
    data = tmp_path / "node"
    _init(data)
    _spoil(data, "garbage events.key")
    env = {**os.environ, "SIFA_DATA_DIR": str(data)}
    proc = subprocess.run([sys.executable, "-m", "api.cli", *command], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=60)  # fmt: skip
    _one_line_exit_2(proc)
    assert "events.key" in proc.stderr


@pytest.mark.parametrize("argv", [["serve", "--port", "99999"], ["serve", "--port", "0"]])
def test_a_port_outside_1_to_65535_is_refused_in_one_line(argv: list[str], tmp_path: Path) -> None:
    data = tmp_path / "node"
    _init(data)
    env = {**os.environ, "SIFA_DATA_DIR": str(data)}
    proc = subprocess.run([sys.executable, "-m", "api.cli", *argv], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=30)  # fmt: skip
    _one_line_exit_2(proc)
    assert "SIFA_PORT" in proc.stderr


def test_audit_refuses_a_dossier_that_is_not_one(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = tmp_path / "node"
    _init(data)
    capsys.readouterr()
    for dossier in ("notauuid", "6454039c-0791-518e-bc56-316fcd078efb"):
        assert sifa(["audit", "--data-dir", str(data), "--dossier", dossier]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "clean" not in err, err


LOG_KEY = "sifa.court/1101-0105+98258d4d+AaYXmYdR4CkWiv7R62KAgGdVogOKf27E9pM19T5eT88R"
WITNESS_KEY = "sifa.witness/1101-0106+26e4be51+BI+TQynW8629sGWOoxVXWhiGTkMsDfPhYC0xPV/G80mh"
BAD_URLS = ["http://127.0.0.1:99999", "http://127.0.0.1:abc", "http://127.0.0.1:1:5", "http://[::1"]


def _peers_at(path: Path, url: str) -> Path:
    path.write_text(json.dumps({"format": "sifa-trust/1", "logs": [{"origin": "sifa.court/1101-0105",
                                "name": "北京市朝阳区人民法院", "key": LOG_KEY, "url": url}]}))  # fmt: skip
    return path


def _witnesses_at(path: Path, url: str) -> Path:
    path.write_text(json.dumps({"format": "sifa-trust/1", "quorum": 1,
                                "witnesses": [{"name": "x", "key": WITNESS_KEY, "url": url}]}))  # fmt: skip
    return path


@pytest.mark.parametrize("url", BAD_URLS)
def test_a_peer_or_witness_url_with_a_bad_port_is_refused_at_start_and_at_use(url: str, tmp_path: Path) -> None:
    """Attack F3: a bad port passed the start-up check, then a retrieval answered 500 and `sifa
    retrieve` printed a ValueError traceback. Now serve refuses it in one line (exit 2), and so does
    retrieve (the node is started without the file, which is given to retrieve alone)."""
    data = tmp_path / "node"
    _init(data)
    peers, witnesses = _peers_at(tmp_path / "peers.json", url), _witnesses_at(tmp_path / "witnesses.json", url + "/w")
    for extra in ({"SIFA_PEERS": str(peers)}, {"SIFA_WITNESSES": str(witnesses)}):
        env = {**os.environ, "SIFA_DATA_DIR": str(data), "SIFA_PORT": str(free_port()), **extra}
        proc = subprocess.run([sys.executable, "-m", "api.cli", "serve"], cwd=ROOT, env=env, capture_output=True,
                              text=True, timeout=60)  # fmt: skip
        _one_line_exit_2(proc)
        assert "URL" in proc.stderr
    env = {**os.environ, "SIFA_DATA_DIR": str(data), "SIFA_PEERS": str(peers)}
    proc = subprocess.run([sys.executable, "-m", "api.cli", "retrieve", "--from", "1101-0105", "--dossier",
                           "6454039c-0791-518e-bc56-316fcd078efb"], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=60)  # fmt: skip
    _one_line_exit_2(proc)
    assert "URL" in proc.stderr


@pytest.mark.parametrize(
    ("text", "said"),
    [
        ("[" * 200000, "nested deeper than 64"),
        ("[1,2]", "a trust file is a JSON object, not list"),
        ('{"logs": [1, 2]}', "logs must be a list of objects"),
        ('{"witnesses": "x"}', "witnesses must be a list of objects"),
    ],
    ids=["200000 deep", "a list", "logs of numbers", "witnesses a string"],  # the id is in the tests' environment
)
def test_a_deep_or_misshapen_trust_file_is_refused_as_such(text: str, said: str, tmp_path: Path) -> None:
    """Attack F4: "[" * 200000 as SIFA_PEERS or SIFA_WITNESSES crashed audit and retrieve with a
    RecursionError; [1,2] said "'list' object has no attribute 'get'". Both are malformed_trust_file."""
    from ledger.trust import MalformedTrustError, read_trust

    path = tmp_path / "trust.json"
    path.write_text(text)
    with pytest.raises(MalformedTrustError, match=said):
        read_trust(path)
    if not text.startswith("[["):
        return
    data = tmp_path / "node"
    _init(data)
    for extra, argv in (({"SIFA_WITNESSES": str(path)}, ["audit"]),
                        ({"SIFA_PEERS": str(path)}, ["retrieve", "--from", "1101-0105", "--dossier",
                                                     "6454039c-0791-518e-bc56-316fcd078efb"])):  # fmt: skip
        env = {**os.environ, "SIFA_DATA_DIR": str(data), **extra}
        proc = subprocess.run([sys.executable, "-m", "api.cli", *argv], cwd=ROOT, env=env, capture_output=True,
                              text=True, timeout=120)  # fmt: skip
        _one_line_exit_2(proc)
        assert "nested deeper than 64" in proc.stderr


@pytest.mark.parametrize("setting", ["SIFA_WITNESSES", "SIFA_PEERS"])
def test_seal_once_beside_a_running_sequencer_refuses_a_bad_trust_file_first(setting: str, tmp_path: Path) -> None:
    """Attack F7: with the sequencer lock held (a running node), `sifa seal --once` with a garbage
    trust file said "another sequencer seals this log" (exit 3); it refuses the file (exit 2), as
    audit and retrieve do."""
    from api.node import open_tree_store

    data = tmp_path / "node"
    _init(data)
    garbage = tmp_path / "garbage.json"
    garbage.write_text("this is not JSON 这不是")
    tree = open_tree_store(data, None)
    try:
        with tree.sequencer_lock():
            env = {**os.environ, "SIFA_DATA_DIR": str(data), setting: str(garbage)}
            proc = subprocess.run([sys.executable, "-m", "api.cli", "seal", "--once"], cwd=ROOT, env=env,
                                  capture_output=True, text=True, timeout=60)  # fmt: skip
    finally:
        tree.close()
    _one_line_exit_2(proc)
    assert str(garbage) in proc.stderr


def test_serve_refuses_a_deeply_nested_peers_file_in_one_line(tmp_path: Path) -> None:
    """SIFA_PEERS holding ``[`` × 100000 was a RecursionError traceback at start."""
    data = tmp_path / "node"
    _init(data)
    (tmp_path / "deep.json").write_text("[" * 100000)
    env = {**os.environ, "SIFA_DATA_DIR": str(data), "SIFA_PORT": str(free_port()),
           "SIFA_PEERS": str(tmp_path / "deep.json")}  # fmt: skip
    proc = subprocess.run([sys.executable, "-m", "api.cli", "serve"], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=60)  # fmt: skip
    _one_line_exit_2(proc)
    assert "deeper than 64" in proc.stderr


def _another_nodes_events_key(data: Path, tmp_path: Path) -> None:
    """events.key replaced by another node's (well formed: it parses, it does not decrypt)."""
    _init(tmp_path / "other")
    (data / "events.key").write_text((tmp_path / "other" / "events.key").read_text())


@pytest.mark.parametrize("stored", ["a dossier's events", "principals only"])
def test_serve_refuses_a_well_formed_events_key_that_does_not_open_the_events(stored: str, tmp_path: Path) -> None:
    """It started, /healthz said ok, and every store request answered 500 (MapperDeserialisationError)."""
    data = tmp_path / "node"
    admin = _init(data)
    if stored == "a dossier's events":
        with _running(Settings(data_dir=data, port=free_port(), seal_interval_seconds=0.01), admin) as node:
            _open(node, "（2026）京0105民初300号")
    _another_nodes_events_key(data, tmp_path)
    env = {**os.environ, "SIFA_DATA_DIR": str(data), "SIFA_PORT": str(free_port())}
    for command in (["serve"], ["seal", "--once"]):
        proc = subprocess.run([sys.executable, "-m", "api.cli", *command], cwd=ROOT, env=env, capture_output=True,
                              text=True, timeout=60)  # fmt: skip
        _one_line_exit_2(proc)
        assert "events.key does not open this node's events" in proc.stderr, proc.stderr


def test_a_stored_event_that_does_not_decrypt_is_a_typed_503(tmp_path: Path) -> None:
    """At run time (the key changed under a running node's stores): event_unreadable, never a plain 500."""
    data = tmp_path / "node"
    admin = _init(data)
    settings = Settings(data_dir=data, port=free_port(), seal_interval_seconds=0.01)
    with _running(settings, admin) as node:
        d = _open(node, "（2026）京0105民初301号")
        clerk = node.tokens["clerk"]
    _another_nodes_events_key(data, tmp_path)
    with in_thread(create_app(settings), settings.port), httpx2.Client(base_url=node.base, timeout=30) as http:
        for r in (http.get(f"/v1/dossiers/{d}", headers={"Authorization": f"Bearer {clerk}"}),
                  http.post("/v1/dossiers", headers={"Authorization": f"Bearer {admin}"},
                            json={"case_number": "（2026）京0105民初302号", "case_type": "民事"})):  # fmt: skip
            assert (r.status_code, r.json()["code"]) == (503, "event_unreadable"), r.text
        assert http.get("/healthz").status_code in (200, 503)


def test_a_sha256_node_refuses_a_16_byte_events_key(tmp_path: Path) -> None:
    """sifa init makes an AES-256 key; a 16 byte one (an SM4 or AES-128 key) is not this node's."""
    import base64

    data = tmp_path / "node"
    _init(data)
    (data / "events.key").write_text(base64.b64encode(bytes(16)).decode() + "\n")
    env = {**os.environ, "SIFA_DATA_DIR": str(data), "SIFA_PORT": str(free_port())}
    proc = subprocess.run([sys.executable, "-m", "api.cli", "serve"], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=60)  # fmt: skip
    _one_line_exit_2(proc)
    assert "32 byte AES-256 key" in proc.stderr


def test_a_config_naming_another_suite_than_log_key_says_so(tmp_path: Path) -> None:
    """A SHA-256 node whose node.json says gm was told to restore events.key; the mismatch is node.json's."""
    data = tmp_path / "node"
    _init(data)
    config = json.loads((data / "node.json").read_text(encoding="utf-8"))
    (data / "node.json").write_text(json.dumps({**config, "crypto": "gm"}), encoding="utf-8")
    env = {**os.environ, "SIFA_DATA_DIR": str(data), "SIFA_PORT": str(free_port())}
    for command in (["serve"], ["audit"], ["admin"]):
        proc = subprocess.run([sys.executable, "-m", "api.cli", *command], cwd=ROOT, env=env, capture_output=True,
                              text=True, timeout=60)  # fmt: skip
        _one_line_exit_2(proc)
        assert "node.json does not match this node's keys" in proc.stderr and "restore" not in proc.stderr
