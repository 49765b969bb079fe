"""One sequencer, elected: nodes on one PostgreSQL database, exactly one seals; kill -9 it and another
takes over within 5 s (docs/operations.md, "One sequencer per log")."""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import signal
import time
from pathlib import Path
from typing import Any

import httpx2
import pytest

from api.cli import main as sifa
from tests.nodes import Serve, Writer, holders, init, owns_port
from tests.servers import PostgresCluster

TAKEOVER = 5.0  # seconds, the bound


def health(url: str) -> dict[str, Any]:
    body: dict[str, Any] = httpx2.get(f"{url}/healthz", timeout=10).json()
    return body


@pytest.mark.slow
def test_exactly_one_node_seals_and_another_takes_over_within_5_s_of_a_kill(
    tmp_path: Path, postgres: PostgresCluster, monkeypatch: pytest.MonkeyPatch
) -> None:
    dsn = postgres.create_database(f"el{abs(hash(tmp_path)) % 10**9}")
    monkeypatch.setenv("SIFA_DATABASE_URL", dsn)
    admin = init(tmp_path / "a", "1101-0105", "北京市朝阳区人民法院")
    shutil.copytree(tmp_path / "a", tmp_path / "b")  # a second host: the node's keys and config, one database
    env = {"SIFA_DATABASE_URL": dsn, "SIFA_SEAL_INTERVAL_SECONDS": "0.02"}
    nodes = [Serve(tmp_path / "a", **env), Serve(tmp_path / "b", **env)]
    try:
        for n in nodes:
            n.sealing()
        sequencers = [n.sequencer() for n in nodes]
        token, dossiers = Writer.clerk(nodes[0].url, admin, clients=4)
        loads = [Writer(nodes[0].url, token, dossiers[:2]), Writer(nodes[1].url, token, dossiers[2:])]
        with loads[0], loads[1]:
            seen = set()
            for _ in range(20):  # both nodes write; one lock holder at every look, always the same
                found = holders(dsn)
                assert len(found) == 1, found
                seen.add(found[0])
                time.sleep(0.05)
            assert len(seen) == 1
        (port,) = seen
        sealing = [i for i, pid in enumerate(sequencers) if owns_port(pid, port)]
        assert len(sealing) == 1, "exactly one node's sequencer holds the lock"
        dead, alive = nodes[sealing[0]], nodes[1 - sealing[0]]
        acked = sum(w.acked for w in loads)
        assert acked > 20

        os.killpg(dead.proc.pid, signal.SIGKILL)  # the sealing node, sequencer and all
        killed = time.monotonic()
        dead.proc.wait(timeout=10)
        with httpx2.Client(base_url=alive.url, timeout=10) as http:
            r = http.post(f"/v1/dossiers/{dossiers[0]}/evidence", headers={"Authorization": f"Bearer {token}"},
                          json={"sha256": "ab" * 32, "size": 1, "name": "接管后.pdf",
                                "submitter": {"role": "原告", "name": "张三"}})  # fmt: skip
            assert r.status_code == 200, r.text
            version = r.json()["version"]
            while http.get(f"/v1/dossiers/{dossiers[0]}/receipts/{version}",
                           headers={"Authorization": f"Bearer {token}"}).status_code != 200:  # fmt: skip
                assert time.monotonic() - killed < TAKEOVER, "no sequencer took over within 5 s"
                time.sleep(0.02)
        took = time.monotonic() - killed
        assert took < TAKEOVER
        assert len(holders(dsn)) == 1 and health(alive.url)["sequencer"] == "sealing"
        print(f"takeover: sealed {took:.2f} s after kill -9 of the sealing node")
    finally:
        for n in nodes:
            n.stop()
    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(io.StringIO()):
        code = sifa(["audit", "--data-dir", str(tmp_path / "b"), "--json"])
    report = json.loads(out.getvalue())
    assert code == 0, report["findings"]
    assert report["unsealed"] == 0 and report["events"] >= 4 + acked + 1  # nothing acknowledged lost, nothing doubled
    assert report["leaves"] == report["events"]
