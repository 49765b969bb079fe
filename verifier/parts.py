"""The optional parts of a receipt, checked offline where they can be: trusted time (RFC 3161,
docs/time.md), the log's key history (docs/keys.md) and a chain anchor (docs/anchoring.md).

Each check appends to the result's ``checks`` (ok or failed, as the CLI reports them) or, when it
cannot be made here, to ``not_checked`` with the reason: a claim not checked is never shown as
verified. A malformed part raises MalformedError (the CLI's exit 2).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any, Final

from ledger.checkpoint import open_checkpoint
from ledger.errors import MalformedError, VerificationError
from ledger.hashing import SHA256
from ledger.note import Verifier
from ledger.proof import verify_inclusion
from ledger.receipt import Receipt, VerifiedReceipt
from ledger.timestamp import TimestampError, TimestampPart, available, verify_token
from ledger.trust import Trust

Result = dict[str, Any]
CLOCK_SKEW: Final = timedelta(seconds=60)  # the court's clock may run this far ahead of the TSA's


def _ok(result: Result, check: str, detail: str) -> None:
    result["checks"].append({"check": check, "ok": True, "code": None, "detail": detail})


def _fail(result: Result, check: str, exc: VerificationError | MalformedError) -> bool:
    result["checks"].append({"check": check, "ok": False, "code": exc.code, "detail": exc.diagnostics()})
    return False


def not_checked(result: Result, check: str, why: str) -> None:
    result.setdefault("not_checked", []).append({"check": check, "detail": why})


def check_timestamp(receipt: Receipt, proved: VerifiedReceipt, trust: Trust, log_keys: list[Verifier],
                    result: Result) -> bool:  # fmt: skip
    """The receipt's trusted time, if it carries one; False when it is there and does not verify.

    Steps (docs/time.md): 1 the stamped checkpoint is signed by a key of this log; 2 the proved leaf
    is included in it; 3 the token stamps that checkpoint's body, signed by a TSA the trust file
    names; 4 the leaf's 存证时间 is not after the stamped time (beyond CLOCK_SKEW).
    """
    raw = receipt.parts.get("timestamp")
    if raw is None:
        return True
    part = TimestampPart.from_dict(raw)
    if not trust.tsa:
        not_checked(result, "trusted_time", "the receipt carries an RFC 3161 token, but the trust file names no TSA")
        return True
    if not available():
        not_checked(result, "trusted_time", "checking RFC 3161 tokens needs sifa's 'tsa' extra (asn1crypto)")
        return True
    try:
        # Step 1, 2: a checkpoint of this log, covering the proved leaf.
        checkpoint, note = open_checkpoint(part.checkpoint, log_keys)
        if checkpoint.origin != proved.origin:
            raise TimestampError(f"the stamped checkpoint is of {checkpoint.origin}, not {proved.origin}")
        verify_inclusion(SHA256, proved.leaf_index, checkpoint.size, proved.leaf_hash, part.inclusion_proof,
                         checkpoint.root_hash)  # fmt: skip
        # Step 3: the token.
        stamped = verify_token(part.token, note.text, trust.tsa)
        # Step 4: the court's time for the leaf is no later than the TSA's for a tree holding it.
        recorded = datetime.fromisoformat(proved.recorded_at.replace("Z", "+00:00"))
        if recorded > stamped.time + CLOCK_SKEW:
            raise TimestampError(f"the leaf's 存证时间 {proved.recorded_at} is after the TSA's time {stamped.utc}")
    except (VerificationError, MalformedError) as exc:
        return _fail(result, "trusted_time", exc)
    result["trusted_time"] = {"utc": stamped.utc, "beijing": stamped.beijing, "tsa": stamped.tsa,
                              "serial": stamped.serial, "tree_size": checkpoint.size}  # fmt: skip
    _ok(result, "trusted_time", f"TSA {stamped.tsa} stamped a checkpoint holding this leaf (size {checkpoint.size}) "
        f"at {stamped.beijing} ({stamped.utc}): the record existed no later than that")  # fmt: skip
    return True


def utc_now() -> datetime:
    return datetime.now(UTC)
