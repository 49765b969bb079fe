"""Dossier errors::

SifaError
└── DossierError
    ├── DossierNotFoundError
    ├── DossierExistsError          a case number already has a dossier
    ├── DossierConflictError        optimistic concurrency: someone wrote first
    ├── DossierArchivedError        nothing is added to an archived dossier
    │   └── DossierReceivedError    nor to a received copy of another court's dossier
    ├── NotSealedError              the latest events are not in a checkpoint yet
    ├── InspectionFailedError       四性检测 failed: archiving is blocked, the report says why
    ├── UnknownCourtError
    ├── WrongCourtError             a case number whose court 代字 is another court's
    ├── UnknownDocumentError
    ├── UnknownFileError            no file of that SHA-256 in the dossier (for the caller)
    └── InvalidDossierInputError    malformed case number, empty reason, …
"""

from __future__ import annotations

from ledger.errors import SifaError


class DossierError(SifaError):
    code = "dossier_error"


class DossierNotFoundError(DossierError):
    code = "dossier_not_found"


class DossierExistsError(DossierError):
    code = "dossier_exists"


class DossierConflictError(DossierError):
    code = "dossier_conflict"


class DossierArchivedError(DossierError):
    code = "dossier_archived"


class DossierReceivedError(DossierArchivedError):
    """A received dossier is a verified copy of another court's: nothing is added to it here."""

    code = "dossier_received"


class NotSealedError(DossierError):
    """What was asked for needs the dossier's latest events in a signed checkpoint; not yet."""

    code = "not_sealed_yet"
    retry_after = 1  # seconds: the answer's Retry-After (a sequencer seals within about that)


class UnknownFileError(DossierError):
    """No file of that SHA-256 in the dossier — or none the caller may see (a 副卷 file, for a lawyer)."""

    code = "unknown_file"


class InspectionFailedError(DossierError):
    """The four-property check (四性检测) found problems; the report is the detail."""

    code = "archive_check_failed"


class UnknownCourtError(DossierError):
    code = "unknown_court"


class WrongCourtError(DossierError):
    """A case number whose court 代字 names another court than this node's."""

    code = "wrong_court"


class UnknownDocumentError(DossierError):
    code = "unknown_document"


class InvalidDossierInputError(DossierError):
    code = "invalid_input"


class EventStoreUnavailableError(DossierError):
    code = "database_unavailable"
