"""Response models shared by more than one router: what the OpenAPI document says a receipt and a
四性检测 report look like. The documents themselves are made in ``ledger/receipt.py`` and
``dossier/inspection.py``; these only describe them (every field, by its name on the wire)."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from dossier.transfer import Imported


class ReceiptLog(BaseModel):
    origin: str = Field(examples=["sifa.court/1101-0105"])
    hash: str = Field(examples=["sha256"])
    signature: str = Field(examples=["ed25519"])


class ReceiptTerms(BaseModel):
    """The terms a Chinese court reader expects, each checked by the verifier against the signed bytes."""

    model_config = ConfigDict(populate_by_name=True)

    record_id: str = Field(alias="存证编号", description="origin#leaf index")
    height: int = Field(alias="区块高度", description="the checkpoint's tree size")
    leaf_hash: str = Field(alias="交易哈希", description="the leaf hash, hex")
    recorded_at: str = Field(alias="存证时间", description="UTC, RFC 3339")


class ReceiptDocument(BaseModel):
    """存证凭证, ``sifa-receipt/1`` or ``/2`` (docs/receipt.md): the leaf, its inclusion proof, the cosigned
    checkpoint; a ``/2`` receipt also the disclosures its holder may see. Parts a later format adds
    pass through unchanged."""

    model_config = ConfigDict(extra="allow")

    format: str = Field(examples=["sifa-receipt/2"])
    log: ReceiptLog
    leaf_index: int
    tree_size: int
    leaf_data: str = Field(description="the leaf's bytes, base64 (RFC 8785 JSON)")
    inclusion_proof: list[str] = Field(description="base64 hashes, RFC 9162 order")
    checkpoint: str = Field(description="the C2SP signed checkpoint, with witness cosignatures")
    terms: ReceiptTerms
    disclosures: list[dict[str, Any]] | None = Field(
        default=None, description="sifa-receipt/2: path, value and salt of each field disclosed (docs/privacy.md)"
    )


class InspectedProperty(BaseModel):
    passed: bool
    checks: list[str]
    findings: list[dict[str, str]] = Field(description="item and problem of each finding")


class InspectionReport(BaseModel):
    """四性检测 report (docs/dossier.md): 真实性, 完整性, 可用性, 安全性."""

    format: str
    dossier: str
    case_number: str
    version: int
    at: str = Field(description="UTC, RFC 3339")
    passed: bool
    properties: dict[str, InspectedProperty]


def receipt_document(receipt: Any) -> ReceiptDocument:
    """A ``ledger.receipt.Receipt``'s JSON, as the model."""
    return ReceiptDocument.model_validate(receipt.to_dict())


class ImportedDossier(BaseModel):
    dossier: str
    case_number: str
    from_court: str
    events: int = Field(description="events of the original dossier, each verified")
    files: int
    bytes: int
    version: int = Field(description="the received dossier's version in this court's log")


def imported_dossier(i: Imported) -> ImportedDossier:
    """What an import answers (the API, ``sifa retrieve``)."""
    return ImportedDossier(**{**asdict(i), "dossier": str(i.dossier)})
