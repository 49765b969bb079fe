"""A witness (C2SP tlog-witness): cosign a log's checkpoint only if it extends what was seen.

    SPEC: c2sp.org/tlog-witness, add-checkpoint
    request  = "old " <size> "\n" *(<base64 hash> "\n") "\n" <signed checkpoint note>
    200      one cosignature line per witness key ("— name base64(...)\n")
    400      malformed request, or old size > checkpoint size
    403      no signature from a trusted key of the origin
    404      unknown origin
    409      old size is not the latest cosigned size (body: that size, text/x.tlog.size),
             or the same size with another root (a fork: kept as evidence)
    422      the consistency proof does not verify (kept as evidence)

``Witness.add_checkpoint`` is pure logic over a ``WitnessState`` port; checking the old size and
recording the new checkpoint happen in one atomic step of the state.
"""

from __future__ import annotations

import base64
import binascii
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Final, Protocol

from ledger.checkpoint import Checkpoint
from ledger.cosignature import CosignatureSigner
from ledger.errors import ConsistencyProofError, LedgerError, MalformedError, VerificationError
from ledger.hashing import Hasher
from ledger.note import Note, Verifier, verified_by
from ledger.proof import verify_consistency
from ledger.suite import hasher_for_log

MAX_PROOF_LINES: Final = 63  # SPEC: "MUST NOT send more than 63 consistency proof lines"
MAX_REQUEST: Final = 64 << 10
SIZE_TYPE: Final = "text/x.tlog.size"


@dataclass(frozen=True, slots=True)
class Seen:
    """The latest checkpoint a witness cosigned for one origin."""

    size: int
    root_hash: bytes
    note: str


class WitnessState(Protocol):
    """Where a witness keeps, per origin, the latest checkpoint it cosigned (durably)."""

    def latest(self, origin: str) -> Seen | None: ...

    def advance(self, origin: str, old_size: int, new: Seen) -> Seen | None:
        """Record ``new`` if the latest size is still ``old_size`` (0: none yet), atomically.
        Returns None on success, else the latest as it is now."""
        ...

    def record_fork(self, origin: str, seen: str, presented: str, reason: str) -> None: ...


@dataclass(frozen=True, slots=True)
class Answer:
    status: int
    body: str
    content_type: str = "text/plain; charset=utf-8"


def add_checkpoint_request(old: int, proof: Sequence[bytes], note: Note) -> bytes:
    """The body of an add-checkpoint request (what ``_parse`` reads)."""
    hashes = "".join(base64.b64encode(h).decode() + "\n" for h in proof)
    return (f"old {old}\n{hashes}\n" + note.to_text()).encode()


def _parse(request: bytes) -> tuple[int, list[bytes], str]:
    if len(request) > MAX_REQUEST:
        raise MalformedError("request is larger than 64 KiB")
    try:
        text = request.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise MalformedError("request is not UTF-8") from exc
    head, sep, note = text.partition("\n")
    if not sep or not head.startswith("old "):
        raise MalformedError("the first line must be 'old <size>'")
    size = head[4:]
    if not size.isascii() or not size.isdigit() or (size != "0" and size.startswith("0")) or len(size) > 20:
        raise MalformedError("old size is not a decimal without leading zeroes")
    proof: list[bytes] = []
    while True:
        line, sep, note = note.partition("\n")
        if not sep:
            raise MalformedError("no empty line before the checkpoint")
        if line == "":
            break
        if len(proof) == MAX_PROOF_LINES:
            raise MalformedError(f"more than {MAX_PROOF_LINES} consistency proof lines")
        try:
            proof.append(base64.b64decode(line.encode("ascii"), validate=True))
        except (binascii.Error, UnicodeEncodeError) as exc:
            raise MalformedError("a consistency proof line is not base64") from exc
    return int(size), proof, note


class Witness:
    """Cosigns checkpoints of the logs it knows, never two views of one log."""

    def __init__(self, signer: CosignatureSigner, logs: Sequence[Verifier], state: WitnessState, *,
                 hasher: Hasher | None = None, clock: Callable[[], float] = time.time) -> None:  # fmt: skip
        """``hasher``: one tree hash for every log; None (the default) takes each log's from its key
        (``ledger.suite``: SM3 for a GM log's SM2 key), so one witness cosigns logs of both suites."""
        self.signer, self.logs, self.state, self.hasher, self.clock = signer, list(logs), state, hasher, clock

    def add_checkpoint(self, request: bytes) -> Answer:
        try:
            old, proof, note_text = _parse(request)
            note = Note.from_text(note_text)
            checkpoint = Checkpoint.from_text(note.text)
        except MalformedError as exc:
            return Answer(400, exc.diagnostics() + "\n")
        keys = [k for k in self.logs if k.name == checkpoint.origin]
        if not keys:
            return Answer(404, f"unknown log {checkpoint.origin}\n")
        try:
            verified_by(note, keys)
        except VerificationError:
            return Answer(403, "the checkpoint is not signed by a trusted key of its log\n")
        if old > checkpoint.size:
            return Answer(400, f"old size {old} is larger than the checkpoint's {checkpoint.size}\n")
        seen = self.state.latest(checkpoint.origin)
        latest = seen.size if seen else 0
        if old != latest:
            return Answer(409, f"{latest}\n", SIZE_TYPE)
        if seen is not None and seen.size > 0:
            try:
                hasher = self.hasher or hasher_for_log(checkpoint.origin, keys)
                verify_consistency(hasher, old, checkpoint.size, seen.root_hash, checkpoint.root_hash, proof)
            except ConsistencyProofError as exc:
                self.state.record_fork(checkpoint.origin, seen.note, note_text, exc.diagnostics())
                status = 409 if old == checkpoint.size else 422
                return Answer(status, f"not consistent with the checkpoint of size {old} already cosigned\n")
        elif proof:
            return Answer(422, "a consistency proof from size 0 must be empty\n")
        now = int(self.clock())
        raced = self.state.advance(checkpoint.origin, old, Seen(checkpoint.size, checkpoint.root_hash, note_text))
        if raced is not None:
            return Answer(409, f"{raced.size}\n", SIZE_TYPE)
        return Answer(200, self.signer.cosign(note.text, now).line())


class WitnessStateError(LedgerError):
    code = "witness_state_unavailable"
