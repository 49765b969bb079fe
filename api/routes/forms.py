"""Uploads as a browser's form or ``curl -F`` sends them: ``multipart/form-data``, one or many files."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel, Field
from python_multipart.multipart import parse_options_header

from api.deps import CallerDep, ServicesDep, acting, readable, roles
from api.multipart import FilePart, form_files
from api.principals import STAFF
from api.routes.dossiers import (
    PayloadTooLargeError,
    UnsupportedMediaError,
    Uploaded,
    streamed_body,
)
from api.uploads import DocumentExistsError, FirstCopy, first_answer, uploaded_answer
from dossier.media import typed

router = APIRouter(prefix="/v1/dossiers", tags=["dossiers"])
FORM = {"multipart/form-data": {"schema": {
    "type": "object", "required": ["file"],
    "properties": {"file": {"type": "array", "items": {"type": "string", "format": "binary"}},
                   "doc_type": {"type": "string", "description": "declared type of the files after it"}}}}}  # fmt: skip


class RefusedPart(BaseModel):
    code: str = Field(examples=["media_type_mismatch"])
    message: str
    detail: Any = None
    after: int = Field(description="how many files were recorded before it: the form's files after them were not")


class UploadedForm(BaseModel):
    documents: list[Uploaded] = Field(description="the files recorded, in the form's order")
    refused: RefusedPart | None = Field(
        default=None,
        description="207 only: why the form was refused part-way; none of the files after those recorded was",
    )


@router.post("/{dossier}/documents/form", response_model=UploadedForm, status_code=201,
             responses={207: {"model": UploadedForm, "description": "refused part-way, after some files were "
                                                                   "recorded: those, and why (`refused`)"}},
             openapi_extra={**roles("clerk", "judge", "lawyer", "party"),
                            "requestBody": {"required": True, "content": FORM}})  # fmt: skip
async def upload_form(
    dossier: str, request: Request, response: Response, caller: CallerDep, services: ServicesDep
) -> UploadedForm:
    """Upload one or many files as ``multipart/form-data`` (``curl -F file=@起诉状.pdf``), streamed part by
    part, never held in memory; each is stored, typed by its content and catalogued as a raw upload is.
    At most ``SIFA_MAX_UPLOAD_BYTES`` for the whole form. A file already in the dossier is answered
    with its first document (``already_recorded``). A form refused part-way (a file whose content is not
    its type, a part too many) after files were recorded is answered 207 with those files and why."""
    kind, params = parse_options_header(request.headers.get("content-type", ""))
    boundary = params.get(b"boundary", b"")
    if kind != b"multipart/form-data" or not boundary:
        raise UnsupportedMediaError("send the form as multipart/form-data with its boundary")
    limit = services.settings.max_upload_bytes
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise PayloadTooLargeError(f"a form may have at most {limit} bytes")
    await asyncio.to_thread(lambda: readable(services, caller, dossier, copy=False))
    source = "court" if caller.role in STAFF else caller.role

    def store(part: FilePart, chunks: Iterator[bytes]) -> dict[str, Any]:
        found, stream = typed(chunks, part.media_type.split(";")[0].strip().lower())
        act = acting(caller)
        once = FirstCopy(dossier, caller.role, act.pop("guard"))
        try:
            result = services.dossiers.upload(dossier, once.wrap(stream), name=part.filename, media_type=found,
                                              source=source, doc_type=part.fields.get("doc_type") or None,
                                              guard=once.guard, **act)  # fmt: skip
        except DocumentExistsError as exc:
            return first_answer(services, dossier, exc)
        return uploaded_answer(dossier, {**result, "media_type": found})

    form = await streamed_body(
        request, limit, "a form", lambda chunks: form_files(chunks, boundary, store), holder=caller.id
    )
    documents = [Uploaded(**r) for r in form.results]
    if form.refused is None:
        return UploadedForm(documents=documents)
    response.status_code = 207  # some files recorded, then a refusal: both said
    e = form.refused
    refused = RefusedPart(code=e.code, message=e.diagnostics(), detail=e.detail or None, after=len(documents))
    return UploadedForm(documents=documents, refused=refused)
