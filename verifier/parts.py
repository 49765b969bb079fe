"""The optional parts of a receipt, checked offline where they can be: trusted time (RFC 3161,
docs/time.md), the log's key history (docs/keys.md) and a chain anchor (docs/anchoring.md).

Each check adds a ``Check`` to the result (passed or failed, as the CLI reports them) or, when it
cannot be made here, a line to its ``not_checked`` with the reason: a claim not checked is never shown as
verified. A malformed part raises MalformedError (the CLI's exit 2).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Final

from ledger.checkpoint import Checkpoint, open_checkpoint
from ledger.errors import MalformedError, VerificationError
from ledger.evm import AnchorError, AnchorPart
from ledger.keys import (
    KeyHistory,
    KeyHistoryError,
    KeyRetiredError,
    KeyWindowError,
    WindowedKey,
    check_window,
    require_current,
    verify_history,
    windowed,
)
from ledger.note import Note, Verifier
from ledger.proof import verify_inclusion
from ledger.receipt import Receipt, VerifiedReceipt
from ledger.suite import hasher_for_log
from ledger.timestamp import BEIJING, TimestampError, TimestampPart, UnknownTsaError, available, verify_token
from ledger.trust import Trust
from verifier.chain import ChainUnreachableError, check_online
from verifier.result import Check, VerifyResult

Result = VerifyResult
CLOCK_SKEW: Final = timedelta(seconds=60)  # the court's clock may run this far ahead of the TSA's
CHAIN_SKEW: Final = timedelta(minutes=15)  # and this far ahead of a block's time (proposers set it)


def _ok(result: Result, check: str, detail: str) -> None:
    result.add(Check.passed(check, detail))


def _fail(result: Result, check: str, exc: VerificationError | MalformedError) -> bool:
    return result.add(Check.failed(check, exc))


def not_checked(result: Result, check: str, why: str) -> None:
    result.not_checked.append({"check": check, "detail": why})


def history_keys(trust: Trust, histories: Sequence[KeyHistory], result: Result) -> list[WindowedKey] | None:
    """The trust file's log keys followed through the key histories given, each key with its window
    (docs/keys.md). None (and a failed ``key_history`` check) when a history does not verify."""
    keys = [windowed(k) for k in trust.logs]
    if not histories:
        return keys
    keys = []
    try:
        verified = []
        for history in histories:
            found, checkpoint = verify_history(list(trust.logs), history)  # type: ignore[arg-type]  # Ed25519 keys only
            verified.append((history, checkpoint))
            keys = _narrowest(keys, found)
        agree(verified)
    except VerificationError as exc:
        _fail(result, "key_history", exc)
        return None
    rotations = sum(len(h.entries) for h in histories)
    _ok(result, "key_history", f"{rotations} key rotation(s) of {checkpoint.origin} followed from the pinned key, "
        "each signed by the key then current and the new one, proved in the log")  # fmt: skip
    result.facts["log_keys"] = [{"key": k.vkey(), "window": k.window()} for k in keys]
    return keys


def agree(histories: Sequence[tuple[KeyHistory, Checkpoint]]) -> None:
    """Raise KeyHistoryError when two verified histories of one log disagree: a history lists every
    rotation below its checkpoint's size, so the smaller one's entries are exactly the larger one's
    below that size. Two histories that hand the same key on to different keys (a thief's beside the
    court's) are a fork, and neither is believed (docs/keys.md)."""
    for i, (a, at) in enumerate(histories):
        for b, bt in histories[i + 1 :]:
            if at.origin != bt.origin:
                continue
            (small, size), large = ((a, at.size), b) if at.size <= bt.size else ((b, bt.size), a)
            mine = {index: leaf for index, leaf, _ in small.entries}
            theirs = {index: leaf for index, leaf, _ in large.entries if index < size}
            if mine != theirs:
                diff = sorted(set(mine.items()) ^ set(theirs.items()))
                raise KeyHistoryError(
                    f"two key histories of {at.origin} disagree at leaf {diff[0][0]}: the log is forked "
                    "(a retired or stolen key rotated to another key); neither is followed"
                )


def log_keys(receipt: Receipt, trust: Trust, histories: Sequence[KeyHistory], result: Result) -> list[Verifier] | None:
    """The log keys a receipt's checkpoint is checked with: the trust file's, followed through the key
    history the receipt carries and any given beside it (``--keys``, GET /v1/log/keys), each key with
    its window. None (and a failed check) when a history does not verify, or when the receipt's
    checkpoint is signed by a key outside its window.

    Raises MalformedError for an unreadable history.
    """
    carried = receipt.parts.get("key_history")
    keys = history_keys(trust, [*([KeyHistory.from_dict(carried)] if carried is not None else []), *histories], result)
    if keys is None:
        return None
    try:
        note = Note.from_text(receipt.checkpoint)
    except MalformedError:
        return list(keys)  # the receipt check names it
    try:
        check_window(note, keys)
        require_current(note, keys, receipt.parts.get("key_consistency"))
    except (KeyWindowError, KeyRetiredError) as exc:
        _fail(result, "receipt", exc)
        return None
    return list(keys)


def _narrowest(a: list[WindowedKey], b: list[WindowedKey]) -> list[WindowedKey]:
    """Keys of both lists; a key in both gets the narrower window (what either history says)."""
    out = list(a)
    for k in b:
        same = next((i for i, o in enumerate(out) if o.key_id == k.key_id and o.name == k.name), None)
        if same is None:
            out.append(k)
            continue
        o = out[same]
        ends = [e for e in (o.last_size, k.last_size) if e is not None]
        out[same] = replace(o, first_size=max(o.first_size, k.first_size), last_size=min(ends) if ends else None,
                            compromised=o.compromised or k.compromised)  # fmt: skip
    return out


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
        checkpoint, note = _holding(part.checkpoint, part.inclusion_proof, proved, log_keys, TimestampError, "stamped")
        # Step 3: the token.
        try:
            stamped = verify_token(part.token, note.text, trust.tsa)
        except UnknownTsaError as exc:  # a backup TSA the trust file does not name: cannot be judged here
            not_checked(result, "trusted_time", f"the receipt carries an RFC 3161 token from a TSA the trust file "
                        f"does not name: {exc.diagnostics()}")  # fmt: skip
            return True
        # Step 4: the court's time for the leaf is no later than the TSA's for a tree holding it.
        recorded = datetime.fromisoformat(proved.recorded_at.replace("Z", "+00:00"))
        if recorded > stamped.time + CLOCK_SKEW:
            raise TimestampError(f"the leaf's 存证时间 {proved.recorded_at} is after the TSA's time {stamped.utc}")
    except (VerificationError, MalformedError) as exc:
        return _fail(result, "trusted_time", exc)
    result.facts["trusted_time"] = {"utc": stamped.utc, "beijing": stamped.beijing, "tsa": stamped.tsa,
                              "serial": stamped.serial, "tree_size": checkpoint.size}  # fmt: skip
    _ok(result, "trusted_time", f"TSA {stamped.tsa} stamped a checkpoint holding this leaf (size {checkpoint.size}) "
        f"at {stamped.beijing} ({stamped.utc}): the record existed no later than that")  # fmt: skip
    return True


def _holding(text: str, proof: Sequence[bytes], proved: VerifiedReceipt, log_keys: list[Verifier],
             error: type[VerificationError], what: str) -> tuple[Checkpoint, Note]:  # fmt: skip
    """The checkpoint a part stamps or anchors: signed by a key of the proved leaf's log and holding the
    leaf, proved with that log's tree hash (SM3 on a GM log). Raises ``error`` or the proof's errors."""
    checkpoint, note = open_checkpoint(text, log_keys)
    if checkpoint.origin != proved.origin:
        raise error(f"the {what} checkpoint is of {checkpoint.origin}, not {proved.origin}")
    verify_inclusion(hasher_for_log(proved.origin, log_keys), proved.leaf_index, checkpoint.size, proved.leaf_hash,
                     proof, checkpoint.root_hash)  # fmt: skip
    return checkpoint, note


def check_anchor(receipt: Receipt, proved: VerifiedReceipt, trust: Trust, log_keys: list[Verifier],
                 chain_rpc: str | None, result: Result) -> bool:  # fmt: skip
    """The receipt's chain anchor, if it carries one; False when it is there and does not verify.

    Offline: the anchored checkpoint is signed by the log and holds the proved leaf; the transaction
    is reported not checked. With ``chain_rpc``: the chain's node is asked (verifier/chain.py) and
    the record judged by ``ledger.evm.check_record`` against the trust file's chain entry.
    """
    raw = receipt.parts.get("anchor")
    if raw is None:
        return True
    part = AnchorPart.from_dict(raw)
    try:
        checkpoint, _ = _holding(part.checkpoint, part.inclusion_proof, proved, log_keys, AnchorError, "anchored")
    except (VerificationError, MalformedError) as exc:
        return _fail(result, "chain_anchor", exc)
    claim = f"transaction {part.tx_hash} in block {part.block_number} of chain {part.chain_id}"
    chain = trust.chains.get(proved.origin)
    if chain is None:
        not_checked(result, "chain_anchor", f"the receipt claims {claim}; the trust file names no chain for this log")
        return True
    if chain_rpc is None:
        not_checked(result, "chain_anchor", f"offline: the receipt claims {claim}, not looked up (--chain-rpc URL)")
        return True
    try:
        when = check_online(chain_rpc, part, chain, checkpoint.origin, checkpoint.size, checkpoint.root_hash)
    except ChainUnreachableError as exc:
        not_checked(result, "chain_anchor", f"the receipt claims {claim}; {exc}")
        return True
    except AnchorError as exc:
        return _fail(result, "chain_anchor", exc)
    at = datetime.fromtimestamp(when, UTC)
    recorded = datetime.fromisoformat(proved.recorded_at.replace("Z", "+00:00"))
    if recorded > at + CHAIN_SKEW:  # the block holds a checkpoint with the leaf: it cannot predate the leaf
        block = at.isoformat(timespec="seconds")
        return _fail(result, "chain_anchor", AnchorError(
            f"the leaf's 存证时间 {proved.recorded_at} is after the time of block {part.block_number} that anchors "
            f"a checkpoint holding it ({block}): one of the two times is false"))  # fmt: skip
    result.facts["anchor"] = {"chain_id": part.chain_id, "contract": part.contract, "tx_hash": part.tx_hash,
                        "block_number": part.block_number, "tree_size": checkpoint.size,
                        "block_time": at.isoformat(timespec="seconds").replace("+00:00", "Z"),
                        "beijing": at.astimezone(BEIJING).strftime("%Y-%m-%d %H:%M:%S 北京时间")}  # fmt: skip
    _ok(result, "chain_anchor", f"{claim}, sent by the court's account to the anchor contract, anchors a checkpoint "
        f"holding this leaf (size {checkpoint.size}); block time {result.facts['anchor']['beijing']}")  # fmt: skip
    return True
