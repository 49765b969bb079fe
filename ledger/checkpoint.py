"""C2SP tlog-checkpoint: the signed statement of a log's size and root.

    SPEC: c2sp.org/tlog-checkpoint
    <origin>\n<tree size, decimal>\n<root hash, base64>\n[<extension line>\n]*

The body is the text of a C2SP signed note; the log's key name is its origin.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Sequence
from dataclasses import dataclass

from ledger.errors import MalformedCheckpointError
from ledger.note import Note, Signer, Verifier, sign_note, verified_by

_SIZE = re.compile(r"0|[1-9][0-9]{0,19}")
MAX_SIZE = (1 << 64) - 1


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """A parsed checkpoint body; ``from_text`` is the only way in from outside."""

    origin: str
    size: int
    root_hash: bytes
    extensions: tuple[str, ...] = ()

    def to_text(self) -> str:
        lines = [self.origin, str(self.size), base64.b64encode(self.root_hash).decode(), *self.extensions]
        return "".join(line + "\n" for line in lines)

    @classmethod
    def from_text(cls, text: str, hash_size: int = 32) -> Checkpoint:
        """Parse a checkpoint body. Raises MalformedCheckpointError."""
        if not text.endswith("\n"):
            raise MalformedCheckpointError("checkpoint must end with a newline")
        lines = text[:-1].split("\n")
        if len(lines) < 3:
            raise MalformedCheckpointError("checkpoint needs origin, size and root lines")
        origin, size_line, root_line, *ext = lines
        if not origin or not origin.isprintable():
            raise MalformedCheckpointError("checkpoint origin line is empty or not printable")
        if not _SIZE.fullmatch(size_line) or int(size_line) > MAX_SIZE:
            raise MalformedCheckpointError(f"checkpoint size {size_line!r} is not a decimal uint64")
        try:
            root = base64.b64decode(root_line.encode("ascii"), validate=True)
        except (binascii.Error, UnicodeEncodeError) as exc:
            raise MalformedCheckpointError("checkpoint root hash is not standard base64") from exc
        if len(root) != hash_size:
            raise MalformedCheckpointError(f"checkpoint root hash has {len(root)} bytes, not {hash_size}")
        # SPEC: "extension lines … MUST be non-empty"
        if any(not line or not line.isprintable() for line in ext):
            raise MalformedCheckpointError("checkpoint has an empty or unprintable extension line")
        return cls(origin, int(size_line), root, tuple(ext))


def sign_checkpoint(checkpoint: Checkpoint, signer: Signer) -> Note:
    """The checkpoint as a note signed by the log's key (named as the origin)."""
    if signer.name != checkpoint.origin:
        raise MalformedCheckpointError(
            f"the log key is named {signer.name!r} but the checkpoint origin is {checkpoint.origin!r}"
        )
    return sign_note(checkpoint.to_text(), [signer])


def open_checkpoint(note_text: str | bytes, log_keys: Sequence[Verifier]) -> tuple[Checkpoint, Note]:
    """Parse a signed checkpoint and check the log's signature.

    Only a key whose name is the checkpoint's origin counts as the log's key.
    Raises MalformedNoteError / MalformedCheckpointError for bad text, and
    CheckpointSignatureError / UnknownKeyError when the log did not sign it.
    """
    note = Note.from_text(note_text)
    checkpoint = Checkpoint.from_text(note.text)
    verified_by(note, [k for k in log_keys if k.name == checkpoint.origin])
    return checkpoint, note
