"""What a verifier prints for a path (its Chinese label), and who may be shown which paths."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from evidence.paths import index_of

ROLES: Final = ("staff", "receiving_court", "lawyer", "party", "public")
ACTOR_PATHS: Final = frozenset({"actor", "by"})  # principals' ids: who recorded or read


def pattern(path: str) -> str:
    """The path with list indices wildcarded: ``parties/0/name`` → ``parties/*/name``."""
    return "/".join("*" if index_of(s) is not None else s for s in path.split("/"))


_PERSON = {"role": "诉讼地位", "kind": "主体类型", "name": "姓名", "id_number": "证件号码", "phone": "联系电话",
           "address": "地址"}  # fmt: skip
_CATALOGUE = {"volume": "卷别", "category": "类别", "order": "顺序号", "title": "题名", "pages": "页数",
              "auto": "自动编目"}  # fmt: skip
LABELS: Final[Mapping[str, str]] = {
    "court": "立案法院", "case_number": "案号", "case_type": "案件类型",
    "parties": "当事人", "submitter": "提交人", "recipient": "受送达人",  # when empty
    **{f"parties/*/{k}": f"当事人{v}" for k, v in _PERSON.items()},
    **{f"submitter/{k}": f"提交人{v}" for k, v in _PERSON.items()},
    **{f"recipient/{k}": f"受送达人{v}" for k, v in _PERSON.items()},
    "actor": "操作人", "role": "操作角色",
    "document_id": "文书编号", "evidence_id": "证据编号", "name": "文件名", "media_type": "文件格式",
    "source": "来源", "doc_type": "文书类型", "pages": "页数", "size": "文件大小",
    **_CATALOGUE, **{f"catalogue/{k}": f"编目{v}" for k, v in _CATALOGUE.items()}, "catalogue": "编目",
    "reason": "事由", "description": "说明",
    "channel": "送达方式", "sent_at": "发送时间", "delivered_at": "送达时间", "read_at": "查阅时间",
    "signed_at": "签订时间", "to_court": "接收法院", "kind": "移送类型",
    "by_court": "接收法院", "from_court": "移送法院", "from_origin": "原法院日志", "dossier_version": "原卷宗版本",
    "checkpoint_size": "原检查点大小", "checkpoint_root": "原检查点根哈希", "first_leaf": "原首叶序号",
    "last_leaf": "原末叶序号", "last_leaf_hash": "原末叶哈希", "files": "文件数", "total_bytes": "总字节数",
    "original_leaf": "原叶序号", "retention": "保管期限", "by": "调阅人",
    "first_instance": "一审卷宗", "first_case_number": "一审案号", "first_court": "一审法院",
    # a file field is committed only when it names no file (null)
    "sha256": "文件哈希", "contract_sha256": "合同文件哈希", "receipt_sha256": "送达回证哈希",
    "package_sha256": "归档包哈希", "events_sha256": "原事件包哈希", "checkpoint_sha256": "原检查点文件哈希",
}  # fmt: skip
TYPE_LABELS: Final[Mapping[tuple[str, str], str]] = {
    ("DocumentWithdrawn", "reason"): "理由",
    ("Retrieved", "by_court"): "调阅法院",
    ("ContractRegistered", "parties/*/role"): "合同当事人角色",
    ("ContractRegistered", "parties/*/name"): "合同当事人姓名",
}


def label(path: str, event_type: str | None = None) -> str | None:
    """The Chinese label a verifier prints for a path (of an event of ``event_type``), or None."""
    p = pattern(path)
    if event_type is not None and (event_type, p) in TYPE_LABELS:
        return TYPE_LABELS[(event_type, p)]
    return LABELS.get(p)


# --- who may open what ---


def visible_paths(role: str, values: Mapping[str, Any], *, secondary: bool = False,
                  principal: str | None = None) -> frozenset[str]:  # fmt: skip
    """The paths of one event (``values``: its committed path → value) that ``role`` may be shown.

    staff and a receiving court: all; a lawyer or party: none of an event about a 副卷 document
    (``secondary``), else all but other principals' ids (``actor``, ``by`` not equal to
    ``principal``); public: none. Raises ValueError for an unknown role.
    """
    if role not in ROLES:
        raise ValueError(f"role is one of {ROLES}")
    if role in ("staff", "receiving_court"):
        return frozenset(values)
    if role == "public" or secondary:
        return frozenset()
    own = principal is not None
    return frozenset(p for p, v in values.items() if p not in ACTOR_PATHS or (own and v == principal))
