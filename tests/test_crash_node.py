"""Crash drill: a node under upload and registration load is killed with SIGKILL, again and again.

Afterwards no acknowledged (2xx) write is missing, every event has its leaf and every leaf its event,
and ``sifa audit`` is clean. The full drill (20 kills) runs here in well under two minutes.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx2
import pytest

from api.composition import open_node
from api.settings import Settings
from tests.nodes import init
from tests.servers import free_port, wait_for_port

ROOT = Path(__file__).resolve().parent.parent
KILLS = int(os.environ.get("SIFA_CRASH_KILLS", "20"))


class Node:
    """``sifa serve`` (and its sequencer) in a process group of its own, so one SIGKILL takes both."""

    def __init__(self, data: Path) -> None:
        self.port = free_port()
        env = {**os.environ, "SIFA_DATA_DIR": str(data), "SIFA_PORT": str(self.port),
               "SIFA_SEAL_INTERVAL_SECONDS": "0.01", "SIFA_ACCESS_LOG": "false"}  # fmt: skip
        self.proc = subprocess.Popen([sys.executable, "-m", "api.cli", "serve"], cwd=ROOT, env=env,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                     start_new_session=True)  # fmt: skip
        wait_for_port(self.port, timeout=60)
        self.base = f"http://127.0.0.1:{self.port}"

    def kill(self) -> None:
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=30)


class Load:
    """Clients uploading files and registering evidence until the node dies; keeps what was acknowledged."""

    def __init__(self, base: str, token: str, dossiers: list[str], seed: int) -> None:
        self.base, self.auth, self.dossiers = base, {"Authorization": f"Bearer {token}"}, dossiers
        self.acked: list[tuple[str, int, str | None]] = []  # (dossier, version, file sha256 or None)
        self.files: dict[str, bytes] = {}
        self.lock = threading.Lock()
        self.threads = [threading.Thread(target=self._client, args=(seed * 100 + k,)) for k in range(4)]
        for t in self.threads:
            t.start()

    def join(self) -> None:
        for t in self.threads:
            t.join(timeout=60)

    def _client(self, seed: int) -> None:
        rng = random.Random(seed)
        with httpx2.Client(base_url=self.base, headers=self.auth, timeout=10) as http:
            for i in range(10**6):
                d = rng.choice(self.dossiers)
                try:
                    if i % 2:
                        body = rng.randbytes(rng.randrange(1, 64 << 10))
                        r = http.post(f"/v1/dossiers/{d}/documents", content=body,
                                      headers={"X-File-Name": quote(f"卷宗材料{seed}-{i}.bin"),
                                               "X-Content-SHA256": hashlib.sha256(body).hexdigest()})  # fmt: skip
                    else:
                        body = b""
                        r = http.post(f"/v1/dossiers/{d}/evidence", json={
                            "sha256": hashlib.sha256(f"{seed}/{i}".encode()).hexdigest(), "size": i,
                            "name": f"证据{i}.pdf", "submitter": {"role": "原告", "name": "张三"}})  # fmt: skip
                except httpx2.TransportError:
                    return  # the node is gone
                if r.status_code // 100 != 2:
                    continue  # refused: must leave nothing, checked by the audit
                got: dict[str, Any] = r.json()
                sha = got.get("sha256")
                with self.lock:
                    self.acked.append((d, got["version"], sha))
                    if sha:
                        self.files[sha] = body


@pytest.mark.slow
def test_node_killed_repeatedly_under_load_loses_nothing_acknowledged(tmp_path: Path) -> None:
    data = tmp_path / "node"
    admin = {"Authorization": f"Bearer {init(data)}"}
    rng = random.Random(os.getpid())
    acked: list[tuple[str, int, str | None]] = []
    files: dict[str, bytes] = {}
    token, dossiers = "", []
    started = time.monotonic()
    for kill in range(KILLS):
        node = Node(data)
        try:
            if kill == 0:
                with httpx2.Client(base_url=node.base, timeout=30) as http:
                    token = http.post("/v1/principals", headers=admin,
                                      json={"name": "书记员", "role": "clerk"}).json()["token"]  # fmt: skip
                    dossiers = [http.post("/v1/dossiers", headers={"Authorization": f"Bearer {token}"},
                                          json={"case_number": f"（2026）京0105民初{800 + n}号",
                                                "case_type": "民事"}).json()["dossier"] for n in range(4)]  # fmt: skip
            load = Load(node.base, token, dossiers, kill)
            time.sleep(rng.uniform(0.2, 1.0))
        finally:
            node.kill()
        load.join()
        acked += load.acked
        files.update(load.files)
    assert time.monotonic() - started < 300
    assert len(acked) >= 2 * KILLS and any(sha for _, _, sha in acked), "too little load to test anything"

    sealed = subprocess.run([sys.executable, "-m", "api.cli", "seal", "--once", "--data-dir", str(data)], cwd=ROOT,
                            capture_output=True, text=True, timeout=120)  # fmt: skip
    assert sealed.returncode == 0, sealed.stderr
    audit = subprocess.run([sys.executable, "-m", "api.cli", "audit", "--json", "--data-dir", str(data)], cwd=ROOT,
                           capture_output=True, text=True, timeout=300)  # fmt: skip
    report = json.loads(audit.stdout)
    assert audit.returncode == 0 and report["clean"], audit.stderr
    assert report["unsealed"] == 0 and report["events"] == report["leaves"]

    with open_node(Settings(data_dir=data)) as node:
        assert node.log.size == report["events"]
        for d, version, sha in acked:
            dossier = node.dossiers.get(d)
            assert dossier.version >= version  # the acknowledged event and all before it are stored
            if sha:
                assert any(doc["sha256"] == sha for doc in dossier.documents.values())
                assert b"".join(node.blobs.read(sha)) == files[sha]
