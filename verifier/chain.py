"""``sifa-verify --chain-rpc URL``: ask a chain's node, over Ethereum JSON-RPC, about a receipt's anchor.

The only part of the verifier that goes online, and only when asked: the node named should be one
the verifier trusts (its own, or a consortium member other than the court). The judgement itself is
``ledger.evm.check_record``; this module only asks the questions.
"""

from __future__ import annotations

import json
import re
from typing import Any, Final

from ledger import boundedjson
from ledger.deadline import check_url, post
from ledger.evm import AnchorError, AnchorPart, ChainTrust, check_record

MAX_ANSWER = 4 << 20
_QUANTITY: Final = re.compile(r"0x[0-9a-f]{1,16}")
LAST_TIME: Final = 253402300799  # 9999-12-31T23:59:59Z: a block time beyond it is no time


def _rpc(url: str, method: str, params: list[Any], timeout: float) -> Any:
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": method, "params": params}).encode()
    try:
        status, _, raw = post(url, body, {"Content-Type": "application/json"}, timeout=timeout, max_bytes=MAX_ANSWER)
        if status != 200:
            raise OSError(f"HTTP {status}")
        answer = boundedjson.loads(raw)
    except (OSError, ValueError) as exc:
        raise ChainUnreachableError(f"the chain node {url} did not answer {method}: {exc}") from exc
    if not isinstance(answer, dict):
        raise AnchorError(f"the chain node answered {method} with no JSON-RPC object")
    if "error" in answer:  # a refusal (a rate limit, a method it does not serve) says nothing about the anchor
        said = str(answer.get("error"))[:200]
        raise ChainUnreachableError(f"the chain node {url} answered {method} with an error: {said}")
    return answer.get("result")


class ChainUnreachableError(Exception):
    """The chain node could not be asked: the anchor is then reported not checked."""


def check_online(url: str, part: AnchorPart, trust: ChainTrust, origin: str, size: int, root: bytes, *,
                 timeout: float = 30.0) -> int:  # fmt: skip
    """Check the anchor with the chain node at ``url``; return the block's time (Unix seconds).
    Raises AnchorError, or ChainUnreachableError (also for a JSON-RPC error answer, or past
    ``timeout`` seconds for any one question, however slowly the node drips its answer)."""

    def ask(method: str, *params: Any) -> Any:
        return _rpc(url, method, list(params), timeout)

    tx, receipt = ask("eth_getTransactionByHash", part.tx_hash), ask("eth_getTransactionReceipt", part.tx_hash)
    check_record(part, trust, origin, size, root, chain_id=ask("eth_chainId"), tx=tx, receipt=receipt,
                 head=ask("eth_blockNumber"))  # fmt: skip
    block = ask("eth_getBlockByNumber", hex(part.block_number), False)
    if not isinstance(block, dict) or not isinstance(block.get("timestamp"), str):
        raise AnchorError(f"the chain node knows no block {part.block_number}")
    stamp = block["timestamp"]
    if not _QUANTITY.fullmatch(stamp) or int(stamp, 16) > LAST_TIME:
        raise AnchorError(f"the chain node's block {part.block_number} has no readable time: {stamp[:40]!r}")
    return int(stamp, 16)


def check_rpc_url(url: str) -> None:
    """Raise ValueError unless ``url`` is an http:// or https:// URL (no file:, no bare word)."""
    check_url(url)
