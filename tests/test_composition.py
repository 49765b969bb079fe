"""The composition root (api/composition.py): one place builds a node, in either sequencer mode.

- A step of start-up that fails closes every store opened before it (nothing held open).
- With ``SIFA_SEQUENCER=thread`` the node still sends its checkpoints to the witnesses
  ``SIFA_WITNESSES`` names, so receipts reach their quorum.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

import httpx2
import pytest

from api.app import create_app
from api.composition import open_node, start_companions
from api.settings import Settings
from tests.nodes import in_thread, init, open_files, trust_entry
from tests.servers import free_port
from verifier.cli import main as sifa_verify


def _broken_late(data: Path) -> None:
    """The nonce store (opened last) cannot open: its file is a directory."""
    (data / "nonces.sqlite").mkdir()


def test_open_node_closes_what_it_opened_when_a_later_step_fails(tmp_path: Path) -> None:
    data = tmp_path / "node"
    init(data, "1101-0105", "北京市朝阳区人民法院")
    _broken_late(data)
    with pytest.raises(sqlite3.OperationalError), open_node(Settings(data_dir=data)):
        pass  # pragma: no cover
    assert open_files(data) == []


def test_the_apps_start_up_closes_what_it_opened_when_a_later_step_fails(tmp_path: Path) -> None:
    data = tmp_path / "node"
    init(data, "1101-0105", "北京市朝阳区人民法院")
    _broken_late(data)
    app = create_app(Settings(data_dir=data, sequencer="thread"))

    async def start() -> None:
        async with app.router.lifespan_context(app):
            pass  # pragma: no cover

    with pytest.raises(sqlite3.OperationalError):
        asyncio.run(start())
    assert open_files(data) == []


def _verify(receipt: dict[str, Any], trust: Path, tmp_path: Path) -> tuple[int, dict[str, Any]]:
    path = tmp_path / "receipt.json"
    path.write_text(json.dumps(receipt, ensure_ascii=False), encoding="utf-8")
    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(io.StringIO()):
        code = sifa_verify(["--receipt", str(path), "--trust", str(trust), "--json"])
    result: dict[str, Any] = json.loads(out.getvalue())
    return code, result


def test_thread_mode_sends_checkpoints_to_the_witnesses(tmp_path: Path) -> None:
    """``SIFA_SEQUENCER=thread`` and ``SIFA_WITNESSES``: a receipt verifies with the witness quorum."""
    admin = init(tmp_path / "log", "1101-0105", "北京市朝阳区人民法院")
    init(tmp_path / "witness", "1101-0300", "北京市方圆公证处")
    logs = {"format": "sifa-trust/1", "logs": [trust_entry(tmp_path / "log")]}
    (tmp_path / "logs.json").write_text(json.dumps(logs, ensure_ascii=False), encoding="utf-8")
    wport, lport = free_port(), free_port()
    trust = tmp_path / "trust.json"
    trust.write_text(json.dumps({**logs, "quorum": 1, "witnesses": [
        {**trust_entry(tmp_path / "witness", "--witness"), "url": f"http://127.0.0.1:{wport}/witness"}]},
        ensure_ascii=False), encoding="utf-8")  # fmt: skip
    witness = create_app(Settings(data_dir=tmp_path / "witness", port=wport, sequencer="thread",
                                  witness_logs=tmp_path / "logs.json"))  # fmt: skip
    court = create_app(Settings(data_dir=tmp_path / "log", port=lport, sequencer="thread", witnesses=trust,
                                seal_interval_seconds=0.02, witness_interval_seconds=0.1))  # fmt: skip
    with in_thread(witness, wport), in_thread(court, lport), httpx2.Client(base_url=f"http://127.0.0.1:{lport}",
                                                                           timeout=30) as http:  # fmt: skip
        token = http.post("/v1/principals", headers={"Authorization": f"Bearer {admin}"},
                          json={"name": "书记员", "role": "clerk"}).json()["token"]  # fmt: skip
        auth = {"Authorization": f"Bearer {token}"}
        r = http.post("/v1/dossiers", headers=auth, json={"case_number": "（2026）京0105民初78号", "case_type": "民事"})
        assert r.status_code == 201, r.text
        d = r.json()["dossier"]
        deadline = time.monotonic() + 30
        while True:
            r = http.get(f"/v1/dossiers/{d}/receipts/1", headers=auth)
            if r.status_code == 200:
                code, result = _verify(r.json(), trust, tmp_path)
                if code == 0:
                    break
            assert time.monotonic() < deadline, f"no receipt with the witness quorum: {r.text}"
            time.sleep(0.1)
    assert [c["check"] for c in result["checks"]] == ["receipt", "witnesses", "disclosures"]  # a sifa-leaf/2 receipt
    assert all(c["ok"] for c in result["checks"])


def test_start_companions_starts_trusted_time_beside_the_sequencer(tmp_path: Path) -> None:
    """SIFA_TSA_URLS: open_node builds the stamping and start_companions runs it, whichever process
    runs the sequencer (``sifa seal`` and the thread mode both start the companions)."""
    data = tmp_path / "node"
    init(data, "1101-0105", "北京市朝阳区人民法院")
    stop = threading.Event()
    with open_node(Settings(data_dir=data, tsa_urls=f"http://127.0.0.1:{free_port()}/tsa")) as node:
        assert node.stamping is not None and node.anchoring is None
        threads = start_companions(node, stop)
        try:
            assert "sifa-tsa" in {t.name for t in threads}
        finally:
            stop.set()
            for t in threads:
                t.join(timeout=10)
    assert not any(t.is_alive() for t in threads)
    with open_node(Settings(data_dir=data)) as node:
        assert node.stamping is None and "sifa-tsa" not in {t.name for t in start_companions(node, stop)}
