"""An anchor on an EVM chain: what is written, what a receipt says about it, how a record is judged.

A checkpoint is anchored by a transaction from the court's account to a tiny contract that emits
its call data as the event ``Checkpoint(string origin, uint256 size, bytes32 root)`` (docs/anchoring.md;
the contract's bytecode is ``CONTRACT_INIT``, 56 bytes, written out below so that anyone can check
it without a compiler). Pure: the ABI encoding and decoding of those three values, the receipt part,
and the comparison of a chain's answer with a checkpoint. The adapter that sends transactions is
``api/chain.py``; the verifier's online check is ``verifier/chain.py``.

    VerificationError
     └── AnchorError            the chain's record does not anchor this checkpoint (code anchor_invalid)
    MalformedError
     └── MalformedAnchorError   a receipt's ``anchor`` part does not parse
"""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass
from typing import Any, Final

from ledger.errors import MalformedError, VerificationError

# keccak256("Checkpoint(string,uint256,bytes32)"): the event's topic (checked against eth_utils in the tests).
TOPIC: Final = "0xd3456deb7f7ca77a8e21c2d010a0871f4f64cc5990845639dbdd47dfa9ec4d50"
# Runtime: CALLDATASIZE PUSH1 0 PUSH1 0 CALLDATACOPY; PUSH32 TOPIC CALLDATASIZE PUSH1 0 LOG1; STOP —
# copy the call data to memory and log it under TOPIC. Anyone may call it: a verifier checks the sender.
CONTRACT_RUNTIME: Final = "3660006000377f" + TOPIC[2:] + "366000a100"
# Init: CODECOPY the 44-byte runtime (after these 12 bytes) to memory and RETURN it.
CONTRACT_INIT: Final = "0x602c600c600039602c6000f3" + CONTRACT_RUNTIME
_ADDRESS = re.compile(r"0x[0-9a-fA-F]{40}")
_HASH = re.compile(r"0x[0-9a-fA-F]{64}")


class AnchorError(VerificationError):
    code = "anchor_invalid"


class MalformedAnchorError(MalformedError):
    code = "malformed_anchor"


def _word(n: int) -> bytes:
    return n.to_bytes(32, "big")


def encode_checkpoint(origin: str, size: int, root: bytes) -> bytes:
    """ABI encoding of (string origin, uint256 size, bytes32 root): the call data and the event data."""
    text = origin.encode("utf-8")
    padded = text + b"\0" * (-len(text) % 32)
    return _word(96) + _word(size) + root.rjust(32, b"\0")[:32] + _word(len(text)) + padded


def decode_checkpoint(data: bytes) -> tuple[str, int, bytes]:
    """(origin, size, root) from event data; raises AnchorError for data that is not that encoding."""
    try:
        if len(data) < 128 or int.from_bytes(data[:32], "big") != 96:
            raise ValueError("not (string, uint256, bytes32)")
        length = int.from_bytes(data[96:128], "big")
        if length > len(data) - 128 or len(data) != 128 + length + (-length % 32):
            raise ValueError("the string's length does not fit the data")
        return data[128 : 128 + length].decode("utf-8"), int.from_bytes(data[32:64], "big"), data[64:96]
    except (ValueError, UnicodeDecodeError) as exc:
        raise AnchorError(f"the anchoring event's data is not a checkpoint: {exc}") from exc


def _address(value: Any, what: str) -> str:
    if not isinstance(value, str) or not _ADDRESS.fullmatch(value):
        raise ValueError(f"{what} is a 0x-prefixed 20-byte hex address")
    return value.lower()


@dataclass(frozen=True)
class ChainTrust:
    """A trust file's ``chain`` entry for a log: which chain, contract and court account to believe,
    and how many confirmations make a block final enough."""

    chain_id: int
    contract: str
    account: str
    confirmations: int = 1

    @classmethod
    def from_dict(cls, doc: Any) -> ChainTrust:
        """Raises ValueError/TypeError/KeyError (the trust parser makes them MalformedTrustError)."""
        confirmations = doc.get("confirmations", 1)
        if type(doc["chain_id"]) is not int or type(confirmations) is not int or confirmations < 1:
            raise ValueError("a chain's chain_id and confirmations are whole numbers")
        return cls(doc["chain_id"], _address(doc["contract"], "contract"), _address(doc["account"], "account"),
                   confirmations)  # fmt: skip


@dataclass(frozen=True)
class AnchorPart:
    """A receipt's ``anchor``: the transaction that wrote an anchored checkpoint covering the leaf,
    that checkpoint (signed note) and the leaf's inclusion proof in it."""

    chain_id: int
    contract: str
    tx_hash: str
    block_number: int
    checkpoint: str
    inclusion_proof: tuple[bytes, ...]

    def to_dict(self) -> dict[str, Any]:
        return {"kind": "evm", "chain_id": self.chain_id, "contract": self.contract, "tx_hash": self.tx_hash,
                "block_number": self.block_number, "checkpoint": self.checkpoint,
                "inclusion_proof": [base64.b64encode(h).decode() for h in self.inclusion_proof]}  # fmt: skip

    @classmethod
    def from_dict(cls, doc: Any) -> AnchorPart:
        """Raises MalformedAnchorError."""
        fields = {"kind", "chain_id", "contract", "tx_hash", "block_number", "checkpoint", "inclusion_proof"}
        try:
            if not isinstance(doc, dict) or set(doc) != fields or doc["kind"] != "evm":
                raise ValueError(f"an evm anchor holds exactly {sorted(fields)}")
            if type(doc["chain_id"]) is not int or type(doc["block_number"]) is not int or doc["block_number"] < 0:
                raise ValueError("chain_id and block_number are whole numbers")
            if not isinstance(doc["tx_hash"], str) or not _HASH.fullmatch(doc["tx_hash"]):
                raise ValueError("tx_hash is a 0x-prefixed 32-byte hex hash")
            if not isinstance(doc["checkpoint"], str) or not isinstance(doc["inclusion_proof"], list):
                raise ValueError("checkpoint is note text, inclusion_proof a list")
            if len(doc["inclusion_proof"]) > 64:
                raise ValueError("an inclusion proof has at most 64 hashes")
            proof = tuple(base64.b64decode(h, validate=True) for h in doc["inclusion_proof"])
            contract = _address(doc["contract"], "contract")
        except (ValueError, TypeError, binascii.Error) as exc:
            raise MalformedAnchorError(f"receipt anchor: {exc}") from exc
        return cls(doc["chain_id"], contract, doc["tx_hash"].lower(), doc["block_number"], doc["checkpoint"], proof)


def _int(value: Any) -> int:
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.startswith("0x"):
        return int(value, 16)
    raise AnchorError(f"the chain answered {value!r} where a number belongs")


def check_record(part: AnchorPart, trust: ChainTrust, origin: str, size: int, root: bytes, *, chain_id: Any,
                 tx: Any, receipt: Any, head: Any) -> None:  # fmt: skip
    """``_check_record``; an answer not shaped as JSON-RPC's is an AnchorError too, never a crash."""
    try:
        _check_record(part, trust, origin, size, root, chain_id=chain_id, tx=tx, receipt=receipt, head=head)
    except (AttributeError, TypeError, ValueError) as exc:
        raise AnchorError(f"the chain node's answers are not shaped as Ethereum JSON-RPC's: {exc}") from exc


def _check_record(part: AnchorPart, trust: ChainTrust, origin: str, size: int, root: bytes, *, chain_id: Any,
                  tx: Any, receipt: Any, head: Any) -> None:  # fmt: skip
    """Judge a chain's JSON-RPC answers (eth_chainId, eth_getTransactionByHash, eth_getTransactionReceipt,
    eth_blockNumber) against the anchored checkpoint. Raises AnchorError naming the first mismatch.

    Steps (docs/anchoring.md): 1 the chain is the trusted one; 2 the transaction exists, succeeded,
    in the block the receipt names, final by the trusted number of confirmations; 3 it was sent by
    the court's account to the trusted contract; 4 the contract's event states this origin, size, root.
    """
    if _int(chain_id) != trust.chain_id or part.chain_id != trust.chain_id or part.contract != trust.contract:
        raise AnchorError(f"the anchor is not on the chain and contract the trust file names (chain {trust.chain_id})")
    if not isinstance(tx, dict) or not isinstance(receipt, dict):
        raise AnchorError(f"the chain knows no transaction {part.tx_hash}")
    if _int(receipt.get("status")) != 1:
        raise AnchorError(f"transaction {part.tx_hash} failed on the chain")
    if _int(receipt.get("blockNumber")) != part.block_number:
        raise AnchorError(f"transaction {part.tx_hash} is in block {_int(receipt.get('blockNumber'))}, not "
                          f"{part.block_number}")  # fmt: skip
    if _int(head) - part.block_number + 1 < trust.confirmations:
        raise AnchorError(f"block {part.block_number} has fewer than the {trust.confirmations} confirmations required")
    if str(tx.get("from", "")).lower() != trust.account or str(tx.get("to", "")).lower() != trust.contract:
        raise AnchorError("the transaction was not sent by the court's account to the anchor contract")
    for entry in receipt.get("logs") or []:
        topics = [str(t).lower() for t in entry.get("topics") or []]
        if str(entry.get("address", "")).lower() == trust.contract and topics == [TOPIC]:
            data = str(entry.get("data", ""))
            try:
                raw = bytes.fromhex(data[2:] if data.startswith("0x") else data)
            except ValueError as exc:
                raise AnchorError("the anchoring event's data is not hex") from exc
            if decode_checkpoint(raw) != (origin, size, root):
                raise AnchorError("the transaction anchors another checkpoint (origin, size or root differ)")
            return
    raise AnchorError(f"transaction {part.tx_hash} emitted no Checkpoint event of the anchor contract")
