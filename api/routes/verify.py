"""Public verification: is this SHA-256 recorded here? (The file itself never leaves its owner.)

The answer holds only what the public leaf holds — origin, index, type, time, proof — and the leaf
itself (a ``sifa-leaf/2`` leaf: nothing of the case in clear, docs/privacy.md). There is no lookup
by case number: parties follow their case with their credential.
"""

from __future__ import annotations

import base64

from fastapi import APIRouter
from pydantic import BaseModel, Field

from api.deps import ServicesDep, roles
from evidence.disclosure import read_leaf

router = APIRouter(prefix="/v1/verify", tags=["verification"])


class Query(BaseModel):
    sha256: str = Field(
        pattern="^[0-9a-f]{64}$", examples=["9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"]
    )


class Record(BaseModel):
    log: str
    leaf_index: int
    record_id: str = Field(description="存证编号")
    recorded_at: str = Field(description="存证时间")
    item: str = Field(description="what kind of record names the file, e.g. DocumentUploaded")
    leaf_data: str = Field(
        description="the leaf's bytes, base64 (RFC 8785 JSON; sifa-leaf/2: case data only as commitments)"
    )
    inclusion_proof: list[str] | None = Field(
        description="RFC 9162 inclusion proof (base64) against the answer's checkpoint; null while not yet covered"
    )


class Answer(BaseModel):
    sha256: str
    recorded: bool
    records: list[Record]
    checkpoint: str = Field(description="the latest signed checkpoint, to fetch proofs against")


@router.post("", response_model=Answer, openapi_extra=roles("public"))
def verify(body: Query, services: ServicesDep) -> Answer:
    """Which records name a file with this SHA-256: when, in which log, at which leaf — nothing of the case."""
    kept = services.log.store.checkpoint()
    size = kept[0] if kept else 0
    records = []
    for index in services.log.find(f"sha256:{body.sha256}"):
        data = services.log.entry(index)
        leaf = read_leaf(data)
        proof = None  # not yet in a signed checkpoint
        if index < size:
            proof = [base64.b64encode(h).decode() for h in services.log.inclusion_proof(index, size)]
        origin = leaf.origin or services.config.origin
        records.append(Record(log=origin, leaf_index=index, record_id=f"{origin}#{index}", recorded_at=leaf.time or "",
                              item=leaf.type or "", leaf_data=base64.b64encode(data).decode(),
                              inclusion_proof=proof))  # fmt: skip
    return Answer(sha256=body.sha256, recorded=bool(records), records=records, checkpoint=kept[1] if kept else "")
