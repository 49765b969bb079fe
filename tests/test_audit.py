"""Tamper drills: sifa audit finds each tampering of a node's own data and names it."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sqlite3
from pathlib import Path

import pytest

from api.cli import main as sifa
from dossier.audit import audit
from ledger.checkpoint import Checkpoint, sign_checkpoint
from ledger.note import Ed25519Signer
from tests.dossier_fixtures import Stack, make_stack
from tests.nodes import init

ACT = {"actor": "clerk:audit", "role": "clerk"}


def _fill(stack: Stack) -> str:
    app = stack.app
    first = ""
    for n in range(3):
        d = app.open_dossier(case_number_text=f"（2026）京0105民初{n + 1}号", case_type="民事",
                             parties=[{"role": "原告", "name": "张三"}], **ACT)  # fmt: skip
        for k in range(4):
            body = f"文书 {n}/{k}\n".encode() * 50
            app.upload(d, iter([body]), name=f"文书{k}.txt", media_type="text/plain", source="court",
                       doc_type=None, **ACT)  # fmt: skip
        first = first or str(d)
    stack.sealer.seal()
    return first


@pytest.fixture
def node(tmp_path: Path) -> Path:
    root = tmp_path / "pristine"
    root.mkdir()
    stack = make_stack("sqlite", root)
    _fill(stack)
    stack.close()
    return root


def _audit(root: Path, details: list[str] | None = None) -> list[tuple[str, str]]:
    stack = make_stack("sqlite", root)
    try:
        report = audit(stack.app, stack.log, stack.app.blobs, stack.signer.verifier, secret=stack.sealer.secret)
    finally:
        stack.close()
    assert report.events == report.leaves + report.unsealed
    if details is not None:
        details.extend(f.detail for f in report.findings)
    return [(f.kind, f.where) for f in report.findings]


def _copy(node: Path, tmp_path: Path, name: str) -> Path:
    target = tmp_path / name
    shutil.copytree(node, target)
    return target


def test_untouched_node_is_clean(node: Path) -> None:
    assert _audit(node) == []


def test_edited_event_row_is_found(node: Path, tmp_path: Path) -> None:
    root = _copy(node, tmp_path, "edited")
    with sqlite3.connect(root / "events.sqlite") as db:
        (state,) = db.execute("SELECT state FROM stored_events WHERE rowid = 4").fetchone()
        db.execute("UPDATE stored_events SET state = ? WHERE rowid = 4", (state[:-1] + b"\x00",))
    found = _audit(root)
    assert [k for k, _ in found] == ["event_unreadable"] and "position 4" in found[0][1]


def test_flipped_byte_in_a_blob_is_found(node: Path, tmp_path: Path) -> None:
    root = _copy(node, tmp_path, "flipped")
    body = "文书 1/2\n".encode() * 50
    path = root / "blobs" / "blobs" / hashlib.sha256(body).hexdigest()[:2]
    target = next(path.rglob("*"))
    while target.is_dir():
        target = next(target.iterdir())
    os.chmod(target, 0o644)
    data = bytearray(target.read_bytes())
    data[10] ^= 1
    target.write_bytes(bytes(data))
    details: list[str] = []
    assert _audit(root, details) == [("blob_corrupt", f"blob {hashlib.sha256(body).hexdigest()}")]
    stack = make_stack("sqlite", root)
    holder = next(
        e.originator_id
        for e in stack.app.recorder.select_notifications(start=None, limit=100)
        if e.originator_version == 1 and e.id > 9
    )  # the second dossier: events 10.. (1 open + 4 x 2)
    stack.close()
    assert f"held by dossier {holder} as 文书2.txt" in details[0]
    assert stack.app.blobs.quarantined(hashlib.sha256(body).hexdigest())  # withheld until restored


def test_deleted_leaf_is_found(node: Path, tmp_path: Path) -> None:
    root = _copy(node, tmp_path, "deleted")
    with sqlite3.connect(root / "tree.sqlite") as db:
        db.execute("DELETE FROM sifa_tree_entries WHERE idx = 0")
    kinds = {k for k, _ in _audit(root)}
    assert "leaf_missing" in kinds and "tree_mismatch" in kinds


def test_replaced_checkpoint_is_found(node: Path, tmp_path: Path) -> None:
    root = _copy(node, tmp_path, "replaced")
    with sqlite3.connect(root / "tree.sqlite") as db:
        size, note = db.execute("SELECT size, note FROM sifa_tree_checkpoints ORDER BY size DESC").fetchone()
        forged = Ed25519Signer("sifa.court/1101-0105", bytes(32))
        cp = Checkpoint.from_text(note.split("\n\n")[0] + "\n")
        db.execute("UPDATE sifa_tree_checkpoints SET note = ? WHERE size = ?",
                   (sign_checkpoint(cp, forged).to_text(), size))  # fmt: skip
    assert _audit(root) == [("checkpoint_signature", f"checkpoint {size}")]


def test_sifa_audit_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = tmp_path / "node"
    init(data)
    assert sifa(["audit", "--data-dir", str(data), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["clean"] is True
    with sqlite3.connect(data / "tree.sqlite") as db:
        db.execute("UPDATE sifa_tree_checkpoints SET note = 'garbage'")
    assert sifa(["audit", "--data-dir", str(data)]) == 1
    err = capsys.readouterr().err
    assert "checkpoint_signature" in err and "Traceback" not in err


@pytest.mark.parametrize("rowid", [4, 1, 52])  # a middle, the first, the last of the node's 3 x 5 + ... events
def test_a_state_column_holding_text_that_is_not_utf8_is_event_unreadable(
    rowid: int, node: Path, tmp_path: Path
) -> None:
    """SQLite's TEXT in the BLOB column, not valid UTF-8: reading the page raised an eventsourcing
    traceback out of sifa audit; it is one event_unreadable finding, and the other events are audited."""
    root = _copy(node, tmp_path, "text")
    with sqlite3.connect(root / "events.sqlite") as db:
        (last,) = db.execute("SELECT max(rowid) FROM stored_events").fetchone()
        rowid = min(rowid, last)
        db.execute("UPDATE stored_events SET state = CAST(x'ff00fe' AS TEXT) WHERE rowid = ?", (rowid,))
    found = _audit(root)
    assert [k for k, _ in found] == ["event_unreadable"], found
    assert f"position {rowid}" in found[0][1]
