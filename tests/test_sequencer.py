"""Exactly one sequencer seals a log: racing ``sifa seal --once`` processes beside a running node
never double a leaf (docs/operations.md, issue 16 item 2)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from api.cli import _open_node
from dossier.envelope import read_leaf
from ledger.hashing import SHA256
from ledger.log import MerkleLog
from tests.nodes import ROOT, Serve, Writer, init

SEALS, AT_ONCE = 20, 5


@pytest.fixture(params=["sqlite", "postgres"])
def backend(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, str]]:
    """The environment that puts a node on each backend (for in-process commands and children)."""
    env = {}
    if request.param == "postgres":
        env["SIFA_DATABASE_URL"] = request.getfixturevalue("pg_dsn")
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    yield env


def sifa(*args: str, env: dict[str, str], timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "api.cli", *args], cwd=ROOT, env={**os.environ, **env},
                          capture_output=True, text=True, timeout=timeout)  # fmt: skip


def check_log(data: Path) -> tuple[int, int]:
    """(events, leaves) after checking every leaf: its ``seq`` is its index, its ``prev`` the leaf
    hash of the same dossier's previous leaf, and no event has two leaves."""
    _, app, store, blobs = _open_node(data)
    try:
        log = MerkleLog(store)
        events = app.recorder.max_notification_id() or 0
        heads: dict[str, str | None] = {}
        seen: set[tuple[str, int]] = set()
        for index, data_ in enumerate(log.entries(0, log.size)):
            leaf = read_leaf(data_)
            assert leaf["seq"] == index, f"leaf {index} says seq {leaf['seq']}"
            assert leaf["prev"] == heads.get(leaf["dossier"]), f"leaf {index} breaks its dossier's chain"
            assert (leaf["dossier"], leaf["version"]) not in seen, f"leaf {index} seals an event twice"
            seen.add((leaf["dossier"], leaf["version"]))
            heads[leaf["dossier"]] = SHA256.leaf(data_).hex()
        return events, log.size
    finally:
        app.close()
        store.close()
        blobs.close()


@pytest.mark.slow
def test_racing_sequencers_never_double_a_leaf(tmp_path: Path, backend: dict[str, str]) -> None:
    data = tmp_path / "node"
    admin = init(data, "1101-0105", "北京市朝阳区人民法院")
    node = Serve(data, **backend, SIFA_SEAL_INTERVAL_SECONDS="0.01")
    try:
        with Writer(node.url, admin, clients=2) as writer:
            for _ in range(SEALS // AT_ONCE):
                procs = [subprocess.Popen([sys.executable, "-m", "api.cli", "seal", "--once", "--data-dir", str(data)],
                                          cwd=ROOT, env={**os.environ, **backend}, stdout=subprocess.DEVNULL,
                                          stderr=subprocess.PIPE, text=True) for _ in range(AT_ONCE)]  # fmt: skip
                for p in procs:
                    _, err = p.communicate(timeout=120)
                    # 0: it sealed; 3: another sequencer seals this log (docs/errors.md). Never anything else.
                    assert p.returncode in (0, 3), err
            assert writer.acked >= 20, "too little load to test anything"
    finally:
        node.stop()
    sealed = sifa("seal", "--once", "--data-dir", str(data), env=backend)
    assert sealed.returncode == 0, sealed.stderr
    events, leaves = check_log(data)
    assert leaves == events
    audit = sifa("audit", "--json", "--data-dir", str(data), env=backend)
    report = json.loads(audit.stdout)
    assert audit.returncode == 0 and report["clean"], audit.stderr
    assert report["unsealed"] == 0 and report["events"] == report["leaves"] == events
