"""The anchor port (ledger/anchor.py) on an EVM-compatible chain, with ``web3`` (docs/anchoring.md).

``EvmAnchor.publish`` writes a checkpoint's (origin, size, root) to the anchor contract in a
transaction signed locally with the court's chain key, waits for its receipt, and returns the
transaction hash, block number and block time. ``Anchoring`` runs it beside the sequencer on a
schedule (``SIFA_CHAIN_INTERVAL_SECONDS``): the latest checkpoint, if the log has grown since the
last anchor; a chain that does not answer is tried again next round and never blocks sealing.
``deploy_contract`` puts the 56-byte anchor contract on a chain, once per court.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from api.node import NodeError
from api.settings import Settings
from dossier.sealer import Stop
from ledger.anchor import AnchorRecord
from ledger.checkpoint import Checkpoint
from ledger.deadline import post
from ledger.errors import LedgerError
from ledger.evm import CONTRACT_INIT, AnchorError, AnchorPart, ChainTrust, check_record, encode_checkpoint
from ledger.log import MerkleLog
from ledger.note import Note

log = logging.getLogger("sifa.chain")
MAX_ANSWER = 4 << 20


def _web3(rpc_url: str, timeout: float) -> Any:
    """web3 over HTTP where each JSON-RPC request has one total deadline (``ledger/deadline.py``):
    a chain node that drips its answers cannot hold the anchoring thread past it."""
    from web3 import HTTPProvider, Web3
    from web3.types import RPCEndpoint

    class DeadlineProvider(HTTPProvider):
        def _make_request(self, method: RPCEndpoint, request_data: bytes) -> bytes:
            status, _, raw = post(str(self.endpoint_uri), request_data, {"Content-Type": "application/json"},
                                  timeout=timeout, max_bytes=MAX_ANSWER)  # fmt: skip
            if status != 200:
                raise OSError(f"the chain node answered HTTP {status}")
            return raw

    return Web3(DeadlineProvider(rpc_url))


def _send(w3: Any, key: str, tx: dict[str, Any], timeout: float) -> Any:
    from eth_account import Account

    account = Account.from_key(key)
    tx = {**tx, "from": account.address, "chainId": w3.eth.chain_id, "gasPrice": w3.eth.gas_price,
          "nonce": w3.eth.get_transaction_count(account.address, "pending")}  # fmt: skip
    tx["gas"] = w3.eth.estimate_gas(tx)
    signed = account.sign_transaction(tx)
    tx_hash = w3.eth.send_raw_transaction(signed.raw_transaction)
    return w3.eth.wait_for_transaction_receipt(tx_hash, timeout=timeout)


def deploy_contract(rpc_url: str, key: str, *, timeout: float = 120.0) -> str:
    """Deploy the anchor contract from the account of ``key``; return its address."""
    receipt = _send(_web3(rpc_url, timeout), key, {"data": CONTRACT_INIT}, timeout)
    if receipt["status"] != 1:
        raise AnchorError("the anchor contract could not be deployed")
    return str(receipt["contractAddress"])


class EvmAnchor:
    """Anchors checkpoints on one chain, in one contract, from the court's account."""

    def __init__(self, rpc_url: str, contract: str, key: str, *, timeout: float = 120.0) -> None:
        from eth_account import Account

        self.w3, self.key, self.timeout = _web3(rpc_url, timeout), key, timeout
        self.contract = self.w3.to_checksum_address(contract)
        self.account = Account.from_key(key).address

    def publish(self, checkpoint_note: Note) -> AnchorRecord:
        """Write the checkpoint to the chain; raises AnchorError (or the client's error) when it was not."""
        cp = Checkpoint.from_text(checkpoint_note.text)
        data = "0x" + encode_checkpoint(cp.origin, cp.size, cp.root_hash).hex()
        receipt = _send(self.w3, self.key, {"to": self.contract, "data": data}, self.timeout)
        if receipt["status"] != 1:
            raise AnchorError(f"the anchoring transaction {receipt['transactionHash'].hex()} failed")
        block = self.w3.eth.get_block(receipt["blockNumber"])
        tx_hash = "0x" + bytes(receipt["transactionHash"]).hex().removeprefix("0x")
        return AnchorRecord("evm", tx_hash, int(receipt["blockNumber"]), {"block": int(block["timestamp"])})

    def verify(self, checkpoint_note: Note, record: AnchorRecord) -> None:
        """Raise AnchorError unless the chain holds this record for exactly this checkpoint."""
        cp = Checkpoint.from_text(checkpoint_note.text)
        part = AnchorPart(self.w3.eth.chain_id, self.contract.lower(), record.tx_id, record.height,
                          checkpoint_note.to_text(), ())  # fmt: skip
        trust = ChainTrust(part.chain_id, self.contract.lower(), self.account.lower())

        def rpc(method: str, *params: Any) -> Any:
            answer = self.w3.provider.make_request(method, list(params))
            return answer.get("result")

        check_record(part, trust, cp.origin, cp.size, cp.root_hash, chain_id=rpc("eth_chainId"),
                     tx=rpc("eth_getTransactionByHash", record.tx_id), receipt=rpc("eth_getTransactionReceipt",
                     record.tx_id), head=rpc("eth_blockNumber"))  # fmt: skip


def read_chain_key(path: Path) -> str:
    """The court account's private key from a file (0x and 64 hex digits). Raises NodeError."""
    try:
        key = path.read_text().strip()
    except OSError as exc:
        raise NodeError(f"cannot read the chain key {path}: {exc.strerror}") from None
    if len(key) != 66 or not key.startswith("0x") or any(c not in "0123456789abcdefABCDEF" for c in key[2:]):
        raise NodeError(f"{path} holds no chain key (0x and 64 hex digits)")
    return key


def chain_anchor(settings: Settings) -> EvmAnchor:
    """The chain adapter the settings name. Raises NodeError (no contract, no key)."""
    if not settings.chain_contract or settings.chain_key_file is None:
        raise NodeError("SIFA_CHAIN_RPC_URL needs SIFA_CHAIN_CONTRACT and SIFA_CHAIN_KEY_FILE (docs/anchoring.md)")
    return EvmAnchor(settings.chain_rpc_url, settings.chain_contract, read_chain_key(settings.chain_key_file))


class Anchoring:
    """The schedule: anchor the latest checkpoint when the log has grown since the last anchor."""

    def __init__(self, merkle: MerkleLog, anchor: EvmAnchor) -> None:
        self.log, self.anchor = merkle, anchor

    def round(self) -> int | None:
        """Anchor the latest checkpoint if it is new; return its size (None: nothing anchored)."""
        kept = self.log.store.checkpoint()
        if kept is None:
            return None
        size, text = kept
        done = self.log.store.anchors(newest_first=True, limit=1)
        if size == 0 or (done and done[0][0] >= size):
            return None
        record = self.anchor.publish(Note.from_text(text))
        chain_id = int(self.anchor.w3.eth.chain_id)
        self.log.store.save_anchor(size, json.dumps({"chain_id": chain_id, "contract": self.anchor.contract.lower(),
                                                     "tx_hash": record.tx_id, "block_number": record.height,
                                                     "block_time": record.times.get("block")}))  # fmt: skip
        return size

    def run(self, stop: Stop, interval: float) -> None:
        """A round now and then every ``interval`` seconds until ``stop`` is set; failures are logged."""
        while not stop.is_set():
            try:
                self.round()
            except (LedgerError, OSError, ValueError) as exc:
                log.warning("anchoring on the chain failed; trying again in %.1f s: %s", interval, exc)
            except Exception:
                log.exception("anchoring on the chain failed; trying again in %.1f s", interval)
            if stop.wait(interval):
                return
