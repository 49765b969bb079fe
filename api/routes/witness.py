"""The witness endpoint (C2SP tlog-witness): other courts' logs send checkpoints to be cosigned.

The protocol's own answers are kept exactly (text bodies, ``text/x.tlog.size`` on 409), so any
tlog-witness client can use a sifa node as a witness.
"""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool

from api.deps import Services, ServicesDep, roles
from ledger.errors import MalformedError, SifaError
from ledger.witness import MAX_REQUEST, Witness

router = APIRouter(prefix="/witness", tags=["witness"])


class NotAWitnessError(SifaError):
    code = "not_a_witness"


class WitnessKey(BaseModel):
    name: str
    key: str


ERROR_JSON = {"schema": {"$ref": "#/components/schemas/ErrorBody"}}  # api/errors.py, in every route's responses


def _text(description: str, media: str = "text/plain", *, or_json: bool = False) -> dict[str, object]:
    """A protocol answer (text); ``or_json``: sifa's own refusals before the protocol (JSON error)."""
    content: dict[str, object] = {media: {"schema": {"type": "string"}}}
    if or_json:
        content["application/json"] = ERROR_JSON
    return {"description": description, "content": content}


EXAMPLE = (
    "old 0\n\nsifa.court/1101-0105\n3\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n\n— sifa.court/1101-0105 "
    "Az3grlgtzPICa5OS8npVmf1Myq/5IZniMp+ZJurmRDeOoRDe4URYN7u5/Zhcyv2q1gGzGku9nTo+zyWE+xeMcTOAYQ8=\n"
)


def _witness(services: Services) -> Witness:
    if services.witness is None:
        raise NotAWitnessError("this node is not configured as a witness (SIFA_WITNESS_LOGS)")
    return services.witness


@router.get("", response_model=WitnessKey, openapi_extra=roles("public"))
def key(services: ServicesDep) -> WitnessKey:
    """This node's witness key (C2SP vkey, cosignature/v1), for trust files."""
    verifier = _witness(services).signer.verifier
    return WitnessKey(name=verifier.name, key=verifier.vkey())


@router.post(
    "/add-checkpoint",
    response_class=Response,
    openapi_extra={**roles("public"), "requestBody": {"required": True, "content": {
        "text/plain": {"schema": {"type": "string"}, "example": EXAMPLE}}}},
    responses={
        200: _text("cosignature lines (— name base64)"),
        400: _text("malformed request, or old size larger than the checkpoint's", or_json=True),
        403: _text("not signed by a trusted key of its log"),
        404: _text("a log this witness does not know, or this node is not a witness", or_json=True),
        409: _text("old size is not the latest cosigned size (body: that size), or a fork", "text/x.tlog.size"),
        422: _text("the consistency proof does not verify"),
    },
)  # fmt: skip
async def add_checkpoint(request: Request, services: ServicesDep) -> Response:
    """Cosign a checkpoint that extends what this witness has seen of its log (c2sp.org/tlog-witness)."""
    witness = _witness(services)
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_REQUEST:
            raise MalformedError("an add-checkpoint request has at most 64 KiB")
    answer = await run_in_threadpool(witness.add_checkpoint, bytes(body))
    return Response(answer.body, status_code=answer.status, media_type=answer.content_type)
