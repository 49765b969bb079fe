"""Dossier errors::

SifaError
└── DossierError
    ├── DossierNotFoundError
    ├── DossierExistsError          a case number already has a dossier
    ├── DossierConflictError        optimistic concurrency: someone wrote first
    ├── DossierArchivedError        nothing is added to an archived dossier
    ├── UnknownCourtError
    ├── UnknownDocumentError
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


class UnknownCourtError(DossierError):
    code = "unknown_court"


class UnknownDocumentError(DossierError):
    code = "unknown_document"


class InvalidDossierInputError(DossierError):
    code = "invalid_input"


class EventStoreUnavailableError(DossierError):
    code = "database_unavailable"
