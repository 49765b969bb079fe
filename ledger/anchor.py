"""The anchor port: publish a court's signed checkpoint somewhere others hold, and check the record.

An anchor makes a checkpoint hard to take back: once others hold it, a later, different history of
the same log is evidence of a fork. sifa ships two implementations: the witness network (C2SP
tlog-witness, cosignatures carried in the checkpoint note itself), and an EVM chain adapter
(``api/chain.py``, ``ledger/evm.py``). An adapter for the SPC 司法链 implements the same two methods
(docs/anchoring.md).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

from ledger.cosignature import CosignatureVerifier, require_quorum
from ledger.errors import VerificationError
from ledger.note import Note


@dataclass(frozen=True)
class AnchorRecord:
    """Where and when a checkpoint was anchored. For the witness network: ``kind`` "witness",
    ``tx_id`` the checkpoint's size, ``height`` the number of cosignatures, ``times`` each witness's
    cosignature time; for a chain: the transaction id, the block height and the block time."""

    kind: str
    tx_id: str
    height: int
    times: dict[str, int] = field(default_factory=dict)


class Anchor(Protocol):
    def publish(self, checkpoint_note: Note) -> AnchorRecord:
        """Anchor the checkpoint; raises when it could not be anchored (retried by the caller)."""
        ...

    def verify(self, checkpoint_note: Note, record: AnchorRecord) -> None:
        """Raise a VerificationError unless the record anchors exactly this checkpoint."""
        ...


class WitnessAnchorCheck:
    """The verifier's half of the witness network anchor: the quorum of cosignatures in the note."""

    def __init__(self, witnesses: Sequence[CosignatureVerifier], quorum: int) -> None:
        self.witnesses, self.quorum = list(witnesses), quorum

    def record(self, checkpoint_note: Note, size: int) -> AnchorRecord:
        found = require_quorum(checkpoint_note, self.witnesses, self.quorum)
        return AnchorRecord("witness", str(size), len(found), dict(found))

    def verify(self, checkpoint_note: Note, record: AnchorRecord) -> None:
        found = require_quorum(checkpoint_note, self.witnesses, self.quorum)
        if record.kind != "witness" or any(found.get(name) != when for name, when in record.times.items()):
            raise VerificationError("the anchor record does not match the checkpoint's cosignatures")
