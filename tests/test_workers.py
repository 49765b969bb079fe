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
