"""Witnesses over GM logs: C2SP Ed25519 cosignatures (type 0x04) on SM2-signed SM3 checkpoints (docs/gm.md).

One witness cosigns a SHA-256 log and a GM log side by side, checking each log's consistency proof
with the hash its trusted key names; the quorum rules of a receipt's verifier hold unchanged.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from ledger.checkpoint import Checkpoint
from ledger.cosignature import CosignatureSigner, QuorumError, cosigners, require_quorum
from ledger.gm import SM2Signer
from ledger.hashing import SHA256, SM3Hasher
from ledger.log import MerkleLog
from ledger.note import Ed25519Signer, Note, add_signatures
from ledger.receipt import Receipt
from ledger.sqlite import SQLiteTreeStore
from ledger.witness import Witness, add_checkpoint_request
from ledger.witness_sqlite import SQLiteWitnessState
from verifier.cli import main as sifa_verify

GM_ORIGIN, SHA_ORIGIN = "sifa.court/1101-0105", "sifa.court/1101-0200"
LEAF = '{{"origin":"{o}","seq":{i},"time":"2026-11-22T08:00:00Z","sha256":"{i:064x}"}}'


@pytest.fixture
def logs(tmp_path: Path) -> Iterator[dict[str, tuple[MerkleLog, Ed25519Signer | SM2Signer]]]:
    gm = MerkleLog(SQLiteTreeStore(tmp_path / "gm.sqlite"), SM3Hasher())
    sha = MerkleLog(SQLiteTreeStore(tmp_path / "sha.sqlite"), SHA256)
    out = {GM_ORIGIN: (gm, SM2Signer.generate(GM_ORIGIN)), SHA_ORIGIN: (sha, Ed25519Signer.generate(SHA_ORIGIN))}
    yield out
    for log, _ in out.values():
        log.store.close()


def _grow(log: MerkleLog, signer: Ed25519Signer | SM2Signer, n: int) -> Note:
    start = log.size
    log.append([LEAF.format(o=signer.name, i=i).encode() for i in range(start, start + n)])
    return log.sign_checkpoint(signer)


def _witness(tmp_path: Path, name: str, logs: dict[str, tuple[MerkleLog, Ed25519Signer | SM2Signer]],
             **kw: object) -> Witness:  # fmt: skip
    state = SQLiteWitnessState(tmp_path / f"{name.replace('/', '_')}.sqlite")
    return Witness(CosignatureSigner.generate(name), [s.verifier for _, s in logs.values()], state, **kw)  # type: ignore[arg-type]


def _add(witness: Witness, log: MerkleLog, old: int, note: Note) -> tuple[int, str]:
    size = Checkpoint.from_text(note.text).size
    proof = log.consistency_proof(old, size) if old else []
    answer = witness.add_checkpoint(add_checkpoint_request(old, proof, note))
    return answer.status, answer.body


def test_one_witness_cosigns_a_gm_log_and_a_sha256_log_each_by_its_own_hash(logs: dict, tmp_path: Path) -> None:  # type: ignore[type-arg]
    w = _witness(tmp_path, "sifa.witness/a", logs)
    for origin, (log, signer) in logs.items():
        first = _grow(log, signer, 5)
        assert _add(w, log, 0, first)[0] == 200
        grown = _grow(log, signer, 7)
        status, line = _add(w, log, 5, grown)
        assert status == 200, (origin, line)
        cosigned = add_signatures(grown, Note.from_text(grown.text + "\n" + line).signatures)
        assert cosigners(cosigned, [w.signer.verifier]).keys() == {"sifa.witness/a"}


def test_a_gm_log_proof_checked_with_sha256_is_refused(logs: dict, tmp_path: Path) -> None:  # type: ignore[type-arg]
    """What a witness that took every log for SHA-256 (the code before GM logs) would do: refuse a good proof."""
    log, signer = logs[GM_ORIGIN]
    sha_only = _witness(tmp_path, "sifa.witness/sha-only", logs, hasher=SHA256)
    ours = _witness(tmp_path, "sifa.witness/ours", logs)
    first = _grow(log, signer, 3)
    assert _add(sha_only, log, 0, first)[0] == _add(ours, log, 0, first)[0] == 200
    grown = _grow(log, signer, 4)
    assert _add(sha_only, log, 3, grown)[0] == 422
    assert _add(ours, log, 3, grown)[0] == 200
    # A forked GM log (another history of the same size) is refused and kept as evidence.
    other = MerkleLog(SQLiteTreeStore(tmp_path / "fork.sqlite"), SM3Hasher())
    other.append([b"{}"] * 9)
    forged = other.sign_checkpoint(signer)
    assert _add(ours, other, 7, forged)[0] == 422
    assert ours.state.forks(GM_ORIGIN)


def test_quorum_of_ed25519_witnesses_over_a_gm_receipt(logs: dict, tmp_path: Path,  # type: ignore[type-arg]
                                                       capsys: pytest.CaptureFixture[str]) -> None:  # fmt: skip
    log, signer = logs[GM_ORIGIN]
    witnesses = [_witness(tmp_path, f"sifa.witness/{n}", logs) for n in ("a", "b", "c")]
    first = _grow(log, signer, 4)
    for w in witnesses:
        assert _add(w, log, 0, first)[0] == 200
    note = _grow(log, signer, 6)
    lines = [_add(w, log, 4, note)[1] for w in witnesses[:2]]  # c is not asked
    cosigned = add_signatures(note, Note.from_text(note.text + "\n" + "".join(lines)).signatures)
    verifiers = [w.signer.verifier for w in witnesses]
    assert set(require_quorum(cosigned, verifiers, 2)) == {"sifa.witness/a", "sifa.witness/b"}
    with pytest.raises(QuorumError):
        require_quorum(cosigned, verifiers, 3)
    checkpoint = Checkpoint.from_text(note.text)
    receipt = Receipt.build(origin=GM_ORIGIN, leaf_index=7, leaf_data=log.entry(7),
                            inclusion_proof=log.inclusion_proof(7, checkpoint.size), checkpoint=checkpoint,
                            checkpoint_note=cosigned, recorded_at="2026-11-22T08:00:00Z",
                            hasher=log.hasher)  # fmt: skip
    assert receipt.hash_algorithm == "sm3" and receipt.signature_algorithm == "sm2"
    (tmp_path / "r.json").write_text(receipt.to_json(), encoding="utf-8")
    for quorum, code in ((2, 0), (3, 1)):
        trust = {"logs": [{"key": signer.verifier.vkey(), "crypto": "gm"}], "quorum": quorum,
                 "witnesses": [{"key": v.vkey()} for v in verifiers]}  # fmt: skip
        (tmp_path / "t.json").write_text(json.dumps(trust), encoding="utf-8")
        capsys.readouterr()
        assert sifa_verify(["--receipt", str(tmp_path / "r.json"), "--trust", str(tmp_path / "t.json")]) == code
        assert ("witness_quorum_missing" in capsys.readouterr().err) == (code == 1)
