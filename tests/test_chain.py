"""An anchor on an EVM chain (docs/anchoring.md): py-evm through eth-tester, served as JSON-RPC on
127.0.0.1; the node's adapter writes checkpoints with web3, receipts carry the transaction, and
``sifa-verify --chain-rpc`` checks it online (offline: reported not checked)."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from eth_account import Account
from eth_utils import keccak

from api.chain import Anchoring, EvmAnchor, deploy_contract
from ledger.anchor import AnchorRecord
from ledger.checkpoint import Checkpoint, sign_checkpoint
from ledger.evm import TOPIC, AnchorError, decode_checkpoint, encode_checkpoint
from ledger.log import MerkleLog
from ledger.note import Ed25519Signer, Note
from ledger.receipt import Receipt
from tests.evm import COURT_KEY, OTHER_KEY, TestChain
from tests.nodes import run_verify

ORIGIN = "sifa.court/1101-0105"
WHEN = "2026-12-01T08:00:00Z"


@pytest.fixture(scope="module")
def chain() -> Iterator[TestChain]:
    server = TestChain.start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def contract(chain: TestChain) -> str:
    return deploy_contract(chain.url, COURT_KEY)


def grow(merkle: MerkleLog, signer: Ed25519Signer, n: int) -> int:
    start = merkle.size
    merkle.append([json.dumps({"type": "DocumentUploaded", "seq": start + i, "time": WHEN}).encode()
                   for i in range(n)], signer=signer)  # fmt: skip
    return merkle.size


def trust_file(path: Path, signer: Ed25519Signer, chain: TestChain, contract: str, account: str = "") -> Path:
    entry = {"key": signer.verifier.vkey(), "chain": {"chain_id": chain.w3.eth.chain_id, "contract": contract,
             "account": account or Account.from_key(COURT_KEY).address, "confirmations": 1}}  # fmt: skip
    path.write_text(json.dumps({"logs": [entry]}), encoding="utf-8")
    return path


def test_the_contract_topic_and_encoding_are_the_abi_ones() -> None:
    import eth_abi

    assert "0x" + keccak(text="Checkpoint(string,uint256,bytes32)").hex().removeprefix("0x") == TOPIC
    encoded = encode_checkpoint("sifa.court/1101-0105·法院", 42, b"\x07" * 32)
    assert encoded == eth_abi.encode(["string", "uint256", "bytes32"], ["sifa.court/1101-0105·法院", 42, b"\x07" * 32])
    assert decode_checkpoint(encoded) == ("sifa.court/1101-0105·法院", 42, b"\x07" * 32)
    with pytest.raises(AnchorError):
        decode_checkpoint(encoded[:-1])


def test_the_anchor_port_publishes_and_verifies_on_the_chain(chain: TestChain, contract: str,
                                                               signer: Ed25519Signer) -> None:  # fmt: skip
    anchor = EvmAnchor(chain.url, contract, COURT_KEY)
    note = sign_checkpoint(Checkpoint(ORIGIN, 5, b"\x07" * 32), signer)
    record = anchor.publish(note)
    assert record.kind == "evm" and record.height >= 1 and record.times["block"] > 0
    anchor.verify(note, record)
    with pytest.raises(AnchorError, match="another checkpoint"):
        anchor.verify(sign_checkpoint(Checkpoint(ORIGIN, 6, b"\x07" * 32), signer), record)
    with pytest.raises(AnchorError, match="not 1"):
        anchor.verify(note, AnchorRecord("evm", record.tx_id, 1 if record.height != 1 else 2))


def anchored_receipt(chain: TestChain, contract: str, merkle: MerkleLog, signer: Ed25519Signer) -> Receipt:
    grow(merkle, signer, 4)
    anchoring = Anchoring(merkle, EvmAnchor(chain.url, contract, COURT_KEY))
    assert anchoring.round() == 4
    assert anchoring.round() is None  # once per checkpoint
    grow(merkle, signer, 2)
    receipt = merkle.receipt(1, WHEN)
    assert receipt.tree_size == 6 and receipt.parts["anchor"]["kind"] == "evm"
    return receipt


def test_a_receipt_carries_the_transaction_and_the_verifier_checks_it_online(
    chain: TestChain, contract: str, merkle: MerkleLog, signer: Ed25519Signer, tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    receipt = anchored_receipt(chain, contract, merkle, signer)
    assert Receipt.from_json(receipt.to_json()) == receipt
    trust = trust_file(tmp_path / "t.json", signer, chain, contract)
    code, result, err = run_verify(tmp_path, receipt, trust, capsys, "--chain-rpc", chain.url)
    assert code == 0, err
    assert result["anchor"]["tx_hash"] == receipt.parts["anchor"]["tx_hash"] and result["anchor"]["tree_size"] == 4
    assert "链上锚定 anchored in block" in err.splitlines()[-1] and "北京时间" in result["anchor"]["beijing"]
    # Offline, the same receipt is valid, and its chain claim is said to be not checked.
    code, result, err = run_verify(tmp_path, receipt, trust, capsys)
    assert code == 0 and "anchor" not in result
    assert result["not_checked"][0]["check"] == "chain_anchor" and "offline" in result["not_checked"][0]["detail"]
    assert "未核验 not checked" in err and "链上锚定" not in err.splitlines()[-1]


def test_an_anchor_from_another_account_or_of_another_checkpoint_is_invalid(
    chain: TestChain, contract: str, merkle: MerkleLog, signer: Ed25519Signer, tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    receipt = anchored_receipt(chain, contract, merkle, signer)
    other = trust_file(tmp_path / "o.json", signer, chain, contract, Account.from_key(OTHER_KEY).address)
    code, result, _ = run_verify(tmp_path, receipt, other, capsys, "--chain-rpc", chain.url)
    assert code == 1 and result["checks"][-1]["code"] == "anchor_invalid"
    assert "court's account" in result["checks"][-1]["detail"]
    # Someone else writes a checkpoint of the same log to the contract: not the court's anchor.
    kept = merkle.store.checkpoint(4)
    assert kept is not None
    rogue = EvmAnchor(chain.url, contract, OTHER_KEY).publish(Note.from_text(kept[1]))
    doc = receipt.to_dict()
    doc["anchor"] = {**doc["anchor"], "tx_hash": rogue.tx_id, "block_number": rogue.height}
    trust = trust_file(tmp_path / "t.json", signer, chain, contract)
    code, result, _ = run_verify(tmp_path, doc, trust, capsys, "--chain-rpc", chain.url)
    assert code == 1 and result["checks"][-1]["code"] == "anchor_invalid"
    # The court's own transaction, claimed for a later checkpoint of the same log.
    grow(merkle, signer, 1)
    later = merkle.receipt(1, WHEN).to_dict()
    later["anchor"]["checkpoint"] = merkle.store.checkpoint(7)[1]  # type: ignore[index]
    later["anchor"]["inclusion_proof"] = [base64.b64encode(h).decode() for h in merkle.inclusion_proof(1, 7)]
    code, result, _ = run_verify(tmp_path, later, trust, capsys, "--chain-rpc", chain.url)
    assert code == 1 and result["checks"][-1]["code"] == "anchor_invalid"
    assert "another checkpoint" in result["checks"][-1]["detail"]


def test_a_chain_that_does_not_answer_is_reported_not_checked_and_never_blocks_sealing(
    chain: TestChain, contract: str, merkle: MerkleLog, signer: Ed25519Signer, tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    receipt = anchored_receipt(chain, contract, merkle, signer)
    trust = trust_file(tmp_path / "t.json", signer, chain, contract)
    code, result, _ = run_verify(tmp_path, receipt, trust, capsys, "--chain-rpc", "http://127.0.0.1:9/")
    assert code == 0 and result["not_checked"][0]["check"] == "chain_anchor" and "anchor" not in result
    down = Anchoring(merkle, EvmAnchor("http://127.0.0.1:9/", contract, COURT_KEY, timeout=2))
    with pytest.raises(OSError):
        down.round()
    grow(merkle, signer, 1)  # the log goes on


def test_a_malformed_anchor_part_is_an_input_error(
    chain: TestChain, contract: str, merkle: MerkleLog, signer: Ed25519Signer, tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    doc = anchored_receipt(chain, contract, merkle, signer).to_dict()
    doc["anchor"]["tx_hash"] = "0x1234"
    code, _, err = run_verify(tmp_path, doc, trust_file(tmp_path / "t.json", signer, chain, contract), capsys)
    assert code == 2 and "anchor" in err


@pytest.mark.parametrize(
    "answers",
    [
        {"receipt": {"status": "0x1", "blockNumber": "0x5", "logs": "not a list"}},
        {"receipt": {"status": None}},
        {"tx": {"from": 7, "to": None}},
        {"head": "tomorrow"},
        {"chain_id": ["0x1"]},
    ],
)
def test_odd_chain_answers_are_refused_never_a_crash(answers: dict[str, Any]) -> None:
    from ledger.evm import AnchorPart, ChainTrust, check_record

    court = "0x" + "11" * 20
    contract = "0x" + "22" * 20
    part = AnchorPart(1, contract, "0x" + "33" * 32, 5, "", ())
    base: dict[str, Any] = {"chain_id": "0x1", "head": "0x9", "tx": {"from": court, "to": contract},
                            "receipt": {"status": "0x1", "blockNumber": "0x5", "logs": []}}  # fmt: skip
    with pytest.raises(AnchorError):
        check_record(part, ChainTrust(1, contract, court), ORIGIN, 4, b"\x07" * 32, **{**base, **answers})


def test_a_node_anchors_its_checkpoints_on_a_schedule(chain: TestChain, contract: str, tmp_path: Path) -> None:
    """SIFA_CHAIN_* wired: the node's sequencer thread anchors the latest checkpoint."""
    from fastapi.testclient import TestClient

    from api.app import create_app
    from api.cli import main as sifa
    from api.node import load_signer, open_tree_store
    from api.settings import Settings

    data = tmp_path / "node"
    assert sifa(["init", str(data), "--court", "1101-0105", "--name", "北京市朝阳区人民法院"]) == 0
    store = open_tree_store(data, "")
    grow(MerkleLog(store), load_signer(data), 3)
    store.close()
    key = tmp_path / "chain.key"
    key.write_text(COURT_KEY + "\n")
    settings = Settings(data_dir=data, sequencer="thread", chain_rpc_url=chain.url, chain_contract=contract,
                        chain_key_file=key, chain_interval_seconds=0.2)  # fmt: skip
    with TestClient(create_app(settings)) as client:
        store = client.app.state.services.log.store  # type: ignore[attr-defined]
        for _ in range(100):
            if store.anchors():
                break
            time.sleep(0.05)
        [(size, record)] = store.anchors()
    assert size == 3 and json.loads(record)["contract"] == contract.lower()
    tx = chain.w3.eth.get_transaction(json.loads(record)["tx_hash"])
    assert tx["from"] == Account.from_key(COURT_KEY).address


class HostileRPC:
    """A JSON-RPC proxy in front of the test chain that spoils one answer (``mode``): deeply nested
    JSON, a block time that is no number or no date, a JSON-RPC error (a rate limit), or an answer
    dripped one byte a second."""

    def __init__(self, upstream: str, mode: str) -> None:
        import threading
        import urllib.request
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers["Content-Length"]))
                method = json.loads(raw)["method"]
                up = urllib.request.Request(upstream, data=raw, headers={"Content-Type": "application/json"})
                with urllib.request.urlopen(up, timeout=30) as answer:
                    body = answer.read()
                if mode == "nested" and method == "eth_getTransactionByHash":
                    body = b"[" * 100000 + b"]" * 100000
                elif mode in ("badts", "hugets", "early") and method == "eth_getBlockByNumber":
                    stamp = {"badts": "0xzz", "hugets": "0x" + "f" * 40, "early": "0x5f5e1000"}[mode]  # early: 2020
                    body = json.dumps({"jsonrpc": "2.0", "id": 1, "result": {"timestamp": stamp}}).encode()
                elif mode == "err" and method == "eth_getTransactionReceipt":
                    body = json.dumps({"jsonrpc": "2.0", "id": 1, "error": {"code": -32005,
                                       "message": "rate limit exceeded"}}).encode()  # fmt: skip
                self.send_response(200)
                self.send_header("Content-Length", str(len(body) + (100 if mode == "slow" else 0)))
                self.end_headers()
                try:
                    if mode == "slow":
                        for byte in body:
                            self.wfile.write(bytes([byte]))
                            self.wfile.flush()
                            time.sleep(0.5)
                    else:
                        self.wfile.write(body)
                except OSError:
                    pass

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.mark.parametrize("mode", ["nested", "badts", "hugets", "early", "err"])
def test_a_hostile_chain_node_is_never_a_crash(
    chain: TestChain, contract: str, merkle: MerkleLog, signer: Ed25519Signer, tmp_path: Path,
    capsys: pytest.CaptureFixture[str], mode: str,
) -> None:  # fmt: skip
    receipt = anchored_receipt(chain, contract, merkle, signer)
    trust = trust_file(tmp_path / "t.json", signer, chain, contract)
    hostile = HostileRPC(chain.url, mode)
    try:
        code, result, err = run_verify(tmp_path, receipt, trust, capsys, "--chain-rpc", hostile.url)
    finally:
        hostile.stop()
    if mode in ("badts", "hugets", "early"):  # a block time that is no time, or before the leaf's: refused
        assert code == 1 and result["checks"][-1]["code"] == "anchor_invalid", err
    else:  # it did not answer the question (unreadable, or refused: a rate limit): not checked
        assert code == 0 and result["not_checked"][0]["check"] == "chain_anchor" and "anchor" not in result, err


def test_a_chain_node_that_drips_its_answer_is_given_up_on_at_the_deadline(
    chain: TestChain, contract: str, merkle: MerkleLog, signer: Ed25519Signer
) -> None:
    from ledger.evm import AnchorPart, ChainTrust
    from verifier.chain import ChainUnreachableError, check_online

    receipt = anchored_receipt(chain, contract, merkle, signer)
    part = AnchorPart.from_dict(receipt.parts["anchor"])
    hostile = HostileRPC(chain.url, "slow")
    try:
        started = time.monotonic()
        with pytest.raises(ChainUnreachableError, match="deadline"):
            check_online(hostile.url, part, ChainTrust(1, contract, "0x" + "11" * 20), ORIGIN, 4, b"\x07" * 32,
                         timeout=2)  # fmt: skip
        assert time.monotonic() - started < 5
    finally:
        hostile.stop()


@pytest.mark.parametrize("url", ["notaurl", "file:///etc/passwd", "ftp://example.org/", "http://:80/", "http://h:x/"])
def test_a_chain_rpc_that_is_no_http_url_is_an_input_error(
    tmp_path: Path, signer: Ed25519Signer, merkle: MerkleLog, capsys: pytest.CaptureFixture[str], url: str
) -> None:
    grow(merkle, signer, 2)
    trust = tmp_path / "t.json"
    trust.write_text(json.dumps({"logs": [{"key": signer.verifier.vkey()}]}))
    code, _, err = run_verify(tmp_path, merkle.receipt(0, WHEN), trust, capsys, "--chain-rpc", url)
    assert code == 2 and len(err.strip().splitlines()) == 1 and "--chain-rpc" in err


def test_the_anchoring_thread_gives_up_on_a_dripping_chain_node_at_the_deadline(
    chain: TestChain, contract: str, merkle: MerkleLog, signer: Ed25519Signer
) -> None:
    grow(merkle, signer, 2)
    hostile = HostileRPC(chain.url, "slow")
    try:
        anchoring = Anchoring(merkle, EvmAnchor(hostile.url, contract, COURT_KEY, timeout=2))
        started = time.monotonic()
        with pytest.raises(OSError, match="deadline"):
            anchoring.round()
        assert time.monotonic() - started < 5
    finally:
        hostile.stop()
