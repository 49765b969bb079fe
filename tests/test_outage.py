"""PostgreSQL outage: requests fail fast with 503 and a clear code; the node recovers without a restart."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.settings import Settings
from tests.nodes import init
from tests.servers import MotoServer, PostgresCluster, TcpProxy


@pytest.mark.slow
def test_postgres_outage_is_503_and_recovers(postgres: PostgresCluster, tmp_path: Path) -> None:
    dsn = postgres.create_database("outage")
    data = tmp_path / "node"
    os.environ["SIFA_DATABASE_URL"] = dsn
    try:
        token = init(data)
    finally:
        del os.environ["SIFA_DATABASE_URL"]
    admin = {"Authorization": f"Bearer {token}"}
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
        seen = http.get(f"/v1/dossiers/{ok.json()['dossier']}", headers=clerk)
        assert seen.status_code == 200, seen.text


@pytest.mark.slow
def test_s3_outage_is_503_and_recovers(s3_server: MotoServer, tmp_path: Path) -> None:
    """With the S3 endpoint unreachable: uploads and downloads fail fast with 503 and record
    nothing, hash-only registrations go on; when it is back, the node serves again unrestarted."""
    proxy = TcpProxy(s3_server.port).start()
    data = tmp_path / "node"
    admin = {"Authorization": f"Bearer {init(data)}"}
    settings = Settings(data_dir=data, seal_interval_seconds=0.01, s3_endpoint=proxy.endpoint, s3_secure=False,
                        s3_bucket="outage", s3_access_key=s3_server.access_key,
                        s3_secret_key=s3_server.secret_key)  # fmt: skip

    def upload(http: TestClient, d: str, body: bytes, name: str) -> Any:
        return http.post(f"/v1/dossiers/{d}/documents", content=body,
                         headers={**clerk, "X-File-Name": quote(name), "Content-Type": "text/plain"})  # fmt: skip

    try:
        with TestClient(create_app(settings)) as http:
            issued = http.post("/v1/principals", headers=admin, json={"name": "书记员", "role": "clerk"})
            clerk = {"Authorization": "Bearer " + issued.json()["token"]}
            opened = http.post("/v1/dossiers", headers=clerk, json={"case_number": "（2026）京0105民初9号",
                                                                     "case_type": "民事"})  # fmt: skip
            d = opened.json()["dossier"]
            first = upload(http, d, "起诉状正文".encode(), "起诉状.txt")
            assert first.status_code == 201, first.text
            sha = first.json()["sha256"]
            version = first.json()["version"]

            proxy.cut()
            try:
                t = time.monotonic()
                down = upload(http, d, b"during the outage", "outage.txt")
                got = http.get(f"/v1/dossiers/{d}/files/{sha}", headers=clerk)
                assert time.monotonic() - t < 10, "an outage must fail fast"
                for r in (down, got):
                    assert (r.status_code, r.json()["code"]) == (503, "storage_unavailable"), r.text
                evidence = http.post(
                    f"/v1/dossiers/{d}/evidence",
                    headers=clerk,
                    json={
                        "sha256": "ab" * 32,
                        "size": 1,
                        "name": "证据.pdf",
                        "submitter": {"role": "原告", "name": "张三"},
                    },
                )
                assert evidence.status_code == 200, evidence.text  # no file, no S3: recording goes on
                assert evidence.json()["version"] == version + 1  # the failed upload recorded nothing
            finally:
                proxy.start()

            again = upload(http, d, b"after the outage", "after.txt")
            assert again.status_code == 201, again.text
            back = http.get(f"/v1/dossiers/{d}/files/{sha}", headers=clerk)
            assert back.status_code == 200 and back.content == "起诉状正文".encode()
    finally:
        proxy.cut()
