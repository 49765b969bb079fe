"""The public log: checkpoint, key, proofs, receipts by leaf. No credentials."""

from __future__ import annotations

import base64
from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.responses import PlainTextResponse
from pydantic import BaseModel, Field

from api.deps import ServicesDep, latest_checkpoint, roles
from api.errors import error_body
from ledger.errors import TreeSizeError
from ledger.suite import SUITES

PUBLIC = roles("public")
router = APIRouter(prefix="/v1/log", tags=["log"])

Size = Annotated[int, Query(ge=0, le=2**63 - 1, description="a tree size")]
Index = Annotated[int, Query(ge=0, le=2**63 - 1, description="a leaf index")]


class LogKey(BaseModel):
    origin: str = Field(examples=["sifa.court/1101-0105"])
    court: str = Field(examples=["1101-0105"])
    name: str = Field(examples=["北京市朝阳区人民法院"])
    verifier_key: str = Field(description="C2SP signed-note verifier key")
    hash: str = Field(default="sha256", examples=["sha256", "sm3"])
    signature: str = Field(default="ed25519", examples=["ed25519", "sm2"])
    crypto: str = Field(default="sha256", description="the log's suite: sha256, or gm (国密, docs/gm.md)")


class InclusionProof(BaseModel):
    leaf_index: int
    tree_size: int
    proof: list[str] = Field(description="base64 hashes, RFC 9162 order")


class ConsistencyProof(BaseModel):
    size1: int
    size2: int
    proof: list[str] = Field(description="base64 hashes, RFC 9162 order")


@router.get(
    "/checkpoint",
    response_class=PlainTextResponse,
    openapi_extra=PUBLIC,
    responses={200: {"content": {"text/plain": {}}, "description": "C2SP signed checkpoint"}},
)
def checkpoint(services: ServicesDep) -> PlainTextResponse:
    """The latest signed checkpoint (C2SP tlog-checkpoint in a signed note)."""
    return PlainTextResponse(latest_checkpoint(services)[1], media_type="text/plain; charset=utf-8")


@router.get("/key", response_model=LogKey, openapi_extra=PUBLIC)
def key(services: ServicesDep) -> LogKey:
    """The court's log key, for a verifier's trust file."""
    c = services.config
    suite = SUITES[c.crypto]
    return LogKey(origin=c.origin, court=c.court, name=c.name, verifier_key=services.signer.verifier.vkey(),
                  hash=suite.hash, signature=suite.signature, crypto=suite.name)  # fmt: skip


class Timestamp(BaseModel):
    size: int = Field(description="the tree size of the stamped checkpoint")
    checkpoint: str = Field(description="that checkpoint's signed note; the token stamps SHA-256 of its body")
    token: str = Field(description="RFC 3161 TimeStampToken, DER, base64")


@router.get("/timestamp", response_model=Timestamp, openapi_extra=PUBLIC,
            responses={404: {"description": "no token for a checkpoint of that size or larger"}})  # fmt: skip
def timestamp(services: ServicesDep, size: Annotated[int, Query(ge=0, le=2**63 - 1)] = 0) -> Timestamp:
    """The first RFC 3161 token for a checkpoint of at least ``size`` (default: the first one), with
    the checkpoint it stamps (docs/time.md)."""
    for stamped, token in services.log.store.timestamps(above=size - 1, limit=1):
        kept = services.log.store.checkpoint(stamped)
        if kept is not None:
            return Timestamp(size=stamped, checkpoint=kept[1], token=base64.b64encode(token).decode())
    raise TreeSizeError(f"no timestamp token for a checkpoint of size {size} or more yet")


class KeyRotation(BaseModel):
    index: int = Field(description="the leaf index of the LogKeyRotated leaf")
    leaf: str = Field(description="the leaf's bytes, base64")
    inclusion_proof: list[str] = Field(description="base64 hashes, RFC 9162 order, in the checkpoint")


class KeyHistory(BaseModel):
    checkpoint: str = Field(description="the latest signed checkpoint the rotations are proved in")
    entries: list[KeyRotation]


@router.get("/keys", response_model=KeyHistory, openapi_extra=PUBLIC)
def keys(services: ServicesDep) -> KeyHistory:
    """The log's key history: every key rotation, proved in the latest checkpoint (docs/keys.md).
    A verifier that pins the log's first key follows it to the key that signs now."""
    latest, text = latest_checkpoint(services)
    history = services.log.key_history(latest.size, text)
    return KeyHistory.model_validate(
        {"checkpoint": text, "entries": [] if history is None else history.to_dict()["entries"]}
    )


def _b64(hashes: list[bytes]) -> list[str]:
    return [base64.b64encode(h).decode() for h in hashes]


@router.get(
    "/proof/inclusion",
    response_model=InclusionProof,
    openapi_extra=PUBLIC,
    responses={404: {"description": "index or size outside the signed tree", "content": {"application/json": {
        "example": error_body("tree_size", "leaf index 9 is outside a tree of size 3")}}}},
)  # fmt: skip
def inclusion(index: Index, size: Size, services: ServicesDep) -> InclusionProof:
    """RFC 9162 inclusion proof of leaf ``index`` in the signed tree of ``size``."""
    _check_signed(size, services)
    return InclusionProof(leaf_index=index, tree_size=size, proof=_b64(services.log.inclusion_proof(index, size)))


@router.get("/proof/consistency", response_model=ConsistencyProof, openapi_extra=PUBLIC)
def consistency(
    services: ServicesDep,
    size1: Annotated[int, Query(alias="from", ge=1, le=2**63 - 1)],
    size2: Annotated[int, Query(alias="to", ge=1, le=2**63 - 1)],
) -> ConsistencyProof:
    """RFC 9162 consistency proof from tree size ``from`` to ``to``."""
    _check_signed(size2, services)
    if size1 > size2:
        raise TreeSizeError(f"size {size1} is larger than size {size2}")
    return ConsistencyProof(size1=size1, size2=size2, proof=_b64(services.log.consistency_proof(size1, size2)))


def _check_signed(size: int, services: ServicesDep) -> None:
    # Only sizes a checkpoint has been signed for are public.
    latest, _ = latest_checkpoint(services)
    if size > latest.size:
        raise TreeSizeError(f"tree size {size} is beyond the latest checkpoint ({latest.size})")
