"""执行 (enforcement) on the chain, and 结案 of any dossier (docs/execution.md).

An execution case is a dossier of case type 执行. ``open_execution`` links it to the judgment it
enforces: the judgment's dossier on this node and a leaf of that dossier in this court's log (the
judgment's upload, say), checked when it is recorded. Each operation is an ``ExecutionOperation``
event: 执行通知, 财产查控 (查询, 冻结, 扣划 — amounts in fen, accounts only in the stored event and as
commitments in the leaf), 评估, 拍卖, 案款收取, 案款发放, 信用惩戒 (纳入失信名单, 撤销失信名单,
限制高消费), 执法取证 (files by SHA-256 and size, streamed video included), 报结 (with its
结案方式), 归档.

闭环: the sensitive operations (冻结, 扣划, 案款发放) take effect only once a second principal,
not the one who recorded them, approves (``ExecutionApproved``); ``audit`` recomputes from the
events every operation, who did it, who approved it, and names any sensitive operation in effect
without such an approval (there can be none: the domain refuses the approval by the same actor).

``close`` records 结案 (结案方式, date) on any dossier; ``status`` is what a reader of the dossier
(a party with their credential included) sees of it.

Every new event is private by default (dossier/private.py): only file hashes and sizes of 执法取证
are in clear in the leaf.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from datetime import date as Date
from datetime import datetime, timedelta, timezone
from typing import Any
from uuid import UUID

from dossier import fields
from dossier.application import DossierApp, Guard, Pending
from dossier.domain import Dossier
from dossier.errors import InvalidDossierInputError
from dossier.private import PrivateEvent, trigger
from dossier.service import FutureTimeError
from ledger.log import MerkleLog

EXECUTION = "执行"
SENSITIVE = ("冻结", "扣划", "案款发放")
WITH_AMOUNT = ("冻结", "扣划", "案款收取", "案款发放", "评估", "拍卖")
WITH_ACCOUNT = ("查询", "冻结", "扣划", "案款发放")
WITH_PARTY = ("纳入失信名单", "撤销失信名单", "限制高消费", "执行通知")
KINDS = ("执行通知", "查询", "冻结", "扣划", "评估", "拍卖", "案款收取", "案款发放", "纳入失信名单", "撤销失信名单",
         "限制高消费", "执法取证", "报结", "归档")  # fmt: skip
# 结案方式: of a trial (审判) and of an execution (执行) case.
CLOSURE_METHODS = ("判决", "调解", "撤诉", "驳回起诉", "裁定", "移送", "终结", "执行完毕", "终结本次执行程序",
                   "终结执行", "销案", "不予执行", "驳回申请", "其他")  # fmt: skip
MAX_AMOUNT_FEN = 10**15  # 10 万亿元: any amount a court enforces, exact in JSON
MAX_FILES = 50  # 执法取证 files in one operation
BEIJING = timezone(timedelta(hours=8))
_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_HEX64 = re.compile(r"[0-9a-f]{64}")


class ExecutionOpened(PrivateEvent):
    """The execution case is linked to the judgment it enforces: its dossier and a leaf of it."""

    judgment_dossier: str
    judgment_leaf: int
    actor: str
    role: str

    def apply(self, aggregate: Any) -> None:
        aggregate.__dict__["execution"] = {"judgment_dossier": self.judgment_dossier,
                                           "judgment_leaf": self.judgment_leaf, "operations": {}}  # fmt: skip


class ExecutionOperation(PrivateEvent):
    """One operation of the execution; a sensitive one waits for its approval."""

    operation_id: str
    kind: str
    amount_fen: int | None
    account: str | None
    party: int | None
    document_id: str | None
    files: list[dict[str, Any]]
    closure_method: str | None
    note: str
    actor: str
    role: str

    def apply(self, aggregate: Any) -> None:
        ops = aggregate.__dict__["execution"]["operations"]
        ops[self.operation_id] = {"kind": self.kind, "version": self.originator_version, "actor": self.actor,
                                  "role": self.role, "sensitive": self.kind in SENSITIVE,
                                  "approved_by": None, "effective": self.kind not in SENSITIVE}  # fmt: skip
        if self.kind == "报结":
            aggregate.__dict__["closed"] = {"method": self.closure_method, "date": self.timestamp.date().isoformat()}


class ExecutionApproved(PrivateEvent):
    """闭环: a second principal approves a sensitive operation, which then takes effect."""

    operation_id: str
    actor: str
    role: str

    def apply(self, aggregate: Any) -> None:
        # Replaying must never fail: an approval of nothing, or by the recorder (which the command
        # refuses; only a tampered store holds one), changes nothing here, and the audit names it.
        op = aggregate.__dict__["execution"]["operations"].get(self.operation_id)
        if op is not None and op["approved_by"] is None and op["actor"] != self.actor:
            op.update(approved_by=self.actor, approved_role=self.role, approved_version=self.originator_version,
                      effective=True)  # fmt: skip


class CaseClosed(PrivateEvent):
    """结案: the case is closed, how and on which date."""

    method: str
    date: str
    actor: str
    role: str

    def apply(self, aggregate: Any) -> None:
        aggregate.__dict__["closed"] = {"method": self.method, "date": self.date}


def _execution(d: Dossier) -> dict[str, Any]:
    found = d.__dict__.get("execution")
    if found is None:
        raise InvalidDossierInputError("this dossier has no execution opened (POST …/execution first)")
    assert isinstance(found, dict)
    return found


def open_execution(dossier: UUID | str, *, judgment_dossier: Any, judgment_leaf: Any,
                   leaf_dossier: Callable[[int], str | None], actor: Any, role: Any,
                   guard: Guard | None = None) -> Pending[int]:  # fmt: skip
    """Link an execution case to its judgment. ``leaf_dossier(i)``: the dossier leaf ``i`` of this
    court's log belongs to (None if there is no such leaf)."""
    try:
        judgment = str(UUID(fields.text(judgment_dossier, "document id")))
    except ValueError:
        raise InvalidDossierInputError("judgment_dossier is a dossier id (a UUID)") from None
    leaf = fields.count(judgment_leaf, "judgment_leaf", most=2**53 - 1)
    if leaf_dossier(leaf) != judgment:
        raise InvalidDossierInputError(f"leaf {leaf} of this court's log is not an event of dossier {judgment}")
    acting = fields.who(actor, role)

    def run(d: Dossier) -> int:
        d._own()
        if d.case_type != EXECUTION:
            raise InvalidDossierInputError("an execution is opened in a dossier of case type 执行")
        if str(d.id) == judgment:
            raise InvalidDossierInputError("an execution case enforces another dossier's judgment")
        if d.__dict__.get("execution") is not None:
            raise InvalidDossierInputError("this dossier's execution is already opened")
        trigger(d, ExecutionOpened, judgment_dossier=judgment, judgment_leaf=leaf, **acting)
        return d.version

    return Pending(dossier, run, guard)


def operate(dossier: UUID | str, *, kind: Any, amount_fen: Any = None, account: Any = None, party: Any = None,
            document_id: Any = None, files: Any = None, closure_method: Any = None, note: Any = "",
            actor: Any, role: Any, guard: Guard | None = None) -> Pending[dict[str, Any]]:  # fmt: skip
    """One execution operation; its result: the operation's id, the dossier's version, whether it is in
    effect (a sensitive one is not, until approved)."""
    kind = fields.choice(kind, "operation", KINDS)
    amount = fields.optional_count(amount_fen, "amount_fen", most=MAX_AMOUNT_FEN, least=1)
    if kind in ("冻结", "扣划", "案款收取", "案款发放") and amount is None:
        raise InvalidDossierInputError(f"{kind} needs amount_fen (an amount in fen, 分)")
    if amount is not None and kind not in WITH_AMOUNT:
        raise InvalidDossierInputError(f"{kind} takes no amount")
    acct = fields.optional_text(account, "account")
    if kind in WITH_ACCOUNT and acct is None:
        raise InvalidDossierInputError(f"{kind} needs the account (kept private: a commitment in the log)")
    if acct is not None and kind not in WITH_ACCOUNT:
        raise InvalidDossierInputError(f"{kind} takes no account")
    if party is not None and kind not in WITH_PARTY:
        raise InvalidDossierInputError(f"{kind} names no party")
    if kind in WITH_PARTY[:3] and party is None:
        raise InvalidDossierInputError(f"{kind} names the party (its index in the dossier's parties)")
    evidence = _files(files) if kind == "执法取证" else None
    if files is not None and kind != "执法取证":
        raise InvalidDossierInputError("only 执法取证 records files")
    method = fields.choice(closure_method, "结案方式", CLOSURE_METHODS) if kind == "报结" else None
    if closure_method is not None and kind != "报结":
        raise InvalidDossierInputError("only 报结 takes a 结案方式")
    doc_id = fields.optional_text(document_id, "document id")
    text = fields.text(note, "description", required=False, multiline=True)
    acting = fields.who(actor, role)

    def run(d: Dossier) -> dict[str, Any]:
        d._own()
        ex = _execution(d)
        if d.__dict__.get("closed") is not None and kind != "归档":
            raise ExecutionClosedError("this execution case is closed (报结); only 归档 follows")
        if kind == "归档" and d.__dict__.get("closed") is None:
            raise InvalidDossierInputError("归档 follows 报结")
        if kind == "归档" and any(o["kind"] == "归档" for o in ex["operations"].values()):
            raise ExecutionClosedError("this execution case is archived (归档) already")
        if kind == "报结" and _pending(d):
            raise ApprovalsPendingError(f"{len(_pending(d))} sensitive step(s) await approval; 报结 follows them")
        if party is not None:
            fields.count(party, "party", most=max(len(d.parties) - 1, 0))
            if not d.parties:
                raise InvalidDossierInputError("this dossier has no party")
        if doc_id is not None:
            d._document(doc_id)
        op_id = uuid.uuid4().hex
        trigger(d, ExecutionOperation, operation_id=op_id, kind=kind, amount_fen=amount, account=acct, party=party,
                document_id=doc_id, files=evidence or [], closure_method=method, note=text, **acting)  # fmt: skip
        return {"operation_id": op_id, "version": d.version, "effective": ex["operations"][op_id]["effective"]}

    return Pending(dossier, run, guard)


def _files(value: Any) -> list[dict[str, Any]]:
    if not isinstance(value, list) or not 1 <= len(value) <= MAX_FILES:
        raise InvalidDossierInputError(f"执法取证 records 1 to {MAX_FILES} files")
    out = []
    for f in value:
        if not isinstance(f, dict) or set(f) != {"sha256", "size"}:
            raise InvalidDossierInputError("a file is {sha256, size}")
        if not isinstance(f["sha256"], str) or not _HEX64.fullmatch(f["sha256"]):
            raise InvalidDossierInputError("a file's sha256 is a SHA-256 in lower-case hex")
        out.append({"sha256": f["sha256"], "size": fields.count(f["size"], "size", most=fields.MAX_SIZE)})
    return out


def approve(dossier: UUID | str, *, operation_id: Any, actor: Any, role: Any,
            same_person: Callable[[str], bool] | None = None, guard: Guard | None = None) -> Pending[int]:  # fmt: skip
    """闭环: approve a sensitive operation, as a principal other than the one who recorded it.
    ``same_person(recorder)``: whether the approver is the recorder under another credential (the
    node compares the principals' names); refused as the same principal. Refused once the case is
    closed (报结 or 结案) or archived: a step not approved by then lapses."""
    op_id = fields.text(operation_id, "document id")
    acting = fields.who(actor, role)

    def run(d: Dossier) -> int:
        d._own()
        op = _execution(d)["operations"].get(op_id)
        if op is None:
            raise InvalidDossierInputError(f"no operation {op_id} in this execution")
        if not op["sensitive"]:
            raise InvalidDossierInputError(f"{op['kind']} needs no approval")
        if op["approved_by"] is not None:
            raise InvalidDossierInputError("this operation is approved already")
        if d.__dict__.get("closed") is not None or d.archived is not None:
            raise ExecutionClosedError("this case is closed: a step that was not approved by then lapses")
        if op["actor"] == acting["actor"] or (same_person is not None and same_person(op["actor"])):
            raise SamePrincipalError("the principal who recorded a sensitive operation does not approve it (闭环)")
        trigger(d, ExecutionApproved, operation_id=op_id, **acting)
        return d.version

    return Pending(dossier, run, guard)


class SamePrincipalError(InvalidDossierInputError):
    code = "approval_by_same_principal"


class ExecutionClosedError(InvalidDossierInputError):
    """An approval or operation after the case was closed (报结, 结案) or archived, or a second 归档."""

    code = "execution_closed"


class ApprovalsPendingError(InvalidDossierInputError):
    """报结 or 结案 while a sensitive step awaits its approval: approve it (or let it be refused) first."""

    code = "approvals_pending"


def _pending(d: Dossier) -> list[str]:
    ex = d.__dict__.get("execution")
    if ex is None:
        return []
    return [k for k, o in ex["operations"].items() if o["sensitive"] and not o["effective"]]


def close(dossier: UUID | str, *, method: Any, date: Any, actor: Any, role: Any,
          guard: Guard | None = None) -> Pending[int]:  # fmt: skip
    """结案 of any dossier: 结案方式 and the date (YYYY-MM-DD)."""
    how = fields.choice(method, "结案方式", CLOSURE_METHODS)
    if not isinstance(date, str) or not _DATE.fullmatch(date):
        raise InvalidDossierInputError("date is YYYY-MM-DD")
    try:
        day = Date.fromisoformat(date)
    except ValueError:
        raise InvalidDossierInputError(f"date {date} is not a day of the calendar") from None
    if day > (datetime.now(BEIJING) + timedelta(days=1)).date():  # a day's slack for any court's zone
        raise FutureTimeError(f"date {date} is later than today; a case is closed once it is")
    acting = fields.who(actor, role)

    def run(d: Dossier) -> int:
        d.check_open()
        if d.__dict__.get("closed") is not None:
            raise InvalidDossierInputError("this dossier is closed already")
        if _pending(d):
            raise ApprovalsPendingError(f"{len(_pending(d))} sensitive step(s) await approval; 结案 follows them")
        trigger(d, CaseClosed, method=how, date=date, **acting)
        return d.version

    return Pending(dossier, run, guard)


def status(d: Dossier) -> dict[str, Any]:
    """What a reader of the dossier sees of its state: open or closed (how, when), archived, and for
    an execution case its judgment and how many operations are in effect or await approval."""
    out: dict[str, Any] = {"dossier": str(d.id), "case_number": d.case_number, "case_type": d.case_type,
                           "closed": d.__dict__.get("closed"), "archived": d.archived is not None}  # fmt: skip
    ex = d.__dict__.get("execution")
    if ex is not None:
        ops = ex["operations"].values()
        waiting = sum(not o["effective"] for o in ops)
        out["execution"] = {"judgment_dossier": ex["judgment_dossier"], "judgment_leaf": ex["judgment_leaf"],
                            "operations": len(ops), "awaiting_approval": waiting}  # fmt: skip
    return out


def audit(events: list[Any], leaf_of: Callable[[int], int | None]) -> dict[str, Any]:
    """The execution's audit, recomputed from its events (not from the dossier's state): every
    operation, who recorded it and when, its leaf; who approved it; and ``violations``: any
    sensitive operation in effect without the approval of another principal (there must be none).
    ``leaf_of(version)``: the leaf index of the dossier's event, None while not sealed."""
    ops: dict[str, dict[str, Any]] = {}
    violations = []
    closed = archived = False  # 报结 or 结案 recorded; 归档 recorded
    for e in events:
        closes = isinstance(e, CaseClosed) or (isinstance(e, ExecutionOperation) and e.kind == "报结")
        if closes:
            waiting = [k for k, o in ops.items() if o["sensitive"] and o["approved_by"] is None]
            if waiting:
                violations.append({"operation_id": waiting[0], "problem": "the case was closed while this step "
                                   "awaited approval"})  # fmt: skip
        if isinstance(e, ExecutionOperation):
            if archived or (closed and e.kind != "归档"):
                violations.append({"operation_id": e.operation_id, "problem": f"{e.kind} after the case was closed"
                                   + (" and archived" if archived else "")})  # fmt: skip
            archived = archived or e.kind == "归档"
            ops[e.operation_id] = {"operation_id": e.operation_id, "kind": e.kind, "sensitive": e.kind in SENSITIVE,
                                   "actor": e.actor, "role": e.role, "version": e.originator_version,
                                   "time": e.timestamp.isoformat(), "leaf_index": leaf_of(e.originator_version),
                                   "amount_fen": e.amount_fen, "approved_by": None, "approved_version": None,
                                   "approval_leaf_index": None}  # fmt: skip
        elif isinstance(e, ExecutionApproved):
            if closed:
                violations.append({"operation_id": e.operation_id, "problem": "approved after the case was closed"})
            op = ops.get(e.operation_id)
            if op is None:
                violations.append({"operation_id": e.operation_id, "problem": "an approval of no operation"})
                continue
            op.update(approved_by=e.actor, approved_version=e.originator_version,
                      approval_leaf_index=leaf_of(e.originator_version))  # fmt: skip
            if e.actor == op["actor"]:
                violations.append(
                    {"operation_id": e.operation_id, "problem": "approved by the principal who recorded it"}
                )
        closed = closed or closes
    awaiting = [o["operation_id"] for o in ops.values() if o["sensitive"] and o["approved_by"] is None]
    for o in ops.values():
        o["effective"] = not o["sensitive"] or (o["approved_by"] is not None and o["approved_by"] != o["actor"])
    return {"operations": list(ops.values()), "awaiting_approval": awaiting, "violations": violations,
            "clean": not violations}  # fmt: skip


def audit_dossier(app: DossierApp, log: MerkleLog, dossier: UUID | str) -> dict[str, Any]:
    """``audit`` of one dossier's execution, from the event store and the log (``sifa audit --execution``
    and ``GET …/execution/audit``). Raises DossierNotFoundError."""
    ident = app.get(dossier, copy=False).id
    events = [e for e in app.repository.event_store.get(ident) if isinstance(e, PrivateEvent)]

    def leaf_of(version: int) -> int | None:
        found = log.find(f"event:{ident}:{version}")
        return found[0] if found else None

    return {"dossier": str(ident), **audit(events, leaf_of)}
