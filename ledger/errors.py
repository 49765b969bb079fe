"""The project's error tree.

Every error sifa raises on purpose derives from :class:`SifaError`, carries a
machine-readable ``code`` and a one-sentence ``diagnostics()`` for people::

    SifaError
    ├── LedgerError                     (ledger/)
    │   ├── MalformedError              bytes or text that do not parse
    │   │   ├── MalformedNoteError
    │   │   ├── MalformedCheckpointError
    │   │   └── MalformedReceiptError
    │   ├── TreeSizeError               index or size outside the tree
    │   ├── LeafTooLargeError
    │   ├── TreeStoreError              the tree store's backend failed
    │   │   └── TreeStoreUnavailableError
    │   └── VerificationError           a check that could pass did not
    │       ├── InclusionProofError
    │       ├── ConsistencyProofError
    │       ├── CheckpointSignatureError
    │       │   └── UnknownKeyError     no signature by a trusted key
    │       └── ReceiptMismatchError    receipt fields disagree
    └── (branches of the other packages, e.g. storage.StorageError)
"""

from __future__ import annotations


class SifaError(Exception):
    """Base of every error sifa raises on purpose."""

    code = "sifa_error"

    def __init__(self, message: str, **detail: object) -> None:
        super().__init__(message)
        self.message = message
        self.detail = detail

    def diagnostics(self) -> str:
        """One readable sentence for a person; no traceback, no internals."""
        return self.message


class LedgerError(SifaError):
    code = "ledger_error"


class MalformedError(LedgerError):
    code = "malformed"


class MalformedNoteError(MalformedError):
    code = "malformed_note"


class MalformedCheckpointError(MalformedError):
    code = "malformed_checkpoint"


class MalformedReceiptError(MalformedError):
    code = "malformed_receipt"


class TreeSizeError(LedgerError):
    code = "tree_size"


class LeafTooLargeError(LedgerError):
    code = "leaf_too_large"


class TreeStoreError(LedgerError):
    code = "tree_store_error"


class TreeStoreUnavailableError(TreeStoreError):
    code = "tree_store_unavailable"


class VerificationError(LedgerError):
    code = "verification_failed"


class InclusionProofError(VerificationError):
    code = "inclusion_proof_invalid"


class ConsistencyProofError(VerificationError):
    code = "consistency_proof_invalid"


class CheckpointSignatureError(VerificationError):
    code = "checkpoint_signature_invalid"


class UnknownKeyError(CheckpointSignatureError):
    code = "checkpoint_unknown_key"


class ReceiptMismatchError(VerificationError):
    code = "receipt_mismatch"
