"""``sifa-verify --chain-rpc URL``: ask a chain's node, over Ethereum JSON-RPC, about a receipt's anchor.

The only part of the verifier that goes online, and only when asked: the node named should be one
the verifier trusts (its own, or a consortium member other than the court). The judgement itself is
``ledger.evm.check_record``; this module only asks the questions.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any

from ledger.evm import AnchorError, AnchorPart, ChainTrust, check_record

MAX_ANSWER = 4 << 20


def _rpc(url: str, method: str, params: list[Any], timeout: float) -> Any:
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": method, "params": params}).encode()
    request = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json"}, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            answer = json.loads(response.read(MAX_ANSWER))
    except (OSError, ValueError) as exc:
        raise ChainUnreachableError(f"the chain node {url} did not answer {method}: {exc}") from exc
    if not isinstance(answer, dict) or "error" in answer:
        said = answer.get("error") if isinstance(answer, dict) else answer
        raise AnchorError(f"the chain node answered {method} with an error: {said}")
    return answer.get("result")


class ChainUnreachableError(Exception):
    """The chain node could not be asked: the anchor is then reported not checked."""


def check_online(url: str, part: AnchorPart, trust: ChainTrust, origin: str, size: int, root: bytes, *,
                 timeout: float = 30.0) -> int:  # fmt: skip
    """Check the anchor with the chain node at ``url``; return the block's time (Unix seconds).
    Raises AnchorError, or ChainUnreachableError."""

    def ask(method: str, *params: Any) -> Any:
        return _rpc(url, method, list(params), timeout)

    tx, receipt = ask("eth_getTransactionByHash", part.tx_hash), ask("eth_getTransactionReceipt", part.tx_hash)
    check_record(part, trust, origin, size, root, chain_id=ask("eth_chainId"), tx=tx, receipt=receipt,
                 head=ask("eth_blockNumber"))  # fmt: skip
    block = ask("eth_getBlockByNumber", hex(part.block_number), False)
    if not isinstance(block, dict) or not isinstance(block.get("timestamp"), str):
        raise AnchorError(f"the chain node knows no block {part.block_number}")
    return int(block["timestamp"], 16)
