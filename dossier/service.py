"""送达 (service of court documents) recorded, and checkable by whoever holds the served document.

A service record names the served document (one of the dossier's, so its SHA-256), the channel
(电子送达平台, 短信, 电子邮件, 邮寄 with its tracking number), when it was sent, delivered and read
(delivered ≥ sent, read ≥ delivered), the recipient — a party of the dossier or that party's agent
(代理人) — and the 送达回执 (a document of the dossier, by its SHA-256).

Recording answers a 送达码: printed on the document, it opens the recipient's identity. The leaf
(sifa-leaf/2) shows only the served file's and the 回执's SHA-256; everything else is committed,
the recipient too (stored as a commitment under a salt the 送达码 derives). Anyone with
the document's hash can ask the node (``lookup``) whether and how it was served; only a holder of
the 送达码 is told to whom. docs/service.md.
"""

from __future__ import annotations

import hashlib
import secrets
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

from dossier import fields
from dossier.application import DossierApp, Guard, Pending
from dossier.domain import Dossier
from dossier.errors import InvalidDossierInputError
from dossier.fields import utc
from dossier.private import PrivateEvent, trigger
from evidence.commitment import commit
from evidence.leaf import read_leaf
from ledger.log import MerkleLog

CHANNELS = ("电子送达平台", "短信", "电子邮件", "邮寄")
POST = "邮寄"
CODE_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"  # Crockford base32: no I, L, O, U
CODE_LENGTH = 20  # 100 bits: the recipient's commitment cannot be opened by trying codes
CODE_DOMAIN = b"sifa-service-code/1\x00"
CLOCK_SKEW = timedelta(minutes=5)  # a time later than now by more than this is refused


class CourtOnlyServiceError(InvalidDossierInputError):
    """A 副卷 document named as the served document or as the 送达回执: it is never served, and its
    hash would reach whoever checks the service."""

    code = "service_document_court_only"


class FutureTimeError(InvalidDossierInputError):
    """A time later than the node's clock (beyond CLOCK_SKEW): what is recorded has happened."""

    code = "time_in_future"


def not_future(when: str | None, what: str) -> str | None:
    """``when`` (the ``utc`` form) unless later than now + CLOCK_SKEW. Raises FutureTimeError."""
    if when is not None and when > utc(datetime.now(UTC) + CLOCK_SKEW):  # same-width UTC text: compares as time
        raise FutureTimeError(f"{what} {when} is later than now; a service is recorded once it happened")
    return when


class Served(PrivateEvent):
    """送达: the served document and its 回执 by hash, the recipient as a commitment the 送达码 opens."""

    document_id: str
    sha256: str
    channel: str
    tracking_number: str | None
    sent_at: str
    delivered_at: str | None
    read_at: str | None
    addressee: dict[str, Any]
    recipient: str
    receipt_document_id: str | None
    receipt_sha256: str | None
    actor: str
    role: str

    def apply(self, aggregate: Any) -> None:
        aggregate.documents[self.document_id].setdefault("services", []).append(self.channel)


def new_code() -> str:
    """A fresh 送达码, ``XXXX-XXXX-XXXX-XXXX-XXXX``."""
    raw = "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))
    return "-".join(raw[i : i + 4] for i in range(0, CODE_LENGTH, 4))


def code_salt(code: str) -> bytes | None:
    """The salt a 送达码 stands for (case, spaces and dashes ignored); None if it is not one."""
    if not isinstance(code, str) or len(code) > 64:
        return None
    plain = code.upper().replace("-", "").replace(" ", "")
    if len(plain) != CODE_LENGTH or any(c not in CODE_ALPHABET for c in plain):
        return None
    return hashlib.sha256(CODE_DOMAIN + plain.encode("ascii")).digest()


def identity(addressee: dict[str, Any]) -> str:
    """The recipient as the commitment states it: ``原告 张三`` or ``原告 张三 的代理人 李四``."""
    said = f"{addressee['role']} {addressee['name']}"
    return f"{said} 的代理人 {addressee['agent']}" if addressee.get("agent") else said


def _addressee(d: Dossier, party: Any, agent: Any) -> dict[str, Any]:
    if not d.parties:
        raise InvalidDossierInputError("this dossier has no party to serve")
    index = fields.count(party, "party", most=len(d.parties) - 1)
    p = d.parties[index]
    out: dict[str, Any] = {"party": index, "role": p["role"], "name": p["name"]}
    if agent is not None:
        out["agent"] = fields.text(agent, "agent name")
    return out


def record(app: DossierApp, dossier: UUID | str, *, document_id: Any, channel: Any, sent_at: Any,
           delivered_at: Any = None, read_at: Any = None, tracking_number: Any = None, party: Any,
           agent: Any = None, receipt_document_id: Any = None, actor: Any, role: Any,
           guard: Guard | None = None) -> Pending[dict[str, Any]]:  # fmt: skip
    """A checked 送达 command; its result: the dossier's new version and the 送达码. Raises
    InvalidDossierInputError (times out of order, a tracking number missing or out of place, …)."""
    channel = fields.choice(channel, "channel", CHANNELS)
    tracking = fields.optional_text(tracking_number, "tracking number")
    if (channel == POST) != (tracking is not None):
        raise InvalidDossierInputError("a tracking number is given for 邮寄, and only for 邮寄")
    if tracking is not None and not (tracking.isascii() and tracking.replace("-", "").isalnum()):
        raise InvalidDossierInputError("a tracking number is ASCII letters, digits and dashes")
    sent = not_future(fields.moment(sent_at, "sent_at"), "sent_at")
    assert sent is not None
    delivered = not_future(fields.optional_moment(delivered_at, "delivered_at"), "delivered_at")
    read = not_future(fields.optional_moment(read_at, "read_at"), "read_at")
    if delivered is not None and delivered < sent:  # same-width UTC text: compares as time
        raise InvalidDossierInputError("delivered_at is before sent_at")
    if read is not None and (delivered is None or read < delivered):
        raise InvalidDossierInputError("read_at needs delivered_at, and is not before it")
    doc_id = fields.text(document_id, "document id")
    receipt_id = fields.optional_text(receipt_document_id, "document id")
    acting = fields.who(actor, role)
    code = new_code()
    salt = code_salt(code)
    assert salt is not None

    def run(d: Dossier) -> dict[str, Any]:
        d._own()
        served = d._document(doc_id)
        receipt = d._document(receipt_id) if receipt_id is not None else None
        if receipt_id == doc_id:
            raise InvalidDossierInputError("the 送达回执 is another document than the one served")
        court_only = d.court_only()
        if doc_id in court_only:
            raise CourtOnlyServiceError("a 副卷 document is not served (it is the court's only)")
        if receipt_id in court_only:
            raise CourtOnlyServiceError("the 送达回执 is a 正卷 document; this one is in the 副卷")
        who = _addressee(d, party, agent)
        trigger(d, Served, document_id=doc_id, sha256=served["sha256"], channel=channel, tracking_number=tracking,
                sent_at=sent, delivered_at=delivered, read_at=read, addressee=who,
                recipient=commit(identity(who), salt), receipt_document_id=receipt_id,
                receipt_sha256=receipt["sha256"] if receipt else None, **acting)  # fmt: skip
        return {"version": d.version, "service_code": code}

    return Pending(dossier, run, guard)


def lookup(app: DossierApp, log: MerkleLog, sha256: str, code: str | None) -> list[dict[str, Any]]:
    """The sealed services of the document with this SHA-256: when, how, delivered and read when,
    the recipient's commitment — and, for a 送达码 that opens it, who. Oldest first."""
    salt = code_salt(code) if code else None
    out = []
    for index in log.find(f"sha256:{sha256}"):
        leaf = read_leaf(log.entry(index))
        if leaf.type != Served.__name__ or not any(f.field == "sha256" and f.sha256 == sha256 for f in leaf.files):
            continue  # the upload itself, or a service whose 回执 has these bytes
        # The leaf names its dossier by a keyed reference; the node's own label names the event.
        event = next((label.split(":") for label in log.labels_at(index) if label.startswith("event:")), None)
        if event is None:
            continue
        ident, version = uuid.UUID(event[1]), int(event[2])
        [e] = app.repository.event_store.get(ident, gt=version - 1, lte=version)
        assert isinstance(e, Served)
        found: dict[str, Any] = {"log": leaf.origin, "leaf_index": index, "record_id": f"{leaf.origin}#{index}",
                                 "recorded_at": leaf.time, "channel": e.channel, "sent_at": e.sent_at,
                                 "delivered_at": e.delivered_at, "read_at": e.read_at,
                                 "receipt_sha256": e.receipt_sha256, "recipient_commitment": e.recipient,
                                 "recipient": None}  # fmt: skip
        if salt is not None and commit(identity(e.addressee), salt) == e.recipient:
            found["recipient"] = identity(e.addressee)
            found["tracking_number"] = e.tracking_number
        out.append(found)
    return out
