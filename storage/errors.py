"""Storage errors, translated at each adapter's boundary::

SifaError
└── StorageError
    ├── InvalidDigestError        a key that is not 64 lower-case hex digits
    ├── BlobNotFoundError
    ├── BlobConflictError         different bytes already under that hash
    │   └── BlobCorruptError      a stored blob no longer hashes to its name (quarantined)
    ├── DigestMismatchError       the bytes do not hash to the declared SHA-256
    ├── BlobLockedError           retention forbids what was asked
    ├── RangeError                a range outside the blob
    ├── StorageFullError          the backend has no room left (ENOSPC, EDQUOT, S3 "storage full")
    └── StorageUnavailableError   the backend does not answer
"""

from __future__ import annotations

from ledger.errors import SifaError


class StorageError(SifaError):
    code = "storage_error"


class InvalidDigestError(StorageError):
    code = "invalid_digest"


class BlobNotFoundError(StorageError):
    code = "blob_not_found"


class BlobConflictError(StorageError):
    code = "blob_conflict"


class BlobCorruptError(BlobConflictError):
    """The stored bytes no longer hash to the blob's name; it is quarantined until restored."""

    code = "blob_corrupt"


class DigestMismatchError(StorageError):
    code = "digest_mismatch"


class BlobLockedError(StorageError):
    code = "blob_locked"


class RangeError(StorageError):
    code = "range_not_satisfiable"


class StorageUnavailableError(StorageError):
    code = "storage_unavailable"


class StorageFullError(StorageError):
    """No room left for the bytes: nothing was stored."""

    code = "storage_full"
