"""The worked example in docs/receipt.md verifies, and its by-hand numbers are right."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

from ledger.note import Ed25519Verifier
from ledger.receipt import Receipt, verify_receipt

DOC = (Path(__file__).resolve().parent.parent / "docs" / "receipt.md").read_text(encoding="utf-8")


def test_receipt_example_verifies() -> None:
    block = re.search(r"```json\n(.*?)```", DOC, re.S)
    vkey = re.search(r"Verifier key: `([^`]+)`", DOC)
    assert block and vkey
    receipt = Receipt.from_json(block.group(1))
    checkpoint = verify_receipt(receipt, [Ed25519Verifier.from_vkey(vkey.group(1))]).checkpoint
    assert checkpoint.root_hash.hex() in DOC
    assert hashlib.sha256(b"\x00" + receipt.leaf_data).hexdigest() == receipt.leaf_hash_hex
