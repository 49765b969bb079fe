"""PostgreSQL outage: requests fail fast with 503 and a clear code; the node recovers without a restart."""

from __future__ import annotations

import contextlib
import io
import os
import time
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.cli import main as sifa
from api.settings import Settings
from tests.servers import PostgresCluster


@pytest.mark.slow
def test_postgres_outage_is_503_and_recovers(postgres: PostgresCluster, tmp_path: Path) -> None:
    dsn = postgres.create_database("outage")
    data = tmp_path / "node"
    out = io.StringIO()
    os.environ["SIFA_DATABASE_URL"] = dsn
    try:
        with contextlib.redirect_stdout(out):
            assert sifa(["init", str(data), "--court", "1101-0105", "--name", "北京市朝阳区人民法院"]) == 0
    finally:
        del os.environ["SIFA_DATABASE_URL"]
    admin = {"Authorization": f"Bearer {out.getvalue().strip()}"}
    settings = Settings(data_dir=data, database_url=dsn, seal_interval_seconds=0.01)
    with TestClient(create_app(settings)) as http:
        issued = http.post("/v1/principals", headers=admin, json={"name": "书记员", "role": "clerk"})
        clerk = {"Authorization": "Bearer " + issued.json()["token"]}
        ok = http.post(
            "/v1/dossiers", headers=clerk, json={"case_number": "（2026）京0105民初1号", "case_type": "民事"}
        )
        assert ok.status_code == 201, ok.text
        postgres.pg_stop()
        try:
            t = time.monotonic()
            down = http.post("/v1/dossiers", headers=clerk,
                             json={"case_number": "（2026）京0105民初2号", "case_type": "民事"})  # fmt: skip
            assert time.monotonic() - t < 10, "an outage must fail fast"
            assert down.status_code == 503, down.text
            assert down.json()["code"] in ("storage_unavailable", "tree_store_unavailable", "database_unavailable")
        finally:
            postgres.pg_start_again()
        deadline = time.monotonic() + 30
        while True:
            again = http.post("/v1/dossiers", headers=clerk,
                              json={"case_number": "（2026）京0105民初3号", "case_type": "民事"})  # fmt: skip
            if again.status_code == 201 or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        assert again.status_code == 201, again.text
        # The acknowledged write before the outage is still there.
        assert http.get(f"/v1/dossiers/{ok.json()['dossier']}", headers=clerk).status_code == 200
