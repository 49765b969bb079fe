"""A running node over real HTTP (uvicorn on 127.0.0.1), shared by API test modules."""

from __future__ import annotations

import contextlib
import io
import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx2
import pytest
import uvicorn

from api.app import create_app
from api.cli import main as sifa
from api.settings import Settings
from ledger.note import Ed25519Signer
from tests.servers import free_port

ROLES = ("administrator", "clerk", "judge", "archivist", "lawyer", "party")
# The intermediate court, as a peer the node trusts (its signed requests, its packages).
PEER = Ed25519Signer("sifa.court/1101-0200", bytes(range(7, 39)))


class Node:
    def __init__(self, base: str, data: Path, admin: str) -> None:
        self.base, self.data, self.admin = base, data, admin
        self.http = httpx2.Client(base_url=base, timeout=30)
        self.tokens: dict[str, str] = {"administrator": admin}
        self.ids: dict[str, str] = {}

    def as_(self, role: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[role]}"}


@contextlib.contextmanager
def in_thread(app: Any, port: int) -> Iterator[uvicorn.Server]:
    """``app`` served by uvicorn on 127.0.0.1:``port`` in a thread of this process, until the block ends."""
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 20
        while not server.started:
            assert time.monotonic() < deadline, "uvicorn did not start"
            time.sleep(0.05)
        yield server
    finally:
        server.should_exit = True
        thread.join(timeout=30)


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Node]:
    data = tmp_path_factory.mktemp("node") / "data"
    capture = io.StringIO()
    with contextlib.redirect_stdout(capture):
        assert sifa(["init", str(data), "--court", "1101-0105", "--name", "北京市朝阳区人民法院"]) == 0
    admin = capture.getvalue().strip()
    courts = json.loads((data / "courts.json").read_text(encoding="utf-8"))
    courts["courts"].append({"code": "1101-0200", "name": "北京市第三中级人民法院", "level": "中级", "parent": None})
    (data / "courts.json").write_text(json.dumps(courts, ensure_ascii=False), encoding="utf-8")
    port = free_port()
    peers = data / "peers.json"
    peers.write_text(json.dumps({"logs": [{"key": PEER.verifier.vkey(), "url": "http://127.0.0.1:9"}]}))
    settings = Settings(
        data_dir=data,
        port=port,
        max_upload_bytes=20 << 20,
        seal_interval_seconds=0.01,
        peers=peers,
        public_url=f"http://127.0.0.1:{port}",
    )
    with in_thread(create_app(settings), port):
        n = Node(f"http://127.0.0.1:{port}", data, admin)
        for role in ROLES[1:]:
            r = n.http.post("/v1/principals", json={"name": f"{role} 测试", "role": role},
                            headers=n.as_("administrator"))  # fmt: skip
            assert r.status_code == 201, r.text
            n.tokens[role], n.ids[role] = r.json()["token"], r.json()["id"]
        yield n
        n.http.close()
