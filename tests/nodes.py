"""Court nodes as separate ``sifa serve`` processes on 127.0.0.1, for multi-node tests."""

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
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

import httpx2

from api.cli import main as sifa
from tests.servers import free_port, wait_for_port

ROOT = Path(__file__).resolve().parent.parent


def init(data: Path, court: str, name: str) -> str:
    """``sifa init``; returns the administrator's credential."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert sifa(["init", str(data), "--court", court, "--name", name]) == 0
    return out.getvalue().strip()


def trust_entry(data: Path, *witness: str) -> dict[str, Any]:
    """``sifa trust-entry``: the node's log (or ``--witness``) entry for a trust file."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert sifa(["trust-entry", str(data), *witness]) == 0
    entry: dict[str, Any] = json.loads(out.getvalue())
    return entry


class Serve:
    """``sifa serve`` on ``data`` in its own process group; ``stop`` ends it and its sequencer."""

    def __init__(self, data: Path, port: int | None = None, **env: str) -> None:
        self.port = port or free_port()
        settings = {"SIFA_DATA_DIR": str(data), "SIFA_PORT": str(self.port), "SIFA_ACCESS_LOG": "false", **env}
        self.proc = subprocess.Popen([sys.executable, "-m", "api.cli", "serve"], cwd=ROOT, env={**os.environ,
                                     **settings}, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                     start_new_session=True)  # fmt: skip
        self.url = f"http://127.0.0.1:{self.port}"
        try:
            wait_for_port(self.port, timeout=60)
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            self.proc.wait(timeout=30)


@dataclass
class PeerNode:
    code: str
    data: Path
    serve: Serve
    admin: str  # the administrator's credential
    peers: Path  # its SIFA_PEERS trust file


def start_peer_nodes(root: Path, courts: list[dict[str, Any]]) -> dict[str, PeerNode]:
    """Each court of ``courts`` (code, name, level, parent) as its own ``sifa serve`` under ``root``:
    all share one court registry and each trusts the others as peers (log keys and URLs). If one
    fails to start, those started are stopped. The caller stops them."""
    admins = {c["code"]: init(root / c["code"], c["code"], c["name"]) for c in courts}
    ports = {code: free_port() for code in admins}
    for code in admins:
        (root / code / "courts.json").write_text(json.dumps({"courts": courts}, ensure_ascii=False))
    entries = {code: {**trust_entry(root / code), "url": f"http://127.0.0.1:{ports[code]}"} for code in admins}
    nodes: dict[str, PeerNode] = {}
    try:
        for code in admins:
            peers = root / f"peers-{code}.json"
            others = [e for c, e in entries.items() if c != code]
            peers.write_text(json.dumps({"format": "sifa-trust/1", "logs": others}, ensure_ascii=False))
            serve = Serve(root / code, ports[code], SIFA_PEERS=str(peers))
            nodes[code] = PeerNode(code, root / code, serve, admins[code], peers)
    except BaseException:
        for n in nodes.values():
            n.serve.stop()
        raise
    return nodes


class Writer:
    """Light write load on a node: ``clients`` threads registering evidence (one event each) with a
    pause between requests, until the ``with`` block ends; ``acked`` counts the 2xx answers. The
    first thing it does is issue a clerk's credential and open a dossier per client."""

    def __init__(self, url: str, admin: str, *, clients: int = 2, pause: float = 0.02) -> None:
        self.url, self.pause, self.acked, self.failed = url, pause, 0, 0
        with httpx2.Client(base_url=url, timeout=30) as http:
            r = http.post("/v1/principals", headers={"Authorization": f"Bearer {admin}"},
                          json={"name": "书记员", "role": "clerk"})  # fmt: skip
            assert r.status_code == 201, r.text
            self.auth = {"Authorization": f"Bearer {r.json()['token']}"}
            self.dossiers = []
            for n in range(clients):
                r = http.post("/v1/dossiers", headers=self.auth, json={
                    "case_number": f"（2026）京0105民初{900 + n}号", "case_type": "民事"})  # fmt: skip
                assert r.status_code == 201, r.text
                self.dossiers.append(r.json()["dossier"])
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._threads = [threading.Thread(target=self._client, args=(d,), daemon=True) for d in self.dossiers]

    def __enter__(self) -> Writer:
        for t in self._threads:
            t.start()
        return self

    def __exit__(self, *exc: type[BaseException] | BaseException | TracebackType | None) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(timeout=60)

    def _client(self, dossier: str) -> None:
        with httpx2.Client(base_url=self.url, headers=self.auth, timeout=10) as http:
            i = 0
            while not self._stop.wait(self.pause):
                i += 1
                try:
                    r = http.post(f"/v1/dossiers/{dossier}/evidence", json={
                        "sha256": hashlib.sha256(f"{dossier}/{i}".encode()).hexdigest(), "size": i,
                        "name": f"证据{i}.pdf", "submitter": {"role": "原告", "name": "张三"}})  # fmt: skip
                except httpx2.TransportError:
                    r = None
                with self._lock:
                    if r is not None and r.status_code // 100 == 2:
                        self.acked += 1
                    else:
                        self.failed += 1
