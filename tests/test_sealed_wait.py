"""Waiting until sealed (dossier/sealed.py): the wait holds no worker thread, and a wait that runs
out answers 503 ``not_sealed_yet`` with ``Retry-After``."""

from __future__ import annotations

import asyncio
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx2
import pytest

from api.app import create_app
from api.settings import Settings
from dossier import usecases
from dossier.errors import NotSealedError
from dossier.sealed import until
from tests.nodes import in_thread, init
from tests.servers import free_port


def test_many_waits_share_two_worker_threads() -> None:
    """Forty waits of 0.3 s each on two worker threads end together: none holds a thread while it waits
    (a wait that slept in its thread, as the old ones did, would take 40 x 0.3 / 2 = 6 s)."""
    ready_at = time.monotonic() + 0.3

    def look() -> str | None:
        return "sealed" if time.monotonic() >= ready_at else None

    async def waits() -> list[str]:
        asyncio.get_running_loop().set_default_executor(ThreadPoolExecutor(2))
        return await asyncio.gather(*(until(look, timeout=5, error=lambda: NotSealedError("no")) for _ in range(40)))

    started = time.monotonic()
    assert asyncio.run(waits()) == ["sealed"] * 40
    assert time.monotonic() - started < 2.0


def test_a_wait_that_runs_out_raises_the_callers_error() -> None:
    async def wait() -> None:
        await until(lambda: None, timeout=0.1, error=lambda: NotSealedError("not yet"))

    with pytest.raises(NotSealedError, match="not yet"):
        asyncio.run(wait())


def test_a_package_not_sealed_in_time_is_503_with_retry_after(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(usecases, "SEALED_WAIT", 0.3)
    admin = init(tmp_path / "node", "1101-0105", "北京市朝阳区人民法院")
    port = free_port()
    # The sequencer seals once at its start, then not for an hour: what is written after waits.
    app = create_app(Settings(data_dir=tmp_path / "node", port=port, sequencer="thread", seal_interval_seconds=3600))
    with in_thread(app, port), httpx2.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as http:
        token = http.post("/v1/principals", headers={"Authorization": f"Bearer {admin}"},
                          json={"name": "书记员", "role": "clerk"}).json()["token"]  # fmt: skip
        auth = {"Authorization": f"Bearer {token}"}
        r = http.post("/v1/dossiers", headers=auth, json={"case_number": "（2026）京0105民初79号", "case_type": "民事"})
        assert r.status_code == 201, r.text
        d = r.json()["dossier"]
        r = http.get(f"/v1/dossiers/{d}/package", headers=auth)
        assert r.status_code == 503, r.text
        assert r.json()["code"] == "not_sealed_yet"
        assert r.headers["retry-after"] == "1"
        r = http.get(f"/v1/dossiers/{d}/receipts/1", headers=auth)  # a receipt's wait still ends as before
        assert r.status_code == 404 and r.json()["code"] == "tree_size", r.text
