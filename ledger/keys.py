"""A log key that can change: key rotation leaves, key windows, and following a key history.

A court's log key lives for decades; it is replaced (``sifa rotate-key``) by a leaf in the log
itself, ``LogKeyRotated``, that names the old and the new key and is signed by both. From the
checkpoint that holds it on, the new key signs. The rotation can also say that the old key was
compromised from a leaf index on: checkpoints it signs beyond that are refused (docs/keys.md).

A verifier that pins only the first key follows the history: each rotation signed by the key then
current (and by the new one) extends trust to the new key, for the tree sizes it may sign. The
result is a list of ``WindowedKey`` — each key with the checkpoint sizes it may sign — that every
checkpoint check (``open_checkpoint``, a witness's ``verified_by``) uses unchanged: a key's
signature on a checkpoint outside its window does not verify.

    VerificationError
     └── KeyHistoryError   a rotation not signed by the key then current, or out of order
                           (code key_history_invalid)
     └── KeyWindowError    a checkpoint signed by a key outside its window: after it was replaced,
                           or past the leaf it was compromised from (code log_key_not_valid)
     └── KeyRetiredError   a checkpoint signed only by a replaced key, not proved consistent with
                           one the current key signed (code log_key_retired)
    MalformedError
     └── MalformedKeyHistoryError
"""

from __future__ import annotations

import base64
import binascii
import hmac
import json
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any, Final

from ledger import boundedjson
from ledger.checkpoint import Checkpoint, open_checkpoint
from ledger.errors import MalformedError, VerificationError
from ledger.hashing import SHA256, Hasher
from ledger.note import Ed25519Signer, Ed25519Verifier, Note, Verifier
from ledger.proof import verify_consistency, verify_inclusion

ROTATED: Final = "LogKeyRotated"
DOMAIN: Final = b"sifa-log-key/1\n"  # what a rotation's signatures are over: this, then the statement
LABEL: Final = "log-key"  # the tree store label of rotation leaves
MAX_ENTRIES: Final = 1000


class KeyHistoryError(VerificationError):
    code = "key_history_invalid"


class KeyWindowError(VerificationError):
    code = "log_key_not_valid"


class KeyRetiredError(VerificationError):
    code = "log_key_retired"


class MalformedKeyHistoryError(MalformedError):
    code = "malformed_key_history"


@dataclass(frozen=True, slots=True)
class WindowedKey(Ed25519Verifier):
    """A log key that signs checkpoints of sizes ``first_size`` to ``last_size`` (None: no end yet).
    ``compromised``: the end is a compromise, not a planned rotation."""

    first_size: int = 0
    last_size: int | None = None
    compromised: bool = False

    def allows(self, size: int) -> bool:
        return self.first_size <= size and (self.last_size is None or size <= self.last_size)

    def window(self) -> str:
        end = "on" if self.last_size is None else f"to {self.last_size}"
        why = f" (compromised from leaf {self.last_size})" if self.compromised else ""
        return f"sizes {self.first_size} {end}{why}"

    def verify(self, message: bytes, signature: bytes) -> bool:
        size = checkpoint_size(message)
        return size is not None and self.allows(size) and Ed25519Verifier.verify(self, message, signature)


def windowed(key: Verifier) -> WindowedKey:
    """``key`` with its window (all sizes unless it has one). A key that is not Ed25519 (a 国密 SM2 log
    key: such a log has no key history yet) is returned as it is, checked as itself."""
    if isinstance(key, WindowedKey) or not isinstance(key, Ed25519Verifier):
        return key  # type: ignore[return-value]  # an SM2 key verifies as itself, without a window
    return WindowedKey(key.name, key.public_key)


def checkpoint_size(message: bytes) -> int | None:
    """The tree size a checkpoint body states (its second line), None if it states none."""
    lines = message.split(b"\n", 2)
    if len(lines) < 3 or not lines[1].isdigit() or len(lines[1]) > 20:
        return None
    return int(lines[1])


def _statement(doc: dict[str, Any]) -> bytes:
    body = {k: v for k, v in doc.items() if k != "signatures"}
    return DOMAIN + json.dumps(body, ensure_ascii=False, sort_keys=True, separators=(",", ":")).encode()


def rotation_leaf(old: Ed25519Signer, new: Ed25519Signer, index: int, time: str,
                  compromised_from: int | None = None) -> bytes:  # fmt: skip
    """The leaf that, at ``index``, hands the log from ``old`` to ``new``, signed by both.
    ``compromised_from``: the old key signs nothing beyond that tree size (a leaf index)."""
    if old.name != new.name:
        raise MalformedKeyHistoryError("the new key must have the log's name (its origin)")
    if compromised_from is not None and not 0 <= compromised_from <= index:
        raise MalformedKeyHistoryError(f"a key is compromised from a leaf index up to {index}")
    doc: dict[str, Any] = {"type": ROTATED, "log": old.name, "index": index, "time": time,
                           "old": old.verifier.vkey(), "new": new.verifier.vkey(),
                           "old_compromised_from": compromised_from}  # fmt: skip
    message = _statement(doc)
    doc["signatures"] = {"old": base64.b64encode(old.sign(message)).decode(),
                         "new": base64.b64encode(new.sign(message)).decode()}  # fmt: skip
    return json.dumps(doc, ensure_ascii=False, sort_keys=True, separators=(",", ":")).encode()


@dataclass(frozen=True)
class Rotation:
    index: int
    old: Ed25519Verifier
    new: Ed25519Verifier
    compromised_from: int | None


def read_rotation(leaf: bytes, index: int) -> Rotation:
    """Check a rotation leaf's form and both signatures. Raises MalformedKeyHistoryError or KeyHistoryError."""
    try:
        doc = boundedjson.loads(leaf)
        if not isinstance(doc, dict) or doc.get("type") != ROTATED:
            raise ValueError("not a LogKeyRotated leaf")
        if set(doc) != {"type", "log", "index", "time", "old", "new", "old_compromised_from", "signatures"}:
            raise ValueError("a rotation leaf has exactly its eight fields")
        old, new = Ed25519Verifier.from_vkey(doc["old"]), Ed25519Verifier.from_vkey(doc["new"])
        sigs = doc["signatures"]
        old_sig, new_sig = base64.b64decode(sigs["old"], validate=True), base64.b64decode(sigs["new"], validate=True)
        compromised = doc["old_compromised_from"]
        if compromised is not None and (type(compromised) is not int or not 0 <= compromised <= index):
            raise ValueError("old_compromised_from is a leaf index up to the rotation's")
    except (ValueError, KeyError, TypeError, binascii.Error, MalformedError) as exc:
        raise MalformedKeyHistoryError(f"key history entry {index}: {exc}") from exc
    if doc["index"] != index or doc["log"] != old.name or new.name != old.name:
        raise KeyHistoryError(f"the rotation at leaf {index} names another position or log")
    message = _statement(doc)
    if not Ed25519Verifier.verify(old, message, old_sig) or not Ed25519Verifier.verify(new, message, new_sig):
        raise KeyHistoryError(f"the rotation at leaf {index} is not signed by both the old and the new key")
    return Rotation(index, old, new, compromised)


def _same(a: Verifier, b: Verifier) -> bool:
    return a.name == b.name and hmac.compare_digest(a.key_id, b.key_id)


def follow(pinned: Sequence[Ed25519Verifier], rotations: Sequence[Rotation]) -> list[WindowedKey]:
    """The keys the pinned ones hand on to, each with its window, from rotations in leaf order.

    A rotation counts only when signed by a key of its log that is known (pinned or handed on), has
    not rotated before, and signs from a size no later than the rotation's index. It closes that
    key's window at the rotation's index (the checkpoint that holds the rotation is the new key's),
    or at its compromise index; a window the trust file already gives a key is kept where it is
    narrower (``until_size``, ``compromised_from``, ``from_size``), so a trust file that marks an
    honest history's keys agrees with it. Raises KeyHistoryError.
    """
    keys = [windowed(k) for k in pinned]
    rotated: list[Verifier] = []
    for r in sorted(rotations, key=lambda r: r.index):
        at = next((i for i, k in enumerate(keys) if _same(k, r.old)), None)
        if at is None or any(_same(k, r.old) or _same(k, r.new) for k in rotated) or keys[at].first_size > r.index:
            raise KeyHistoryError(
                f"the rotation at leaf {r.index} is not signed by the key then current for {r.old.name}"
            )
        rotated.append(r.old)
        old = keys[at]
        end = r.index if r.compromised_from is None else min(r.index, r.compromised_from)
        keys[at] = replace(old, last_size=end if old.last_size is None else min(end, old.last_size),
                           compromised=old.compromised or r.compromised_from is not None)  # fmt: skip
        new = next((i for i, k in enumerate(keys) if _same(k, r.new)), None)
        if new is None:
            keys.append(WindowedKey(r.new.name, r.new.public_key, first_size=r.index + 1))
        else:
            keys[new] = replace(keys[new], first_size=max(keys[new].first_size, r.index + 1))
    return keys


def check_window(note: Note, keys: Sequence[WindowedKey]) -> None:
    """Raise KeyWindowError when the checkpoint is signed only by known keys outside their windows
    (so that the refusal names why, where ``open_checkpoint`` would say only 'not trusted')."""
    size = checkpoint_size(note.text.encode())
    known = [k for s in note.signatures for k in keys if k.name == s.name and hmac.compare_digest(k.key_id, s.key_id)]
    # A key without a window (a 国密 SM2 key: no key history yet) signs every size.
    if size is None or not known or any(not isinstance(k, WindowedKey) or k.allows(size) for k in known):
        return
    k = known[0]
    raise KeyWindowError(
        f"the checkpoint of size {size} is signed by log key {k.key_id.hex()}, which signs {k.window()}"
    )


@dataclass(frozen=True)
class KeyHistory:
    """Rotation leaves with inclusion proofs in one signed checkpoint of the log (the ``key_history``
    part of a receipt, the answer of ``GET /v1/log/keys``)."""

    checkpoint: str
    entries: tuple[tuple[int, bytes, tuple[bytes, ...]], ...]

    def to_dict(self) -> dict[str, Any]:
        return {"checkpoint": self.checkpoint, "entries": [
            {"index": i, "leaf": base64.b64encode(leaf).decode(), "inclusion_proof": [base64.b64encode(h).decode()
             for h in proof]} for i, leaf, proof in self.entries]}  # fmt: skip

    @classmethod
    def from_dict(cls, doc: Any) -> KeyHistory:
        """Raises MalformedKeyHistoryError."""
        try:
            if (
                not isinstance(doc, dict)
                or set(doc) != {"checkpoint", "entries"}
                or not isinstance(doc["checkpoint"], str)
            ):
                raise ValueError("a key history holds exactly checkpoint (note text) and entries")
            if not isinstance(doc["entries"], list) or len(doc["entries"]) > MAX_ENTRIES:
                raise ValueError(f"entries is a list of at most {MAX_ENTRIES}")
            entries = []
            for e in doc["entries"]:
                if not isinstance(e, dict) or set(e) != {"index", "leaf", "inclusion_proof"}:
                    raise ValueError("an entry holds exactly index, leaf and inclusion_proof")
                if type(e["index"]) is not int or e["index"] < 0 or len(e["inclusion_proof"]) > 64:
                    raise ValueError("an entry's index is a leaf index, its proof at most 64 hashes")
                proof = tuple(base64.b64decode(h, validate=True) for h in e["inclusion_proof"])
                entries.append((e["index"], base64.b64decode(e["leaf"], validate=True), proof))
        except (ValueError, TypeError, binascii.Error) as exc:
            raise MalformedKeyHistoryError(f"key history: {exc}") from exc
        return cls(doc["checkpoint"], tuple(entries))


def verify_history(pinned: Sequence[Ed25519Verifier], history: KeyHistory,
                   hasher: Hasher = SHA256) -> tuple[list[WindowedKey], Checkpoint]:  # fmt: skip
    """Follow a key history from the pinned keys; return the keys with their windows, and the
    checkpoint its entries are proved in.

    Steps (docs/keys.md): 1 each rotation is signed by the key then current and by the new key;
    2 the history's checkpoint is signed by a key within its window; 3 every rotation is included
    in that checkpoint's tree. Raises KeyHistoryError, KeyWindowError, a VerificationError of the
    checkpoint or proof, or MalformedKeyHistoryError.
    """
    keys = follow(pinned, [read_rotation(leaf, index) for index, leaf, _ in history.entries])
    try:
        note = Note.from_text(history.checkpoint)
        check_window(note, keys)
        checkpoint, _ = open_checkpoint(history.checkpoint, keys)
    except MalformedError as exc:
        raise MalformedKeyHistoryError(f"key history checkpoint: {exc}") from exc
    for index, leaf, proof in history.entries:
        if index >= checkpoint.size:
            raise KeyHistoryError(
                f"the rotation at leaf {index} is not in the history's tree of size {checkpoint.size}"
            )
        verify_inclusion(hasher, index, checkpoint.size, hasher.leaf(leaf), proof, checkpoint.root_hash)
    return keys, checkpoint


def require_current(note: Note, keys: Sequence[WindowedKey], part: Any, hasher: Hasher = SHA256) -> None:
    """A checkpoint signed only by keys since replaced counts only with a proof that the log the
    current key signs extends it: ``part`` (a receipt's ``key_consistency``, docs/keys.md) is
    ``{"checkpoint": note text signed by a current key, "proof": [base64 hashes]}``, a consistency
    proof from this checkpoint to that one. A replaced key may have been stolen; a tree it alone
    signs may be a fork. Raises KeyRetiredError, or MalformedKeyHistoryError for a malformed part.
    """
    message = note.text.encode()
    size = checkpoint_size(message)
    signing = [k for s in note.signatures for k in keys if k.name == s.name
               and hmac.compare_digest(k.key_id, s.key_id) and k.verify(message, s.signature)]  # fmt: skip
    if size is None or not signing or any(not isinstance(k, WindowedKey) or k.last_size is None for k in signing):
        return  # not signed by a known key (the checkpoint check names it), or by a current one
    old = signing[0]
    if part is None:
        raise KeyRetiredError(
            f"the checkpoint of size {size} is signed by log key {old.key_id.hex()}, since replaced, and the "
            "receipt carries no proof (key_consistency) that the current key's log extends it: ask the node "
            "for a fresh receipt"
        )
    try:
        if (
            not isinstance(part, dict)
            or set(part) != {"checkpoint", "proof"}
            or not isinstance(part["checkpoint"], str)
        ):
            raise ValueError("key_consistency holds exactly checkpoint (note text) and proof")
        if not isinstance(part["proof"], list) or len(part["proof"]) > 128:
            raise ValueError("key_consistency's proof is a list of at most 128 hashes")
        proof = [base64.b64decode(h, validate=True) for h in part["proof"]]
        old_cp = Checkpoint.from_text(note.text)
        current = [k for k in keys if k.last_size is None]
        new_cp, _ = open_checkpoint(part["checkpoint"], current)
    except (ValueError, TypeError, binascii.Error, MalformedError) as exc:
        raise MalformedKeyHistoryError(f"key_consistency: {exc}") from exc
    except VerificationError as exc:
        raise KeyRetiredError(f"key_consistency's checkpoint is not signed by a current log key: {exc}") from exc
    if new_cp.origin != old_cp.origin or new_cp.size < old_cp.size:
        raise KeyRetiredError("key_consistency's checkpoint is of another log, or smaller")
    try:
        verify_consistency(hasher, old_cp.size, new_cp.size, old_cp.root_hash, new_cp.root_hash, proof)
    except VerificationError as exc:
        raise KeyRetiredError(
            f"the checkpoint of size {size}, signed by replaced key {old.key_id.hex()}, is not consistent with "
            f"the current key's of size {new_cp.size}: a fork"
        ) from exc
