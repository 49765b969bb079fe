"""Public verification: is this SHA-256 recorded here? (The file itself never leaves its owner.)"""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel, Field

from api.deps import ServicesDep, roles
from dossier.envelope import read_leaf

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


class Answer(BaseModel):
    sha256: str
    recorded: bool
    records: list[Record]
    checkpoint: str = Field(description="the latest signed checkpoint, to fetch proofs against")


@router.post("", response_model=Answer, openapi_extra=roles("public"))
def verify(body: Query, services: ServicesDep) -> Answer:
    """Which records name a file with this SHA-256: when, in which log, at which leaf — no party data."""
    records = []
    for index in services.log.find(f"sha256:{body.sha256}"):
        leaf = read_leaf(services.log.entry(index))
        records.append(Record(log=leaf["origin"], leaf_index=index, record_id=f"{leaf['origin']}#{index}",
                              recorded_at=leaf["time"], item=leaf["type"]))  # fmt: skip
    kept = services.log.store.checkpoint()
    return Answer(sha256=body.sha256, recorded=bool(records), records=records, checkpoint=kept[1] if kept else "")
