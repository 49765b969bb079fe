"""One JSON error shape ``{code, message, detail}`` and the table mapping errors to statuses."""

from __future__ import annotations

import logging
from typing import Any

from eventsourcing.persistence import MapperDeserialisationError, PersistenceError
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect

from api.edge import BodyTimeoutError, allowed
from api.multipart import MalformedFormError
from api.peers import (
    InsecurePeerUrlError,
    PeerCertificateError,
    PeerRefusedError,
    PeersNotConfiguredError,
    PeerUnavailableError,
)
from api.principals import AuthError, ForbiddenError, LastAdministratorError, PrincipalNotFoundError
from api.routes.dossiers import HeaderNotAsciiError, PayloadTooLargeError, UnsupportedMediaError
from api.routes.page import AssetNotFoundError
from api.routes.witness import NotAWitnessError
from api.streaming import TooManyUploadsError
from dossier.certificate import CertificateFontMissingError
from dossier.errors import (
    DossierArchivedError,
    DossierConflictError,
    DossierExistsError,
    DossierNotFoundError,
    EventStoreUnavailableError,
    InspectionFailedError,
    InvalidDossierInputError,
    NotSealedError,
    UnknownCourtError,
    UnknownDocumentError,
    UnknownFileError,
    WrongCourtError,
)
from dossier.media import MediaTypeMismatchError
from ledger.errors import (
    LeafTooLargeError,
    MalformedError,
    SifaError,
    TreeSizeError,
    TreeStoreUnavailableError,
    VerificationError,
)
from storage.errors import (
    BlobConflictError,
    BlobCorruptError,
    BlobLockedError,
    BlobNotFoundError,
    DigestMismatchError,
    InvalidDigestError,
    RangeError,
    StorageFullError,
    StorageUnavailableError,
)

log = logging.getLogger("sifa.api")

# Most specific first: the first matching class decides.
STATUS: list[tuple[type[SifaError], int]] = [
    (AuthError, 401),
    (ForbiddenError, 403),
    (PayloadTooLargeError, 413),
    (BodyTimeoutError, 408),
    (TooManyUploadsError, 429),
    (LeafTooLargeError, 413),
    (HeaderNotAsciiError, 400),
    (UnsupportedMediaError, 415),
    (MediaTypeMismatchError, 415),
    (DossierNotFoundError, 404),
    (PrincipalNotFoundError, 404),
    (NotAWitnessError, 404),
    (AssetNotFoundError, 404),
    (UnknownDocumentError, 404),
    (UnknownFileError, 404),
    (BlobNotFoundError, 404),
    (LastAdministratorError, 409),
    (DossierExistsError, 409),
    (DossierConflictError, 409),
    (DossierArchivedError, 409),
    (BlobCorruptError, 503),
    (BlobConflictError, 409),
    (BlobLockedError, 409),
    (UnknownCourtError, 422),
    (WrongCourtError, 422),
    (InvalidDossierInputError, 422),
    (DigestMismatchError, 422),
    (InvalidDigestError, 400),
    (RangeError, 416),
    (InspectionFailedError, 422),
    (PeersNotConfiguredError, 409),
    (InsecurePeerUrlError, 409),
    (NotSealedError, 503),
    (PeerUnavailableError, 503),
    (PeerRefusedError, 502),
    (PeerCertificateError, 502),
    (CertificateFontMissingError, 503),
    (StorageUnavailableError, 503),
    (StorageFullError, 503),
    (EventStoreUnavailableError, 503),
    (TreeStoreUnavailableError, 503),
    (TreeSizeError, 404),
    (MalformedFormError, 400),
    (MalformedError, 400),
    (VerificationError, 422),
    (SifaError, 400),
]


class ErrorBody(BaseModel):
    """Every error the API returns: a machine-readable code, a sentence, optional detail."""

    code: str = Field(examples=["dossier_not_found"])
    message: str = Field(examples=["no dossier 6454039c-0791-518e-bc56-316fcd078efb"])
    detail: Any = None


_ERROR = {"model": ErrorBody}
# Documented on every route, so clients (and schemathesis) know every status sifa answers with.
RESPONSES: dict[int | str, dict[str, Any]] = {
    400: {**_ERROR, "description": "malformed input"},
    401: {**_ERROR, "description": "no or unknown credential"},
    403: {**_ERROR, "description": "the role or the dossier is not open to the caller"},
    404: {**_ERROR, "description": "no such dossier, file, leaf or size"},
    408: {**_ERROR, "description": "the request's body stopped arriving"},
    409: {**_ERROR, "description": "conflicts with what is recorded (exists, archived, changed, last administrator)"},
    413: {
        **_ERROR,
        "description": "a body over its limit (uploads, packages, any other body), or a record too large "
        "for one leaf of the log",
    },
    415: {**_ERROR, "description": "unsupported media type"},
    416: {**_ERROR, "description": "range outside the file"},
    422: {**_ERROR, "description": "input that does not fit the rules"},
    429: {**_ERROR, "description": "too many uploads in flight for this credential (Retry-After)"},
    503: {**_ERROR, "description": "a backend (database, S3) is unavailable or full, or a stored file is corrupt"},
}


def error_body(code: str, message: str, detail: object = None) -> dict[str, object]:
    return {"code": code, "message": message, "detail": detail}


def error_response(exc: SifaError | PersistenceError | MapperDeserialisationError) -> JSONResponse:
    """The answer to a refusal: its status from the table, the one error body."""
    if isinstance(exc, MapperDeserialisationError):
        # A stored event (or credential) that does not decrypt or decode: a wrong events.key, or a damaged
        # row. Not the caller's fault; sifa audit names the row (docs/errors.md).
        message = "a stored event does not decrypt or decode; the operator must check events.key (sifa audit)"
        return JSONResponse(error_body("event_unreadable", message), 503)
    if isinstance(exc, PersistenceError):
        # Credentials live in their own event-sourced store; an outage there is the same 503.
        return JSONResponse(error_body("database_unavailable", "the database does not answer; try again"), 503)
    status = next(s for cls, s in STATUS if isinstance(exc, cls))
    retry = getattr(exc, "retry_after", None)  # a refusal that passes: say when to ask again
    return JSONResponse(error_body(exc.code, exc.diagnostics(), exc.detail or None), status_code=status,
                        headers={"Retry-After": str(retry)} if retry is not None else None)  # fmt: skip


def install(app: FastAPI) -> None:
    @app.exception_handler(SifaError)
    async def sifa_error(_: Request, exc: SifaError) -> JSONResponse:
        return error_response(exc)

    @app.exception_handler(RequestValidationError)
    async def invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        detail = [{"loc": list(e.get("loc", ())), "msg": e.get("msg", "")} for e in exc.errors()]
        return JSONResponse(error_body("invalid_request", "the request does not match the API", detail), 422)

    @app.exception_handler(PersistenceError)
    async def database_down(_: Request, exc: PersistenceError) -> JSONResponse:
        return error_response(exc)

    @app.exception_handler(MapperDeserialisationError)
    async def event_unreadable(_: Request, exc: MapperDeserialisationError) -> JSONResponse:
        return error_response(exc)

    @app.exception_handler(UnicodeDecodeError)
    async def bad_text(_: Request, exc: UnicodeDecodeError) -> JSONResponse:
        return JSONResponse(error_body("invalid_encoding", "a header or name is not valid UTF-8"), 400)

    @app.exception_handler(ClientDisconnect)
    async def gone(request: Request, _: ClientDisconnect) -> Response:
        # Nothing was recorded (a cut-off body never completes an upload) and no one is left to answer:
        # one line for the operator, no traceback.
        log.warning("a client disconnected in the middle of its request's body: %s %s", request.method,
                    request.url.path)  # fmt: skip
        return Response(status_code=400)

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> JSONResponse:
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        # Keep the exception's headers: a 405 must say which methods are allowed (RFC 9110 Allow) —
        # all of them, also those of routes of the same path in another router (Starlette names one's).
        headers = exc.headers
        if exc.status_code == 405:
            headers = {**(headers or {}), "Allow": ", ".join(sorted(_allowed(request)))}
        return JSONResponse(error_body(code, str(exc.detail)), exc.status_code, headers=headers)


def _allowed(request: Request) -> set[str]:
    return allowed(request.app, request.url.path)
