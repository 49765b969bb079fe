"""The node's public log API (TestClient) and the two commands, in-process."""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.cli import main as sifa
from api.node import load_signer, open_tree_store
from api.routes.tiles import TilePathError, parse_tile_path
from api.settings import Settings
from ledger.checkpoint import open_checkpoint
from ledger.hashing import SHA256
from ledger.log import MerkleLog
from ledger.note import Ed25519Verifier
from ledger.proof import verify_consistency, verify_inclusion
from tests import reference
from tests.nodes import init
from verifier.cli import main as sifa_verify

COURT_NAME = "北京市朝阳区人民法院"


@pytest.fixture
def node(tmp_path: Path) -> Path:
    data = tmp_path / "node"
    init(data, name=COURT_NAME)
    return data


def _append_and_sign(data: Path, entries: list[bytes]) -> None:
    store = open_tree_store(data, "")
    log = MerkleLog(store)
    log.append(entries)
    log.sign_checkpoint(load_signer(data))
    store.close()


@pytest.fixture
def client(node: Path) -> Iterator[TestClient]:
    _append_and_sign(node, [f"entry {i}".encode() for i in range(600)])
    with TestClient(create_app(Settings(data_dir=node))) as c:
        yield c


def test_init_refuses_bad_input_with_exit_2(node: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert sifa(["init", str(node), "--court", "1101-0105", "--name", "x"]) == 2
    assert sifa(["init", str(node.parent / "b"), "--court", "京0105", "--name", "x"]) == 2
    assert sifa(["serve", "--data-dir", str(node.parent / "none")]) == 2
    assert sifa(["bogus"]) == 2
    err = capsys.readouterr().err
    assert "already holds a node" in err and "Traceback" not in err
    entry = sifa(["trust-entry", str(node)])
    assert entry == 0
    out = json.loads(capsys.readouterr().out)
    assert out["name"] == COURT_NAME and out["origin"] == "sifa.court/1101-0105"


def test_checkpoint_key_and_proofs_verify(client: TestClient) -> None:
    key = client.get("/v1/log/key").json()
    assert key["name"] == COURT_NAME
    verifier = Ed25519Verifier.from_vkey(key["verifier_key"])
    note = client.get("/v1/log/checkpoint")
    assert note.headers["content-type"].startswith("text/plain")
    checkpoint, _ = open_checkpoint(note.text, [verifier])
    assert checkpoint.size == 600
    proof = client.get("/v1/log/proof/inclusion", params={"index": 257, "size": 600}).json()
    hashes = [base64.b64decode(h) for h in proof["proof"]]
    verify_inclusion(SHA256, 257, 600, SHA256.leaf(b"entry 257"), hashes, checkpoint.root_hash)
    cons = client.get("/v1/log/proof/consistency", params={"from": 1, "to": 600}).json()
    root1 = SHA256.leaf(b"entry 0")
    verify_consistency(SHA256, 1, 600, root1, checkpoint.root_hash, [base64.b64decode(h) for h in cons["proof"]])


@pytest.mark.parametrize(
    ("path", "params", "status", "code"),
    [
        ("/v1/log/proof/inclusion", {"index": 600, "size": 600}, 404, "tree_size"),
        ("/v1/log/proof/inclusion", {"index": 0, "size": 601}, 404, "tree_size"),
        ("/v1/log/proof/inclusion", {"index": "x", "size": 1}, 422, "invalid_request"),
        ("/v1/log/proof/inclusion", {"index": 0, "size": 2**70}, 422, "invalid_request"),
        ("/v1/log/proof/consistency", {"from": 5, "to": 4}, 404, "tree_size"),
        ("/v1/log/proof/consistency", {"from": 0, "to": 4}, 422, "invalid_request"),
        ("/tlog/tile/0/002", {}, 404, "tile_not_found"),
        ("/tlog/tile/0/002.p/89", {}, 404, "tile_not_found"),
        ("/tlog/tile/0/..%2Fetc", {}, 404, "tile_not_found"),
        ("/tlog/tile/99/000", {}, 404, "tile_not_found"),
        ("/no/such/route", {}, 404, "not_found"),
    ],
)
def test_bad_requests_get_typed_errors(client: TestClient, path: str, params: dict[str, object], status: int,
                                       code: str) -> None:  # fmt: skip
    r = client.get(path, params=params)
    assert r.status_code == status, r.text
    assert r.json()["code"] == code and set(r.json()) == {"code", "message", "detail"}


def test_tlog_tiles_serve_hashes_and_entries(client: TestClient) -> None:
    full = client.get("/tlog/tile/0/000")
    assert full.status_code == 200 and len(full.content) == 256 * 32
    assert full.content[32:64] == SHA256.leaf(b"entry 1")
    assert "immutable" in full.headers["cache-control"]
    partial = client.get("/tlog/tile/0/002.p/88")  # 600 = 2 * 256 + 88
    assert partial.content[:32] == SHA256.leaf(b"entry 512") and len(partial.content) == 88 * 32
    level1 = client.get("/tlog/tile/1/000.p/2").content
    assert level1[:32] == reference.mth([f"entry {i}".encode() for i in range(256)])
    bundle = client.get("/tlog/tile/entries/001").content
    assert bundle[:2] == len(b"entry 256").to_bytes(2, "big") and bundle[2:11] == b"entry 256"


def test_tile_paths() -> None:
    assert parse_tile_path("x001/x234/067") == (1234067, None)
    assert parse_tile_path("000.p/7") == (0, 7)
    for bad in ("1", "x001", "001/002", "000.p/0", "000.p/256", "x1/000", "000.p/"):
        with pytest.raises(TilePathError):
            parse_tile_path(bad)


def test_sifa_verify_receipt_offline(node: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    evidence = tmp_path / "证据 合同.pdf"
    evidence.write_bytes(b"%PDF-1.4 contract")
    digest = hashlib.sha256(evidence.read_bytes()).hexdigest()
    leaf = json.dumps({"type": "DocumentUploaded", "time": "2026-11-22T08:00:00Z",
                       "file": {"sha256": digest, "size": 17}}).encode()  # fmt: skip
    _append_and_sign(node, [b"first", leaf])
    store = open_tree_store(node, "")
    receipt = MerkleLog(store).receipt(1, "2026-11-22T08:00:00Z")
    store.close()
    (tmp_path / "r.json").write_text(receipt.to_json(), encoding="utf-8")
    assert sifa(["trust-entry", str(node)]) == 0
    entry = json.loads(capsys.readouterr().out)
    (tmp_path / "trust.json").write_text(json.dumps({"logs": [entry]}), encoding="utf-8")
    args = ["--receipt", str(tmp_path / "r.json"), "--trust", str(tmp_path / "trust.json")]
    assert sifa_verify([str(evidence), *args, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["valid"] is True
    evidence.write_bytes(b"%PDF-1.4 contracT")
    assert sifa_verify([str(evidence), *args]) == 1
    assert sifa_verify([str(tmp_path / "missing.pdf"), *args]) == 2
    (tmp_path / "r.json").write_text(receipt.to_json()[:100], encoding="utf-8")
    assert sifa_verify(args) == 2
    assert "Traceback" not in capsys.readouterr().err
