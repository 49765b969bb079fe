"""Signed notes and checkpoints: the Go reference vector, round trips, refusals."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest

from ledger.checkpoint import Checkpoint, open_checkpoint, sign_checkpoint
from ledger.errors import (
    CheckpointSignatureError,
    MalformedCheckpointError,
    MalformedNoteError,
    UnknownKeyError,
)
from ledger.note import Ed25519Signer, Ed25519Verifier, Note, add_signatures, sign_note, verified_by

GO = json.loads((Path(__file__).parent / "vectors" / "signed-note" / "go-sumdb-note.json").read_text())
ROOT = bytes(range(32))


def test_go_reference_keys_and_signature_byte_for_byte() -> None:
    verifier = Ed25519Verifier.from_vkey(GO["vkey"])
    signer = Ed25519Signer.from_skey(GO["skey"])
    assert verifier.key_id.hex() == "c74f20a3"
    assert signer.verifier.vkey() == GO["vkey"]
    assert signer.skey() == GO["skey"]
    note = sign_note(GO["text"], [signer])
    # Ed25519 is deterministic: our note equals the reference's to the byte.
    assert note.to_text() == GO["text"] + "\n" + GO["signature_line"]
    parsed = Note.from_text(GO["text"] + "\n" + GO["signature_line"])
    assert verified_by(parsed, [verifier]) == [verifier]


def test_go_note_with_changed_text_is_refused() -> None:
    verifier = Ed25519Verifier.from_vkey(GO["vkey"])
    forged = Note.from_text(GO["text"].replace("cryptography", "cryptographY") + "\n" + GO["signature_line"])
    with pytest.raises(CheckpointSignatureError):
        verified_by(forged, [verifier])


@pytest.mark.parametrize(
    "vkey",
    [
        "PeterNeumann+c74f20a4+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",  # wrong key id
        "PeterNeumann+c74f20a3+AhpcAAcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",  # wrong type byte
        "PeterNeumann+c74f20a3",
        "Peter Neumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
        "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10T!",
    ],
)
def test_bad_verifier_keys_refused(vkey: str) -> None:
    with pytest.raises(MalformedNoteError):
        Ed25519Verifier.from_vkey(vkey)


def test_checkpoint_round_trip_with_extensions_and_chinese_origin() -> None:
    cp = Checkpoint("sifa.court/1101-0105/北京市朝阳区人民法院", 42, ROOT, ("ext one", "时间 2026"))
    text = cp.to_text()
    assert text == f"{cp.origin}\n42\n{base64.b64encode(ROOT).decode()}\next one\n时间 2026\n"
    assert Checkpoint.from_text(text) == cp


@pytest.mark.parametrize(
    "text",
    [
        "origin\n42\n" + base64.b64encode(ROOT).decode(),  # no final newline
        "origin\n42\n",
        "\n42\n" + base64.b64encode(ROOT).decode() + "\n",
        "origin\n042\n" + base64.b64encode(ROOT).decode() + "\n",
        "origin\n-1\n" + base64.b64encode(ROOT).decode() + "\n",
        "origin\n18446744073709551616\n" + base64.b64encode(ROOT).decode() + "\n",
        "origin\n42\n" + base64.b64encode(ROOT[:31]).decode() + "\n",
        "origin\n42\nnot base64!\n",
        "origin\n42\n" + base64.b64encode(ROOT).decode() + "\n\n",  # empty extension line
    ],
)
def test_malformed_checkpoints_refused(text: str) -> None:
    with pytest.raises(MalformedCheckpointError):
        Checkpoint.from_text(text)


def _log_key() -> Ed25519Signer:
    return Ed25519Signer("sifa.court/1101-0105", bytes(32))


def test_signed_checkpoint_round_trip_and_open() -> None:
    signer = _log_key()
    cp = Checkpoint(signer.name, 7, ROOT)
    note = sign_checkpoint(cp, signer)
    opened, parsed = open_checkpoint(note.to_text(), [signer.verifier])
    assert opened == cp and parsed == note
    assert Note.from_text(note.to_text().encode()) == note


def test_unknown_key_and_wrong_signature_refused() -> None:
    signer = _log_key()
    note = sign_checkpoint(Checkpoint(signer.name, 7, ROOT), signer).to_text()
    stranger = Ed25519Signer(signer.name, bytes([1]) * 32)
    with pytest.raises(UnknownKeyError):
        open_checkpoint(note, [stranger.verifier])
    # The log's key signing a different note: signature over another text.
    other = sign_checkpoint(Checkpoint(signer.name, 8, ROOT), signer)
    spliced = Checkpoint(signer.name, 7, ROOT).to_text() + "\n" + other.signatures[0].line()
    with pytest.raises(CheckpointSignatureError) as info:
        open_checkpoint(spliced, [signer.verifier])
    assert not isinstance(info.value, UnknownKeyError)
    # A key named otherwise than the origin is not the log's key.
    other_name = Ed25519Signer("someone.else", bytes(32))
    with pytest.raises(UnknownKeyError):
        open_checkpoint(
            sign_note(Checkpoint(signer.name, 7, ROOT).to_text(), [other_name]).to_text(), [other_name.verifier]
        )


def test_missing_signature_refused() -> None:
    with pytest.raises(MalformedNoteError):
        open_checkpoint(Checkpoint("o", 1, ROOT).to_text(), [])


@pytest.mark.parametrize(
    "note",
    [
        "text\n\n— name AAAA\n",  # signature shorter than a key id + signature
        "text\n\n- name AAAAAAAAAAAA\n",  # hyphen, not em dash
        "text\n\n— name AAAAAAAAAAAA",  # no final newline
        "text\n\n— na me AAAAAAAAAAAA\n",
        "te\x01xt\n\n— name AAAAAAAAAAAA\n",
        "text\n",
        "text\n\n" + "— name AAAAAAAAAAAA\n" * 101,
    ],
)
def test_malformed_notes_refused(note: str) -> None:
    with pytest.raises(MalformedNoteError):
        Note.from_text(note)


def test_non_utf8_note_refused() -> None:
    with pytest.raises(MalformedNoteError):
        Note.from_text(b"\xff\xfe\n\n\xe2\x80\x94 name AAAAAAAAAAAA\n")


def test_add_signatures_keeps_one_line_per_key() -> None:
    a, b = Ed25519Signer("a", bytes(32)), Ed25519Signer("b", bytes([2]) * 32)
    note = sign_note("hello\n", [a])
    both = add_signatures(note, sign_note("hello\n", [b, a]).signatures)
    assert [s.name for s in both.signatures] == ["a", "b"]
    assert verified_by(Note.from_text(both.to_text()), [a.verifier, b.verifier]) == [a.verifier, b.verifier]
