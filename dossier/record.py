"""A dossier as read: everything recorded, each record with its event, leaf and receipt.

``recorded`` walks the dossier's events once and gives the sections a clerk, judge, lawyer or
party reads: documents, catalogue (卷内目录), evidence, services (with their 送达回执), contracts,
transfers, where it was received from, its archive state, and a timeline of every event. Each
record names the version of the event that recorded it, the leaf that event became in the
court's log (``None`` until sealed) and its receipt's path. A lawyer or party (``names=False``)
sees roles, not the names of the other people named; events of the 副卷's documents are left out
for them (``hidden``). Pure: events and a leaf lookup in, a dict out.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from typing import Any

from dossier.fields import utc

# Friendly names for the timeline, in English (a screen shows its own words beside them).
EVENT_NAMES = {
    "Opened": "Dossier opened",
    "DocumentUploaded": "Document uploaded",
    "Catalogued": "Catalogued",
    "DocumentWithdrawn": "Document withdrawn",
    "EvidenceSubmitted": "Evidence submitted",
    "ServiceRecorded": "Service recorded",
    "ContractRegistered": "Contract registered",
    "Transferred": "Dossier transferred",
    "Received": "Dossier received",
    "DocumentReceived": "Document received",
    "Archived": "Dossier archived",
    "Retrieved": "Dossier read",
    "FirstInstanceLinked": "First instance linked",
}


def friendly(event_type: str) -> str:
    """An event type as a person reads it: ``DocumentUploaded`` -> ``Document uploaded``."""
    if event_type in EVENT_NAMES:
        return EVENT_NAMES[event_type]
    words = "".join(f" {c.lower()}" if c.isupper() else c for c in event_type).strip()
    return words[:1].upper() + words[1:]


def _person(record: dict[str, Any], names: bool) -> dict[str, Any]:
    shown = {"role": record.get("role"), "kind": record.get("kind")}
    if names and record.get("name") is not None:
        shown["name"] = record["name"]
    return shown


def original_times(lines: Iterable[bytes]) -> dict[int, str]:
    """Leaf index -> the UTC time (存证时间) its leaf states, from a received dossier's kept events
    (the lower court's leaves, one JSON line each, as its package carried them; verified on import)."""
    out: dict[int, str] = {}
    for line in lines:
        try:
            doc = json.loads(line)
            leaf = json.loads(doc["leaf"])
        except (ValueError, KeyError, TypeError):
            continue  # a withheld event carries no leaf
        if isinstance(leaf, dict) and isinstance(leaf.get("time"), str):
            out[int(doc["leaf_index"])] = leaf["time"]
    return out


def recorded(
    dossier: str,
    events: Iterable[Any],
    leaf_of: Callable[[int], int | None],
    *,
    hidden: set[str],
    names: bool,
    files: set[str],
    originals: dict[int, str] | None = None,
) -> dict[str, Any]:
    """The sections of dossier ``dossier`` from its ``events`` (oldest first). ``leaf_of(version)``: the
    leaf index of that event, if sealed; ``files``: SHA-256 of the files the reader may download;
    ``originals``: for a received dossier, the 存证时间 of the lower court's leaves (``original_times``):
    each received document then shows its original court, leaf and 存证时间 beside its import."""
    base = f"/v1/dossiers/{dossier}"
    out: dict[str, Any] = {"documents": {}, "catalogue": [], "evidence": [], "services": [], "contracts": [],
                           "transfers": [], "received_from": None, "archive": None, "first_instance": None,
                           "timeline": []}  # fmt: skip
    documents: dict[str, dict[str, Any]] = {}
    catalogue: dict[str, dict[str, Any]] = {}
    for e in events:
        kind, body = type(e).__name__, vars(e)
        if body.get("document_id") in hidden:
            continue
        version = int(e.originator_version)
        leaf = leaf_of(version)
        mark = {"version": version, "recorded_at": utc(e.timestamp), "leaf_index": leaf,
                "receipt": f"{base}/receipts/{version}"}  # fmt: skip
        out["timeline"].append({"type": kind, "name": friendly(kind), **mark})
        if kind in ("DocumentUploaded", "DocumentReceived"):
            doc = {k: body.get(k) for k in ("document_id", "sha256", "size", "name", "media_type", "source",
                                            "doc_type", "pages")}  # fmt: skip
            doc["withdrawal"] = None
            if kind == "DocumentReceived":
                doc["original_leaf"] = body.get("original_leaf")
                source = out["received_from"] or {}
                doc["original"] = {"court": source.get("from_court"), "origin": source.get("from_origin"),
                                   "leaf_index": body.get("original_leaf"),
                                   "recorded_at": (originals or {}).get(body.get("original_leaf", -1)),
                                   "imported_at": mark["recorded_at"]}  # fmt: skip
            doc["download"] = f"{base}/files/{body['sha256']}"
            doc["file_receipt"] = f"{base}/files/{body['sha256']}/receipt"
            documents[body["document_id"]] = {**doc, **mark}
            if kind == "DocumentReceived" and body.get("catalogue"):
                catalogue[body["document_id"]] = {"document_id": body["document_id"], **body["catalogue"], **mark}
        elif kind == "Catalogued":
            entry = {k: body.get(k) for k in ("document_id", "volume", "category", "order", "title", "pages", "auto")}
            catalogue[body["document_id"]] = {**entry, **mark}
        elif kind == "DocumentWithdrawn":
            if body["document_id"] in documents:
                documents[body["document_id"]]["withdrawal"] = {"reason": body.get("reason"), **mark}
            catalogue.pop(body["document_id"], None)
        elif kind == "EvidenceSubmitted":
            out["evidence"].append({"evidence_id": body.get("evidence_id"), "sha256": body.get("sha256"),
                                    "size": body.get("size"), "name": body.get("name"),
                                    "description": body.get("description"),
                                    "submitter": _person(body.get("submitter") or {}, names), **mark})  # fmt: skip
        elif kind == "ServiceRecorded":
            slip = body.get("receipt_sha256")
            out["services"].append({
                "document_id": body.get("document_id"), "recipient": _person(body.get("recipient") or {}, names),
                "channel": body.get("channel"), "sent_at": body.get("sent_at"),
                "delivered_at": body.get("delivered_at"), "read_at": body.get("read_at"),
                # 送达回执: the proof of delivery's hash, and where to fetch it when the dossier holds the file.
                "service_receipt": None if slip is None else {
                    "sha256": slip, "download": f"{base}/files/{slip}" if slip in files else None},
                **mark})  # fmt: skip
        elif kind == "ContractRegistered":
            out["contracts"].append({"contract_sha256": body.get("contract_sha256"), "signed_at": body.get("signed_at"),
                                     "parties": [_person(p, names) for p in body.get("parties") or []],
                                     **mark})  # fmt: skip
        elif kind == "Transferred":
            out["transfers"].append({"to_court": body.get("to_court"), "kind": body.get("kind"),
                                     "reason": body.get("reason"), **mark})  # fmt: skip
        elif kind == "Received":
            out["received_from"] = {
                k: body.get(k)
                for k in (
                    "from_court",
                    "from_origin",
                    "kind",
                    "dossier_version",
                    "checkpoint_size",
                    "first_leaf",
                    "last_leaf",
                )
            }
            out["received_from"].update(mark)
        elif kind == "FirstInstanceLinked":
            first = body.get("first_instance")
            out["first_instance"] = {
                "dossier": first,
                "case_number": body.get("first_case_number"),
                "court": body.get("first_court"),
                "url": f"/v1/dossiers/{first}",
                **mark,
            }
        elif kind == "Archived":
            out["archive"] = {"retention": body.get("retention"), "package_sha256": body.get("package_sha256"),
                              "package": f"{base}/archive/package", "report": f"{base}/archive/report",
                              **mark}  # fmt: skip
    out["documents"] = documents
    out["catalogue"] = sorted(catalogue.values(), key=lambda c: (c["volume"] != "正卷", c["order"], c["title"]))
    return out
