"""``sifa backup`` and ``sifa restore --from``: a drill under load, PostgreSQL, and the fork guard.

The drill backs a running node up while clients write to it, restores the snapshot into a new data
dir and runs ``sifa audit`` there: clean, with every event acknowledged before the backup began.
A restored node behind what it published refuses to seal (api/forkguard.py).
"""

from __future__ import annotations

import contextlib
import io
import json
import time
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx2
import pytest

from api.cli import main as sifa
from api.forkguard import RESTORED
from tests.nodes import Serve, Writer, init, trust_entry
from tests.servers import MotoServer, PostgresCluster


def run(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = sifa(list(argv))
    return code, out.getvalue(), err.getvalue()


def audit(data: Path) -> dict[str, Any]:
    code, out, err = run("audit", "--data-dir", str(data), "--json")
    report: dict[str, Any] = json.loads(out)
    assert code == 0, (err, report["findings"])
    return report


def upload(http: httpx2.Client, token: str, dossier: str, body: bytes, name: str) -> str:
    r = http.post(f"/v1/dossiers/{dossier}/documents", content=body, headers={
        "Authorization": f"Bearer {token}", "X-File-Name": quote(name), "Content-Type": "text/plain"})  # fmt: skip
    assert r.status_code == 201, r.text
    sha: str = r.json()["sha256"]
    return sha


def register(http: httpx2.Client, token: str, dossier: str, n: int) -> None:
    r = http.post(f"/v1/dossiers/{dossier}/evidence", headers={"Authorization": f"Bearer {token}"},
                  json={"sha256": f"{n:064x}", "size": n, "name": f"证据{n}.pdf",
                        "submitter": {"role": "原告", "name": "张三"}})  # fmt: skip
    assert r.status_code == 200, r.text


@pytest.mark.slow
def test_a_backup_taken_under_load_restores_into_a_new_data_dir_and_audits_clean(tmp_path: Path) -> None:
    data, backups = tmp_path / "node", tmp_path / "backups"
    admin = init(data, "1101-0105", "北京市朝阳区人民法院")
    node = Serve(data, SIFA_SEAL_INTERVAL_SECONDS="0.02")
    try:
        token, dossiers = Writer.clerk(node.url, admin, clients=3)
        with httpx2.Client(base_url=node.url, timeout=30) as http:
            files = {upload(http, token, d, f"起诉状 {n}".encode() * (n + 1), f"起诉状{n}.txt")
                     for n, d in enumerate(dossiers)}  # fmt: skip
            with Writer(node.url, token, dossiers, pause=0.005) as load:
                time.sleep(1.0)
                acked_before = load.acked
                code, out, err = run("backup", str(backups), "--data-dir", str(data), "--json")
                assert code == 0, err
                first: dict[str, Any] = json.loads(out)
                time.sleep(0.5)
            assert acked_before > 20 and load.acked > acked_before
            assert first["files"] == 3 and first["copied"] == 3 and not first["missing"]
            files.add(upload(http, token, dossiers[0], "判决书".encode(), "判决书.txt"))
        node.sealing()
        code, out, err = run("backup", str(backups), "--data-dir", str(data), "--json")
        assert code == 0, err
        second = json.loads(out)
        assert second["files"] == 4 and second["copied"] == 1  # incremental: only the new file is copied
    finally:
        node.stop()
    snaps = sorted(p.name for p in (backups / "snapshots").iterdir())
    assert snaps == [first["snapshot"], second["snapshot"]]
    assert sorted(p.name for p in (backups / "blobs").glob("*/*/*")) == sorted(files)

    # The snapshot taken under load, into a new data dir: every event acknowledged before it began is there.
    restored = tmp_path / "restored"
    code, _, err = run("restore", "--from", str(backups), "--snapshot", first["snapshot"], "--data-dir",
                       str(restored))  # fmt: skip
    assert code == 0, err
    report = audit(restored)
    assert report["events"] >= 3 + 3 + acked_before  # opened, uploaded, registered
    assert report["leaves"] >= first["tree_size"]
    assert run("seal", "--once", "--data-dir", str(restored))[0] == 0  # what came after the tree's copy
    sealed = audit(restored)  # the files are counted from sealed leaves: under load some were sealed only now
    assert sealed["unsealed"] == 0 and sealed["blobs"] == 3

    # The newest snapshot holds the whole node as it stopped.
    newest = tmp_path / "newest"
    assert run("restore", "--from", str(backups), "--data-dir", str(newest))[0] == 0
    whole = audit(newest)
    assert whole["blobs"] == 4 and whole["events"] == audit(data)["events"]


def test_the_operating_commands_refuse_what_they_cannot_do_and_change_nothing(tmp_path: Path) -> None:
    data, backups = tmp_path / "node", tmp_path / "backups"
    init(data, "1101-0105", "北京市朝阳区人民法院")
    assert run("backup", str(backups), "--data-dir", str(data))[0] == 0

    def files() -> list[tuple[str, int]]:  # SQLite's -wal and -shm come and go with connections
        return sorted((p.name, p.stat().st_mtime_ns) for p in data.iterdir() if not p.name.endswith(("-wal", "-shm")))

    before = files()
    cases = {
        "into a node": ("restore", "--from", str(backups), "--data-dir", str(data)),
        "no backup there": ("restore", "--from", str(tmp_path / "none"), "--data-dir", str(tmp_path / "a")),
        "no such snapshot": ("restore", "--from", str(backups), "--snapshot", "x", "--data-dir", str(tmp_path / "b")),
        "files and --from": ("restore", "--from", str(backups), "--data-dir", str(tmp_path / "c"), str(data / "x")),
        "neither": ("restore", "--data-dir", str(data)),
        "backup of no node": ("backup", str(tmp_path / "d"), "--data-dir", str(tmp_path / "empty")),
        "fixity of no node": ("fixity", "--data-dir", str(tmp_path / "empty")),
        "publish without a bucket": ("publish", "--data-dir", str(data)),
        "serve with no workers": ("serve", "--workers", "0", "--data-dir", str(data)),
    }
    for name, argv in cases.items():
        code, _, err = run(*argv)
        assert code == 2, name
        assert len(err.strip().splitlines()) == 1 and "Traceback" not in err, (name, err)
    assert files() == before
    for made in "abc":
        assert not (tmp_path / made / "node.json").exists()


@pytest.mark.slow
def test_a_node_on_postgresql_backs_up_with_pg_dump_and_restores_into_a_new_database(
    tmp_path: Path, postgres: PostgresCluster, monkeypatch: pytest.MonkeyPatch
) -> None:
    data, backups = tmp_path / "node", tmp_path / "backups"
    dsn = postgres.create_database(f"bk{abs(hash(tmp_path)) % 10**9}")
    monkeypatch.setenv("SIFA_DATABASE_URL", dsn)
    admin = init(data, "1101-0105", "北京市朝阳区人民法院")
    node = Serve(data, SIFA_DATABASE_URL=dsn)
    try:
        token, dossiers = Writer.clerk(node.url, admin, clients=2)
        with httpx2.Client(base_url=node.url, timeout=30) as http:
            sha = upload(http, token, dossiers[0], "答辩状".encode(), "答辩状.txt")
            for n in range(5):
                register(http, token, dossiers[1], n + 1)
        node.sealing()
        code, out, err = run("backup", str(backups), "--data-dir", str(data), "--json")
        assert code == 0, err
    finally:
        node.stop()
    snapshot = backups / "snapshots" / json.loads(out)["snapshot"]
    assert (snapshot / "postgres.dump").is_file() and not (snapshot / "events.sqlite").exists()
    original = audit(data)

    restored = tmp_path / "restored"
    code, _, err = run("restore", "--from", str(backups), "--data-dir", str(restored))
    assert code == 2 and "not empty" in err  # the node's own database: refused, nothing changed
    target = postgres.create_database(f"rs{abs(hash(tmp_path)) % 10**9}")
    monkeypatch.setenv("SIFA_DATABASE_URL", target)
    code, _, err = run("restore", "--from", str(backups), "--data-dir", str(restored))
    assert code == 0, err
    report = audit(restored)
    assert report["events"] == original["events"] == report["leaves"] == original["leaves"] >= 2 + 1 + 5
    assert report["blobs"] == 1 and (restored / "blobs").is_dir() and sha


def _cosigned(url: str, witness: str, want: int, timeout: float = 30) -> None:
    """Wait until the log's checkpoint has ``want`` leaves or more and ``witness``'s cosignature."""
    deadline = time.monotonic() + timeout
    note = ""
    while True:
        with contextlib.suppress(httpx2.TransportError):
            note = httpx2.get(f"{url}/v1/log/checkpoint", timeout=5).text
            if int(note.splitlines()[1]) >= want and f"— {witness} " in note:
                return
        assert time.monotonic() < deadline, f"the witness did not cosign: {note}"
        time.sleep(0.1)


def _health(url: str) -> dict[str, Any]:
    body: dict[str, Any] = httpx2.get(f"{url}/healthz", timeout=10).json()
    return body


@pytest.mark.slow
def test_a_restored_node_behind_its_witnesses_refuses_to_seal(tmp_path: Path) -> None:
    admin = init(tmp_path / "log", "1101-0105", "北京市朝阳区人民法院")
    init(tmp_path / "w", "1101-0300", "北京市方圆公证处")
    (tmp_path / "logs.json").write_text(json.dumps({"format": "sifa-trust/1", "logs": [trust_entry(tmp_path / "log")]},
                                                   ensure_ascii=False))  # fmt: skip
    witness = Serve(tmp_path / "w", SIFA_WITNESS_LOGS=str(tmp_path / "logs.json"))
    nodes: list[Serve] = []
    try:
        entry = trust_entry(tmp_path / "w", "--witness")
        wname = entry["key"].split("+")[0]  # the witness's key name, as its cosignature lines say
        trust = {"format": "sifa-trust/1", "logs": [trust_entry(tmp_path / "log")], "quorum": 1,
                 "witnesses": [{**entry, "url": f"{witness.url}/witness"}]}  # fmt: skip
        (tmp_path / "trust.json").write_text(json.dumps(trust, ensure_ascii=False))
        env = {"SIFA_WITNESSES": str(tmp_path / "trust.json"), "SIFA_WITNESS_INTERVAL_SECONDS": "0.2"}
        nodes.append(log := Serve(tmp_path / "log", **env))
        token, (d,) = Writer.clerk(log.url, admin, clients=1)
        with httpx2.Client(base_url=log.url, timeout=30) as http:
            for n in range(3):
                register(http, token, d, n + 1)
            old = log.sealing()["tree_size"]
            _cosigned(log.url, wname, old)
            assert run("backup", str(tmp_path / "old"), "--data-dir", str(tmp_path / "log"))[0] == 0
            for n in range(3, 6):
                register(http, token, d, n + 1)
            new = log.sealing()["tree_size"]
            _cosigned(log.url, wname, new)
            assert run("backup", str(tmp_path / "new"), "--data-dir", str(tmp_path / "log"))[0] == 0
        log.stop()
        assert new == old + 3

        # The older backup: its log is behind what the witness cosigned.
        assert run("restore", "--from", str(tmp_path / "old"), "--data-dir", str(tmp_path / "r1"))[0] == 0
        assert (tmp_path / "r1" / RESTORED).exists()
        with pytest.MonkeyPatch.context() as mp:
            mp.setenv("SIFA_WITNESSES", str(tmp_path / "trust.json"))
            code, _, err = run("seal", "--once", "--data-dir", str(tmp_path / "r1"))
        assert code == 1 and f"has cosigned size {new}" in err and "nothing was sealed" in err
        nodes.append(r1 := Serve(tmp_path / "r1", **env))
        with httpx2.Client(base_url=r1.url, timeout=30) as http:
            register(http, token, d, 99)  # accepted, never sealed while the guard refuses
        deadline = time.monotonic() + 30
        while (h := _health(r1.url))["sequencer"] != "stalled":
            assert time.monotonic() < deadline, h
            time.sleep(0.1)
        assert f"has cosigned size {new}" in h["stalled"]["reason"] and h["status"] == "degraded"
        time.sleep(1.0)
        assert _health(r1.url)["tree_size"] == old and _health(r1.url)["events_waiting"] >= 1
        assert int(httpx2.get(f"{r1.url}/v1/log/checkpoint").text.splitlines()[1]) == old
        r1.stop()

        # The operator's decision: the newer backup, which the witness agrees with, seals on at once.
        assert run("restore", "--from", str(tmp_path / "new"), "--data-dir", str(tmp_path / "r2"))[0] == 0
        nodes.append(r2 := Serve(tmp_path / "r2", **env))
        token2, (d2,) = Writer.clerk(r2.url, admin, clients=1, first=950)
        r2.sealing()
        _cosigned(r2.url, wname, new + 1)  # the dossier opened here is sealed and cosigned
        assert not (tmp_path / "r2" / RESTORED).exists()
        assert _health(r2.url)["status"] == "ok" and d2 and token2
    finally:
        for n in nodes:
            n.stop()
        witness.stop()


@pytest.mark.slow
def test_a_node_on_s3_backs_its_files_up_and_restores_them_into_the_files_of_a_new_node(
    tmp_path: Path, s3_server: MotoServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Files travel by content address, whatever the store: S3 (moto) in, a filesystem node out."""
    data, backups = tmp_path / "node", tmp_path / "backups"
    s3 = {"SIFA_S3_ENDPOINT": s3_server.endpoint, "SIFA_S3_SECURE": "false", "SIFA_S3_BUCKET": "backup-src",
          "SIFA_S3_ACCESS_KEY": s3_server.access_key, "SIFA_S3_SECRET_KEY": s3_server.secret_key}  # fmt: skip
    admin = init(data, "1101-0105", "北京市朝阳区人民法院")
    node = Serve(data, **s3)
    try:
        token, (d,) = Writer.clerk(node.url, admin, clients=1)
        with httpx2.Client(base_url=node.url, timeout=30) as http:
            sha = upload(http, token, d, "证据目录".encode(), "证据目录.txt")
        node.sealing()
    finally:
        node.stop()
    for k, v in s3.items():
        monkeypatch.setenv(k, v)
    code, out, err = run("backup", str(backups), "--data-dir", str(data), "--json")
    assert code == 0, err
    assert json.loads(out)["copied"] == 1 and (backups / "blobs" / sha[:2] / sha[2:4] / sha).is_file()
    for k in s3:
        monkeypatch.delenv(k)
    assert run("restore", "--from", str(backups), "--data-dir", str(tmp_path / "restored"))[0] == 0
    report = audit(tmp_path / "restored")
    assert report["blobs"] == 1 and (tmp_path / "restored" / "blobs" / "blobs" / sha[:2] / sha[2:4] / sha).is_file()


def test_a_corrupt_file_is_reported_missing_and_never_kept(tmp_path: Path) -> None:
    """A file whose bytes no longer hash to its name is not copied into the backup (exit 1, named in
    ``missing``); the sound one is, and nothing half-written is left in the backup's store."""
    data, backups = tmp_path / "node", tmp_path / "backups"
    admin = init(data, "1101-0105", "北京市朝阳区人民法院")
    node = Serve(data, SIFA_SEAL_INTERVAL_SECONDS="0.02")
    try:
        token, (d,) = Writer.clerk(node.url, admin, clients=1)
        with httpx2.Client(base_url=node.url, timeout=30) as http:
            sound = upload(http, token, d, "证据一".encode() * 1000, "一.txt")
            rotten = upload(http, token, d, "证据二".encode() * 1000, "二.txt")
        node.sealing()
    finally:
        node.stop()
    path = data / "blobs" / "blobs" / rotten[:2] / rotten[2:4] / rotten
    path.chmod(0o600)
    body = bytearray(path.read_bytes())
    body[len(body) // 2] ^= 0x01
    path.write_bytes(bytes(body))
    code, out, err = run("backup", str(backups), "--data-dir", str(data), "--json")
    report = json.loads(out)
    assert code == 1 and report["missing"] == [rotten] and report["copied"] == 1, err
    assert sorted(p.name for p in (backups / "blobs").glob("*/*/*")) == [sound]
    assert not list((backups / "tmp").iterdir())  # the cut copy was removed
