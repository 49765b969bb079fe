"""Exactly one sequencer seals a log: racing ``sifa seal --once`` processes beside a running node
never double a leaf (docs/operations.md, issue 16 item 2)."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from uuid import UUID

import httpx2
import pytest

from api.composition import open_node
from api.settings import Settings
from dossier.application import DossierApp
from dossier.audit import audit
from dossier.envelope import read_leaf
from dossier.sealer import Sealer
from ledger.hashing import SHA256
from tests.dossier_fixtures import Stack
from tests.nodes import ROOT, Serve, Writer, init

SEALS, AT_ONCE = 20, 5
ACT = {"actor": "clerk:test", "role": "clerk"}


def oversized_event(app: DossierApp, dossier: UUID | str) -> int:
    """A stored event whose leaf is over 65,535 bytes, as a node accepted before every command was
    bounded: recorded through the event itself, past the command's checks. A ``sifa-leaf/2`` leaf
    commits to each field in 64 hex digits whatever its length, so it takes many fields (here 1,000
    list items), not a long text, to overflow. Returns its version."""
    d = app.get(dossier)
    d._upload(document_id="legacy", sha256="ab" * 32, size=1, name="证据.pdf", media_type="application/pdf",
              source="upload", doc_type=["x"] * 1000, pages=None, **ACT)  # fmt: skip
    app.save(d)
    return d.version


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
    with open_node(Settings(data_dir=data)) as node:
        app, log = node.dossiers, node.log
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


@pytest.mark.slow
def test_racing_sequencers_never_double_a_leaf(tmp_path: Path, backend: dict[str, str]) -> None:
    data = tmp_path / "node"
    admin = init(data, "1101-0105", "北京市朝阳区人民法院")
    node = Serve(data, **backend, SIFA_SEAL_INTERVAL_SECONDS="0.01")
    try:
        with Writer.on(node.url, admin, clients=2) as writer:
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


def test_an_event_that_cannot_be_sealed_stops_the_log_loudly(stack: Stack, caplog: pytest.LogCaptureFixture) -> None:
    """What comes before it is sealed; the event is logged once, kept as the sequencer's stall for
    other processes, named by the audit; nothing after it is sealed, and nothing is skipped."""
    app, sealer = stack.app, stack.sealer
    first = app.open_dossier(case_number_text="（2026）京0105民初11号", case_type="民事", parties=[], **ACT)
    bad = oversized_event(app, first)
    app.open_dossier(case_number_text="（2026）京0105民初12号", case_type="民事", parties=[], **ACT)
    position = bad  # the first dossier's events are positions 1 and 2
    with caplog.at_level(logging.ERROR, logger="dossier.sealer"):
        assert sealer.seal() == 1
        assert sealer.seal() == 0
    assert [r.getMessage() for r in caplog.records].count(caplog.records[0].getMessage()) == 1
    assert "SEALING STOPPED" in caplog.records[0].getMessage() and str(first) in caplog.records[0].getMessage()
    assert stack.log.size == 1
    stall = stack.log.store.sequencer_status().stall
    assert stall is not None and stall == sealer.stall
    assert dict(stall.about) == {"dossier": str(first), "version": bad, "notification_id": position}
    assert "a leaf holds at most 65535" in stall.reason
    again = Sealer(app, stack.log, stack.signer, secret=stack.sealer.secret)  # another process's, finds it recorded
    assert again.seal() == 0 and again.stall == stall and stack.log.size == 1
    report = audit(app, stack.log, app.blobs, stack.signer.verifier, secret=stack.sealer.secret)
    assert [(f.kind, f.where) for f in report.findings] == [
        ("event_unsealable", f"event {first} v{bad} (position {position})")]  # fmt: skip
    assert report.unsealed == 2 and not report.clean


@pytest.mark.slow
def test_healthz_and_audit_name_a_stalled_event(tmp_path: Path) -> None:
    """The sequencer (its own process) meets an event it cannot seal: the API's /healthz answers
    503 naming it, ``sifa audit`` names it, ``sifa seal --once`` says so; before that, 200."""
    data = tmp_path / "node"
    admin = init(data, "1101-0105", "北京市朝阳区人民法院")
    node = Serve(data, SIFA_SEAL_INTERVAL_SECONDS="0.01")
    env = {"SIFA_DATA_DIR": str(data)}
    try:
        with Writer.on(node.url, admin, clients=1) as writer, httpx2.Client(base_url=node.url, timeout=10) as http:
            deadline = time.monotonic() + 30
            while (r := http.get("/healthz")).json()["sequencer"] != "sealing" or writer.acked < 5:
                assert time.monotonic() < deadline, r.text
                time.sleep(0.05)
        with httpx2.Client(base_url=node.url, timeout=10) as http:
            while (r := http.get("/healthz")).json()["events_waiting"]:
                assert time.monotonic() < deadline, r.text
                time.sleep(0.05)
            healthy = r.json()
            assert r.status_code == 200 and healthy["status"] == "ok" and healthy["problems"] == []
            assert healthy["tree_size"] == writer.acked + 1 and healthy["checkpoint_age_seconds"] < 30
            assert healthy["stalled"] is None
            with open_node(Settings(data_dir=data)) as opened:
                app = opened.dossiers
                dossier = writer.dossiers[0]
                version = oversized_event(app, dossier)
                position = app.recorder.max_notification_id()
                app.open_dossier(case_number_text="（2026）京0105民初13号", case_type="民事", parties=[], **ACT)
            while (r := http.get("/healthz")).status_code == 200:
                assert time.monotonic() < deadline, r.text
                time.sleep(0.05)
        body = r.json()
        assert r.status_code == 503 and body["status"] == "degraded" and body["sequencer"] == "stalled"
        assert {k: body["stalled"][k] for k in ("dossier", "version", "notification_id")} == {
            "dossier": dossier, "version": version, "notification_id": position}  # fmt: skip
        assert "a leaf holds at most 65535" in body["stalled"]["reason"] and body["events_waiting"] == 2
        assert any(dossier in p for p in body["problems"])
        busy = sifa("seal", "--once", env=env)
        assert busy.returncode == 3, busy.stderr
    finally:
        node.stop()
    once = sifa("seal", "--once", env=env)
    assert once.returncode == 1 and f"dossier {dossier}, version {version}" in once.stderr, once.stderr
    audited = sifa("audit", "--json", env=env)
    report = json.loads(audited.stdout)
    assert audited.returncode == 1 and [f["kind"] for f in report["findings"]] == ["event_unsealable"]
    assert f"event {dossier} v{version} (position {position})" in audited.stderr
