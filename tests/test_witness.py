"""Witnessing: C2SP tlog-cosignature lines and the tlog-witness add-checkpoint rules.

The interop tests build cosignatures by hand from the spec text (c2sp.org/tlog-cosignature), with
PyNaCl and hashlib only, and check that sifa reads them and writes exactly the same bytes.
"""

from __future__ import annotations

import base64
import hashlib
import struct
from collections.abc import Iterator
from pathlib import Path

import nacl.signing
import pytest

from ledger.anchor import AnchorRecord, WitnessAnchorCheck
from ledger.cosignature import (
    CosignatureSigner,
    CosignatureVerifier,
    QuorumError,
    cosigners,
    require_quorum,
)
from ledger.errors import CheckpointSignatureError, MalformedNoteError, VerificationError
from ledger.log import MerkleLog
from ledger.note import Ed25519Signer, Note, add_signatures, sign_note
from ledger.sqlite import SQLiteTreeStore
from ledger.witness import Witness
from ledger.witness_sqlite import SQLiteWitnessState

ORIGIN = "sifa.court/1101-0105"
BODY = "example.com/behind-the-sofa\n20852163\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n"  # the spec's example


def _by_hand(name: str, seed: bytes, body: str, timestamp: int) -> tuple[str, bytes]:
    """A cosignature line following the spec's words, and the witness public key."""
    key = nacl.signing.SigningKey(seed)
    public = bytes(key.verify_key)
    # "SHA-256(<name> || "\n" || 0x04 || 32-byte Ed25519 cosigner public key)[:4]"
    kid = hashlib.sha256(name.encode() + b"\n" + b"\x04" + public).digest()[:4]
    # "two newline terminated lines ... followed by the whole note body"
    message = b"cosignature/v1\n" + b"time " + str(timestamp).encode() + b"\n" + body.encode()
    # "u64 timestamp ... serialized in sequence, with the timestamp encoded in big-endian order"
    signature = struct.pack(">Q", timestamp) + key.sign(message).signature
    return "\u2014 " + name + " " + base64.b64encode(kid + signature).decode() + "\n", public


def test_a_cosignature_written_from_the_spec_text_verifies_and_sifa_writes_the_same_bytes() -> None:
    seed = bytes(range(32))
    line, public = _by_hand("witness.example.com/w1", seed, BODY, 1679315147)
    note = Note.from_text(BODY + "\n" + line)
    witness = CosignatureVerifier("witness.example.com/w1", public)
    assert cosigners(note, [witness]) == {"witness.example.com/w1": 1679315147}
    ours = CosignatureSigner("witness.example.com/w1", seed)
    assert ours.cosign(BODY, 1679315147).line() == line  # Ed25519 is deterministic
    vkey = witness.vkey()
    assert vkey.startswith("witness.example.com/w1+") and base64.b64decode(vkey.split("+", 2)[2])[0] == 0x04
    assert CosignatureVerifier.from_vkey(vkey) == witness
    with pytest.raises(MalformedNoteError):  # a log key (type 0x01) is not a witness key
        CosignatureVerifier.from_vkey(Ed25519Signer("witness.example.com/w1", seed).verifier.vkey())


def test_cosignature_over_another_time_or_body_fails() -> None:
    seed = bytes(range(32))
    line, public = _by_hand("w1", seed, BODY, 1679315147)
    witness = CosignatureVerifier("w1", public)
    raw = bytearray(base64.b64decode(line.split(" ")[2]))
    raw[4 + 7] ^= 1  # the timestamp's last byte
    forged = Note.from_text(BODY + "\n\u2014 w1 " + base64.b64encode(bytes(raw)).decode() + "\n")
    with pytest.raises(CheckpointSignatureError):
        cosigners(forged, [witness])
    other = BODY.replace("20852163", "20852164")
    with pytest.raises(CheckpointSignatureError):
        cosigners(Note.from_text(other + "\n" + line), [witness])


def test_quorum_counts_distinct_trusted_witnesses() -> None:
    witnesses = [CosignatureSigner(f"w{i}.example", bytes([i]) * 32) for i in range(3)]
    stranger = CosignatureSigner("w0.example", bytes([9]) * 32)  # same name, other key: ignored
    note = Note(BODY, ())
    note = add_signatures(note, [witnesses[0].cosign(BODY, 10), witnesses[2].cosign(BODY, 11),
                                 stranger.cosign(BODY, 12)])  # fmt: skip
    trusted = [w.verifier for w in witnesses]
    assert require_quorum(note, trusted, 2) == {"w0.example": 10, "w2.example": 11}
    with pytest.raises(QuorumError, match=r"missing: w1\.example$"):
        require_quorum(note, trusted, 3)


@pytest.fixture
def world(tmp_path: Path) -> Iterator[tuple[MerkleLog, Ed25519Signer, Witness, SQLiteWitnessState]]:
    store = SQLiteTreeStore(tmp_path / "tree.sqlite")
    log, key = MerkleLog(store), Ed25519Signer(ORIGIN, bytes(range(32)))
    state = SQLiteWitnessState(tmp_path / "witness.sqlite")
    yield log, key, Witness(CosignatureSigner("sifa.witness/test", b"\x07" * 32), [key.verifier], state,
                            clock=lambda: 1_790_000_000), state  # fmt: skip
    state.close()
    store.close()


def _request(old: int, proof: list[bytes], note: Note) -> bytes:
    lines = [f"old {old}\n", *(base64.b64encode(h).decode() + "\n" for h in proof), "\n", note.to_text()]
    return "".join(lines).encode()


def test_witness_follows_the_log_and_refuses_what_the_spec_says(world: tuple[MerkleLog, Ed25519Signer, Witness,
                                                                             SQLiteWitnessState]) -> None:  # fmt: skip
    log, key, witness, state = world
    log.append([b"leaf %d" % i for i in range(5)])
    five = log.sign_checkpoint(key)
    ok = witness.add_checkpoint(_request(0, [], five))
    assert ok.status == 200, ok.body
    cosigned = add_signatures(five, Note.from_text(five.text + "\n" + ok.body).signatures)
    assert cosigners(cosigned, [witness.signer.verifier]) == {"sifa.witness/test": 1_790_000_000}

    log.append([b"leaf %d" % i for i in range(5, 12)])
    twelve = log.sign_checkpoint(key)
    stale = witness.add_checkpoint(_request(0, [], twelve))
    assert (stale.status, stale.body, stale.content_type) == (409, "5\n", "text/x.tlog.size")
    proof = log.consistency_proof(5, 12)
    bad = witness.add_checkpoint(_request(5, [proof[0][::-1], *proof[1:]], twelve))
    assert bad.status == 422
    assert witness.add_checkpoint(_request(5, proof, twelve)).status == 200
    assert state.latest(ORIGIN).size == 12  # type: ignore[union-attr]
    assert witness.add_checkpoint(_request(13, [], twelve)).status == 400  # old > size
    assert witness.add_checkpoint(b"old 012\n\n" + twelve.to_text().encode()).status == 400
    assert witness.add_checkpoint(b"new 5\n\n" + twelve.to_text().encode()).status == 400
    other = Ed25519Signer("sifa.court/9999-0000", bytes(32))
    elsewhere = sign_note(twelve.text.replace(ORIGIN, other.name), [other])
    assert witness.add_checkpoint(_request(0, [], elsewhere)).status == 404  # a log it does not know
    impostor = Ed25519Signer(ORIGIN, bytes([5]) * 32)  # the log's name, another key
    assert witness.add_checkpoint(_request(12, [], sign_note(twelve.text, [impostor]))).status == 403
    assert state.forks(ORIGIN)[0][3].startswith("consistency proof")


def test_two_checkpoints_of_one_size_are_a_fork_the_witness_refuses_and_keeps(
    world: tuple[MerkleLog, Ed25519Signer, Witness, SQLiteWitnessState], tmp_path: Path
) -> None:
    log, key, witness, state = world
    log.append([b"honest %d" % i for i in range(4)])
    honest = log.sign_checkpoint(key)
    assert witness.add_checkpoint(_request(0, [], honest)).status == 200
    other_store = SQLiteTreeStore(tmp_path / "rewritten.sqlite")
    try:
        rewritten = MerkleLog(other_store)
        rewritten.append([b"rewritten %d" % i for i in range(4)])
        split = rewritten.sign_checkpoint(key)  # same log key, same size, another history
    finally:
        other_store.close()
    refused = witness.add_checkpoint(_request(4, [], split))
    assert refused.status == 409
    ((origin, seen, presented, reason),) = state.forks()
    assert (origin, seen, presented) == (ORIGIN, honest.to_text(), split.to_text())
    assert "different roots" in reason


def test_witness_anchor_record_names_the_cosigners_and_checks_them() -> None:
    witnesses = [CosignatureSigner(f"w{i}.example", bytes([i + 1]) * 32) for i in range(3)]
    note = add_signatures(Note(BODY, ()), [witnesses[0].cosign(BODY, 100), witnesses[1].cosign(BODY, 101)])
    check = WitnessAnchorCheck([w.verifier for w in witnesses], 2)
    record = check.record(note, 20852163)
    assert (record.kind, record.tx_id, record.height, record.times) == (
        "witness", "20852163", 2, {"w0.example": 100, "w1.example": 101})  # fmt: skip
    check.verify(note, record)
    with pytest.raises(VerificationError):
        check.verify(note, AnchorRecord("witness", "20852163", 2, {"w0.example": 99}))
    with pytest.raises(QuorumError):
        WitnessAnchorCheck([w.verifier for w in witnesses], 3).record(note, 20852163)
