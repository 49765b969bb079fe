"""``sifa serve --workers 3`` on PostgreSQL and S3 (moto): 64 clients write to 10 hot dossiers through
all workers at once; nothing acknowledged is lost, nothing is doubled, ``sifa audit`` is clean.

Two workers saving the same dossier meet in the event store: the later save conflicts, the worker
re-runs the moved dossiers' commands on them read afresh, after a random wait, and saves the rest of
its batch as it was (dossier/group_commit.py). A client hears 409 ``dossier_conflict`` only after
``RETRIES`` conflicts of its one write; here none does."""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx2
import pytest

from api.cli import main as sifa
from api.composition import open_node
from api.settings import Settings
from tests.nodes import Writer, children, init
from tests.servers import MotoServer, PostgresCluster, free_port, wait_for_port

ROOT = Path(__file__).resolve().parent.parent
WORKERS, CLIENTS, HOT = 3, 64, 10
SECONDS = float(os.environ.get("SIFA_WORKERS_SECONDS", "8"))


@pytest.mark.slow
def test_three_workers_64_clients_10_hot_dossiers_lose_and_double_nothing(
    tmp_path: Path, postgres: PostgresCluster, s3_server: MotoServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    dsn = postgres.create_database(f"wk{abs(hash(tmp_path)) % 10**9}")
    env = {"SIFA_DATABASE_URL": dsn, "SIFA_S3_ENDPOINT": s3_server.endpoint, "SIFA_S3_SECURE": "false",
           "SIFA_S3_BUCKET": "workers", "SIFA_S3_ACCESS_KEY": s3_server.access_key,
           "SIFA_S3_SECRET_KEY": s3_server.secret_key}  # fmt: skip
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    data = tmp_path / "node"
    admin = init(data, "1101-0105", "北京市朝阳区人民法院")
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "api.cli", "serve", "--workers", str(WORKERS)], cwd=ROOT,
                            env={**os.environ, **env, "SIFA_DATA_DIR": str(data), "SIFA_PORT": str(port),
                                 "SIFA_ACCESS_LOG": "false", "SIFA_SEAL_INTERVAL_SECONDS": "0.05"},
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    acked: list[tuple[str, str]] = []  # (dossier, evidence sha256) answered 2xx
    answers: Counter[int] = Counter()
    lock = threading.Lock()
    try:
        wait_for_port(port, timeout=60)
        deadline = time.monotonic() + 60
        while len(children(proc.pid)) < WORKERS:
            assert time.monotonic() < deadline, "the workers did not start"
            time.sleep(0.1)
        token, dossiers = Writer.clerk(url, admin, clients=HOT)
        auth = {"Authorization": f"Bearer {token}"}
        one_file = http_upload(url, auth, dossiers[0])  # a file through the S3 store as well
        stop = time.monotonic() + SECONDS

        def client(n: int) -> None:
            with httpx2.Client(base_url=url, headers=auth, timeout=30) as http:
                i = 0
                while time.monotonic() < stop:
                    i += 1
                    d = dossiers[(n + i) % HOT]
                    sha = hashlib.sha256(f"{n}/{i}".encode()).hexdigest()
                    try:
                        r = http.post(f"/v1/dossiers/{d}/evidence", json={
                            "sha256": sha, "size": i, "name": f"证据{n}-{i}.pdf",
                            "submitter": {"role": "原告", "name": "张三"}})  # fmt: skip
                        status = r.status_code
                    except httpx2.TransportError:
                        status = 0
                    with lock:
                        answers[status] += 1
                        if status // 100 == 2:
                            acked.append((d, sha))

        threads = [threading.Thread(target=client, args=(n,)) for n in range(CLIENTS)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=SECONDS + 60)
        with httpx2.Client(base_url=url, timeout=10) as http:
            deadline = time.monotonic() + 60
            while (h := http.get("/healthz").json())["events_waiting"]:
                assert time.monotonic() < deadline, h
                time.sleep(0.1)
        assert h["sequencer"] == "sealing"
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        code = proc.wait(timeout=60)
    assert code == 0
    print(f"answers: {dict(answers)}; {len(acked)} acknowledged in {SECONDS:.0f} s")
    assert len(acked) > 200 and set(answers) == {200}, answers  # no 409 (conflicts retried), no 500, none cut

    with open_node(Settings(data_dir=data)) as node:
        app, blobs = node.dossiers, node.blobs
        recorded: Counter[tuple[str, str]] = Counter()
        for d in dossiers:
            for e in app.events.get(d):
                if type(e).__name__ == "EvidenceSubmitted":
                    recorded[(d, e.sha256)] += 1
        assert blobs.exists(one_file)
    assert [k for k, n in recorded.items() if n > 1] == []  # nothing doubled, a write re-run after a conflict neither
    assert [k for k in acked if recorded[k] != 1] == []  # every acknowledged write there, once
    assert set(recorded) == set(acked)  # and nothing a client was not told of
    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(io.StringIO()):
        assert sifa(["audit", "--data-dir", str(data), "--json"]) == 0
    report: dict[str, Any] = json.loads(out.getvalue())
    assert report["findings"] == [] and report["unsealed"] == 0 and report["blobs"] == 1


def http_upload(url: str, auth: dict[str, str], dossier: str) -> str:
    from urllib.parse import quote

    r = httpx2.post(f"{url}/v1/dossiers/{dossier}/documents", content="庭审笔录".encode(), timeout=30,
                    headers={**auth, "X-File-Name": quote("庭审笔录.txt"), "Content-Type": "text/plain"})  # fmt: skip
    assert r.status_code == 201, r.text
    sha: str = r.json()["sha256"]
    return sha


@pytest.mark.slow
def test_two_workers_the_same_files_uploaded_at_once_one_document_each_every_answer_names_it(
    tmp_path: Path, postgres: PostgresCluster, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Clients upload the same files to the same dossiers at once, through two workers: each file becomes
    one document of its dossier; every client is answered 201 (its upload recorded it) or 200 (an earlier
    one did), naming that one document: never a 500, never a document that is not recorded. (A copy
    refused on a document still pending in the same batch, whose save then conflicted with the other
    worker's, used to name a document never recorded: its answer failed with a 500.)"""
    from urllib.parse import quote

    dsn = postgres.create_database(f"wu{abs(hash(tmp_path)) % 10**9}")
    monkeypatch.setenv("SIFA_DATABASE_URL", dsn)
    data = tmp_path / "node"
    admin = init(data, "1101-0105", "北京市朝阳区人民法院")
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "api.cli", "serve", "--workers", "2"], cwd=ROOT,
                            env={**os.environ, "SIFA_DATABASE_URL": dsn, "SIFA_DATA_DIR": str(data),
                                 "SIFA_PORT": str(port), "SIFA_ACCESS_LOG": "false"},
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    answered: list[tuple[str, str, int, str]] = []  # (dossier, sha256, status, document_id)
    lock = threading.Lock()
    try:
        wait_for_port(port, timeout=60)
        deadline = time.monotonic() + 60
        while len(children(proc.pid)) < 2:
            assert time.monotonic() < deadline, "the workers did not start"
            time.sleep(0.1)
        _, dossiers = Writer.clerk(url, admin, clients=3)
        tokens = []  # a credential each (at most a few uploads at once a credential)
        for n in range(12):
            r = httpx2.post(f"{url}/v1/principals", headers={"Authorization": f"Bearer {admin}"},
                            json={"name": f"书记员{n}", "role": "clerk"}, timeout=30)  # fmt: skip
            assert r.status_code == 201, r.text
            tokens.append(r.json()["token"])
        files = 90

        def client(n: int) -> None:
            with httpx2.Client(base_url=url, headers={"Authorization": f"Bearer {tokens[n]}"}, timeout=30) as http:
                for i in range(files):  # every client the same files in the same order: they meet
                    d = dossiers[i % len(dossiers)]
                    body = f"第{i}份笔录".encode()
                    try:
                        r = http.post(f"/v1/dossiers/{d}/documents", content=body, headers={
                            "X-File-Name": quote(f"笔录{i}-{n}.txt"), "Content-Type": "text/plain"})  # fmt: skip
                        status, doc = (
                            r.status_code,
                            r.json().get("document_id", r.text) if r.status_code < 500 else r.text,
                        )
                    except httpx2.TransportError as exc:
                        status, doc = 0, repr(exc)
                    with lock:
                        answered.append((d, hashlib.sha256(body).hexdigest(), status, doc))

        threads = [threading.Thread(target=client, args=(n,)) for n in range(12)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=120)
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        code = proc.wait(timeout=60)
    assert code == 0
    assert len(answered) == 12 * files  # every client got to the end
    statuses = Counter(s for _, _, s, _ in answered)
    print(f"answers: {dict(statuses)}")
    assert set(statuses) <= {200, 201} and statuses[201] == files, [a for a in answered if a[2] not in (200, 201)]
    with open_node(Settings(data_dir=data)) as node:
        recorded = {
            (d, doc["sha256"]): doc_id for d in dossiers for doc_id, doc in node.dossiers.get(d).documents.items()
        }
    assert len(recorded) == files  # one document a file, in its dossier
    assert [a for a in answered if recorded[(a[0], a[1])] != a[3]] == []  # every answer names it
