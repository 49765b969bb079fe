"""The public leaf ``sifa-leaf/2`` (evidence/disclosure.py, docs/privacy.md): nothing in clear but what
the format names; every disclosure opens exactly its own commitment; old leaves still read."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import subprocess
import sys
import unicodedata
import uuid
from pathlib import Path
from typing import Any

import pytest
import rfc8785
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from dossier.domain import Dossier, party
from dossier.envelope import envelope, envelope_bytes
from evidence.commitment import DisclosureError
from evidence.disclosure import (
    FILE_FIELDS,
    FORMAT,
    FORMAT_V1,
    LABELS,
    TYPE_LABELS,
    Disclosure,
    MalformedLeafError,
    build_leaf,
    canonical_json,
    check_shape,
    commitment,
    committed_values,
    disclosures_for,
    dossier_ref,
    event_key,
    event_salts,
    flatten,
    label,
    pattern,
    read_leaf,
    redact,
    unflatten,
    verify_disclosures,
    visible_paths,
)
from tests import make_disclosure_vectors

SECRET = hashlib.sha256(b"test node secret").digest()
OTHER_SECRET = hashlib.sha256(b"another node").digest()
ORIGIN = "sifa.court/1101-0105"
WHEN = "2026-11-22T08:30:00.000000Z"
DOSSIER = uuid.UUID("6b1c3f2e-5d0a-4e8b-9a51-2f0c9d7e4a11")
SKIP = {"originator_id", "originator_version", "timestamp", "originator_topic"}
VECTORS = Path(__file__).parent / "vectors" / "disclosure" / "vectors.json"


def leaf_of(body: dict[str, Any], version: int = 1, dossier: uuid.UUID | str = DOSSIER, **kw: Any) -> bytes:
    args: dict[str, Any] = {"origin": ORIGIN, "seq": version - 1, "position": version, "type": "Opened",
                            "time": WHEN, "prev": None, "secret": SECRET, **kw}  # fmt: skip
    return build_leaf(dossier=dossier, version=version, body=body, **args)


def opened(body: dict[str, Any], version: int = 1) -> list[Disclosure]:
    return disclosures_for(body, secret=SECRET, dossier=DOSSIER, version=version)


# --- every event of the domain, a secret in every text field it takes freely ---

SECRETS: list[str] = []


def s(what: str) -> str:
    """A secret of its own for one field (Chinese, as case data is)."""
    value = f"秘{len(SECRETS):02d}{what}张三丰"
    SECRETS.append(value)
    return value


def person() -> dict[str, Any]:
    """A party as a command gives it (the domain adds the salts)."""
    return {"role": s("诉讼地位"), "kind": "natural", "name": s("姓名"), "id_number": s("证件"), "phone": s("电话"),
            "address": s("地址")}  # fmt: skip


def domain_events() -> list[Dossier.Event]:
    """One of every event dossier/domain.py records, from two dossiers (the second a received copy)."""
    sha = [hashlib.sha256(b"%d" % i).hexdigest() for i in range(6)]
    act = {"actor": s("actor"), "role": s("role")}
    salted = [party(person()), party(person())]  # as the application opens a dossier: salts added
    d = Dossier(court=s("court"), case_number=s("案号"), case_type=s("案件类型"), parties=salted, **act)
    d.upload(document_id=s("document_id"), sha256=sha[0], size=10, name=s("文件名.pdf"), media_type=s("media"),
             source=s("source"), doc_type=s("doc_type"), pages=3, **act)  # fmt: skip
    doc = next(iter(d.documents))
    d.catalogue_document(document_id=doc, volume="副卷", category=s("category"), order=7, title=s("题名"), pages=3,
                         auto=False, **act)  # fmt: skip
    d.submit_evidence(evidence_id=s("evidence_id"), sha256=sha[1], size=11, name=s("证据名"), submitter=person(),
                      description=s("说明"), **act)  # fmt: skip
    d.record_service(document_id=doc, recipient=person(), channel=s("channel"), sent_at="2026-11-22T08:00:00Z",
                     delivered_at="2026-11-22T09:00:00Z", read_at=None, receipt_sha256=sha[2], **act)  # fmt: skip
    d.register_contract(contract_sha256=sha[3], parties=[person()], signed_at="2026-11-20T08:00:00Z", **act)
    d.link_first_instance(dossier=s("一审卷宗"), case_number=s("一审案号"), court=s("一审法院"), **act)
    d.transfer(to_court=s("to_court"), kind="上诉", reason=s("事由"), **act)
    d.withdraw(doc, s("理由"), **act)
    d.archive(retention="永久", package_sha256=sha[4], **act)
    d.retrieved(by_court=s("by_court"), by=s("by"), reason=s("调阅事由"), **act)
    d.file_repaired(sha256=sha[0], size=10, source=s("修复来源"), reason=s("修复事由"), **act)
    r = Dossier(court=s("court2"), case_number=s("案号2"), case_type=s("类型2"), parties=[], **act)
    r.receive(by_court=s("by"), from_court=s("from"), from_origin=s("origin"), kind="移送", dossier_version=9,
              checkpoint_size=20, checkpoint_root=s("root"), first_leaf=1, last_leaf=9, last_leaf_hash=s("lh"),
              events_sha256=sha[5], checkpoint_sha256=sha[0], files=2, total_bytes=99, **act)  # fmt: skip
    r.document_received(document_id=s("rid"), sha256=sha[1], size=11, name=s("收文"), media_type=s("m2"),
                        source=s("src2"), doc_type=s("dt2"), pages=None, original_leaf=4, **act,
                        catalogue={"volume": "正卷", "category": s("cat2"), "order": 2, "title": s("t2"), "pages": 1,
                                   "auto": True})  # fmt: skip
    return [*d.collect_events(), *r.collect_events()]


EVENTS = domain_events()
ENUMERATED = ("张三", "副卷", "正卷", "上诉", "移送", "永久", "natural")  # values no secret could be planted in


def clear_body(e: Dossier.Event) -> dict[str, Any]:
    """What the sealer will hand build_leaf: the stored event's fields."""
    return {k: v for k, v in vars(e).items() if k not in SKIP}


def test_every_event_type_of_the_domain_is_covered() -> None:
    kinds = {k for k, v in vars(Dossier).items() if isinstance(v, type) and issubclass(v, Dossier.Event)}
    assert {type(e).__name__ for e in EVENTS} == kinds - {"Event", "Created"}


def test_no_secret_in_any_leaf_and_every_field_is_committed_labelled_and_opens() -> None:
    prev = None
    for e in EVENTS:
        body = clear_body(e)
        data = leaf_of(body, e.originator_version, e.originator_id, type=type(e).__name__, prev=prev)
        for secret in SECRETS:
            assert secret.encode() not in data and json.dumps(secret).encode() not in data
        for clear in (*ENUMERATED, str(e.originator_id)):
            assert clear.encode() not in data
        leaf = read_leaf(data)
        assert (leaf.format, leaf.type, leaf.dossier) == (
            FORMAT,
            type(e).__name__,
            dossier_ref(SECRET, e.originator_id),
        )
        assert {f.sha256 for f in leaf.files} == {body[f] for f in FILE_FIELDS if body.get(f)}
        for path in leaf.commitments:
            assert label(path, type(e).__name__), f"{type(e).__name__}: no label for {path}"
            assert "salts" not in path.split("/")
        shown = disclosures_for(body, secret=SECRET, dossier=e.originator_id, version=e.originator_version)
        values = verify_disclosures(leaf, [d.to_json() for d in shown])
        assert set(values) == set(leaf.commitments)
        rebuilt = unflatten(values)  # the body again, file hashes from the clear part
        rebuilt.update({f.field: f.sha256 for f in leaf.files})
        rebuilt.update({f.field.replace("sha256", "size"): f.size for f in leaf.files if f.field == "sha256"})
        strip = {k: [{f: x for f, x in p.items() if f != "salts"} for p in v] if isinstance(v, list)
                 else {f: x for f, x in v.items() if f != "salts"} for k, v in body.items()
                 if k in ("parties", "submitter", "recipient")}  # fmt: skip
        assert rebuilt == {**body, **strip}
        prev = hashlib.sha256(b"\x00" + data).digest()


def test_the_same_value_in_two_fields_two_events_two_dossiers_two_nodes_commits_differently() -> None:
    body = {"a": "张三", "b": "张三", "c": {"d": "张三"}}
    one = read_leaf(leaf_of(body)).commitments
    assert len(set(one.values())) == 3
    assert read_leaf(leaf_of(body, version=2)).commitments["a"] != one["a"]
    assert read_leaf(leaf_of(body, dossier=uuid.uuid4())).commitments["a"] != one["a"]
    assert read_leaf(leaf_of(body, secret=OTHER_SECRET)).commitments["a"] != one["a"]
    assert leaf_of(body) == leaf_of(dict(reversed(body.items())))  # deterministic, order-free
    salt = event_salts(SECRET, DOSSIER, 1, ["a"])["a"]  # even under one salt, the path is bound in
    assert commitment("a", "张三", salt) != commitment("b", "张三", salt)


def test_the_dossier_reference_is_keyed_stable_and_not_the_uuid() -> None:
    ref = dossier_ref(SECRET, DOSSIER)
    assert ref == dossier_ref(SECRET, str(DOSSIER)) == dossier_ref(SECRET, str(DOSSIER).upper())
    assert len(ref) == 32 and ref != dossier_ref(OTHER_SECRET, DOSSIER) and ref != dossier_ref(SECRET, uuid.uuid4())
    assert DOSSIER.hex[:32] != ref and str(DOSSIER).encode() not in leaf_of({"x": 1})
    with pytest.raises(ValueError):
        dossier_ref(b"short", DOSSIER)
    with pytest.raises(ValueError):
        event_salts(b"\x00" * 31, DOSSIER, 1, ["x"])
    with pytest.raises(ValueError):
        dossier_ref(SECRET, "not-a-uuid")


# --- random bodies ---

keys = st.text(max_size=8).filter(lambda k: not (k.isascii() and k.isdigit()))
scalars = (
    st.none()
    | st.booleans()
    | st.integers(-(2**53) + 1, 2**53 - 1)
    | st.text(alphabet=st.characters(blacklist_categories=["Cs"]), max_size=12)
)
values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(keys, inner, max_size=3),
                      max_leaves=15)  # fmt: skip
RESERVED = {*FILE_FIELDS, "size", "parties", "submitter", "recipient"}  # keys that build_leaf treats specially
bodies = st.dictionaries(keys.filter(lambda k: k not in RESERVED), values, max_size=6)


@settings(max_examples=200, deadline=None)
@given(bodies)
def test_flatten_unflatten_round_trip(body: dict[str, Any]) -> None:
    flat = flatten(body)
    assert unflatten(flat) == body
    check_shape(flat)
    for path, value in flat.items():
        assert not isinstance(value, (list, dict)) or value in ([], {})
        assert pattern(path).count("/") == path.count("/")


@settings(max_examples=100, deadline=None)
@given(bodies, st.data())
def test_every_disclosure_opens_and_any_change_fails(body: dict[str, Any], data: st.DataObject) -> None:
    leaf = read_leaf(leaf_of(body))
    shown = [d.to_json() for d in opened(body)]
    assert verify_disclosures(leaf, shown) == flatten(body)
    kept = data.draw(st.sets(st.sampled_from(sorted(leaf.commitments))) if shown else st.just(set()))
    assert verify_disclosures(leaf, redact(shown, kept)) == {p: v for p, v in flatten(body).items() if p in kept}
    assume(shown)
    victim = data.draw(st.sampled_from(shown))
    other = data.draw(values.filter(lambda v: v != victim["value"] or type(v) is not type(victim["value"])))
    salt = bytearray(base64.b64decode(victim["salt"]))
    salt[data.draw(st.integers(0, 15))] ^= 1 << data.draw(st.integers(0, 7))
    moved = data.draw(st.sampled_from(sorted(leaf.commitments)) | keys)
    assume(moved != victim["path"])
    for bad in ({**victim, "value": other}, {**victim, "salt": base64.b64encode(salt).decode()},
                {**victim, "path": moved}):  # fmt: skip
        with pytest.raises(DisclosureError) as caught:
            verify_disclosures(leaf, [bad])
        assert caught.value.code == "disclosure_mismatch" and caught.value.detail["path"] == bad["path"]
    with pytest.raises(DisclosureError, match="twice"):
        verify_disclosures(leaf, [victim, victim])


@settings(max_examples=300, deadline=None)
@given(values)
def test_canonical_json_equals_rfc8785(value: Any) -> None:
    assert canonical_json(value) == rfc8785.dumps(value)


def test_canonical_json_key_order_is_utf16_and_escapes_are_ecmascript() -> None:
    doc = {"é": 1, "z": 2, "\U0001f600": 3, "\ue000": 4, 'a\x00\x1f\u2028"\\/': [True, None, -(2**53) + 1, ""]}
    assert canonical_json(doc) == rfc8785.dumps(doc)
    assert list(json.loads(canonical_json(doc))) == ['a\x00\x1f\u2028"\\/', "z", "é", "\U0001f600", "\ue000"]
    for bad in (1.5, 2**53, -(2**53), {1: "x"}, "\ud800", {"\ud800": 1}, b"bytes", (1, 2), {"k": {1.0}}):
        with pytest.raises(ValueError):
            canonical_json(bad)


# --- labels, redaction, visibility ---


def test_labels_by_pattern_and_event_type() -> None:
    assert (label("case_number"), label("parties/3/name"), label("parties/0/role")) == (
        "案号",
        "当事人姓名",
        "当事人诉讼地位",
    )
    assert label("reason", "DocumentWithdrawn") == "理由" and label("reason", "Transferred") == "事由"
    assert label("name", "DocumentUploaded") == "文件名" and label("to_court") == "接收法院"
    assert label("nonsense") is None and pattern("a/10/b/01") == "a/*/b/01"
    assert all(p in LABELS or p.count("*") for _, p in TYPE_LABELS)


def test_redact_keeps_by_path_pattern_or_label_and_still_verifies() -> None:
    body = {"name": "张三借款合同.pdf", "title": "借款合同", "parties": [{"name": "张三", "role": "原告"},
            {"name": "李四", "role": "被告"}], "actor": "clerk:1"}  # fmt: skip
    leaf = read_leaf(leaf_of(body, type="DocumentUploaded"))
    shown = opened(body)
    assert [d.path for d in redact(shown, ["文件名"], event_type="DocumentUploaded")] == ["name"]
    assert [d.path for d in redact(shown, ["parties/*/name", "actor"])] == ["actor", "parties/0/name", "parties/1/name"]
    assert [d["path"] for d in redact([d.to_json() for d in shown], ["parties/1/role", "题名"])] == [
        "parties/1/role", "title"]  # fmt: skip
    assert redact(shown, ["未知"]) == []
    assert verify_disclosures(leaf, redact(shown, ["当事人姓名"])) == {
        "parties/0/name": "张三",
        "parties/1/name": "李四",
    }
    assert unflatten(verify_disclosures(leaf, redact(shown, ["parties/1/name"])), missing="未披露") == {
        "parties": ["未披露", {"name": "李四"}]}  # fmt: skip


def test_who_may_open_what() -> None:
    values = committed_values({"name": "起诉状.pdf", "actor": "lawyer:7", "role": "lawyer", "by": "clerk:1"})
    everything = frozenset(values)
    assert visible_paths("staff", values) == visible_paths("receiving_court", values, secondary=True) == everything
    assert visible_paths("staff", values, secondary=True) == everything
    assert visible_paths("lawyer", values) == {"name", "role"}
    assert visible_paths("lawyer", values, principal="lawyer:7") == {"name", "role", "actor"}
    assert visible_paths("party", values, principal="clerk:1") == {"name", "role", "by"}
    assert visible_paths("lawyer", values, secondary=True, principal="lawyer:7") == frozenset()
    assert visible_paths("public", values) == frozenset()
    with pytest.raises(ValueError):
        visible_paths("judge", values)


# --- refusals ---


def test_disclosures_that_are_not_disclosures_are_refused() -> None:
    body = {"name": "张三"}
    leaf = read_leaf(leaf_of(body))
    [good] = [d.to_json() for d in opened(body)]
    for bad in ({"path": "name", "value": "张三"}, {**good, "extra": 1}, {**good, "salt": "!!"},
                {**good, "salt": base64.b64encode(bytes(15)).decode()}, {**good, "path": 3}, "name",
                {**good, "value": 1.5}, {**good, "value": "\ud800"}, {**good, "salt": 5},
                {**good, "salt": "５５"}):  # fmt: skip
        with pytest.raises(DisclosureError):
            verify_disclosures(leaf, [bad])
    assert verify_disclosures(leaf, []) == {}
    v1 = read_leaf(b'{"seq":1,"type":"DocumentUploaded","body":{"name":"x"}}')
    assert verify_disclosures(v1, []) == {}
    with pytest.raises(DisclosureError, match="sifa-leaf/1"):
        verify_disclosures(v1, [good])
    with pytest.raises(ValueError):
        disclosures_for(body, secret=SECRET, dossier=DOSSIER, version=1, paths=["title"])


def test_build_leaf_refuses_what_no_leaf_holds() -> None:
    for bad in ({"0": "x"}, {"a": {"1": "x"}}, {"a": 1.5}, {"a": 2**53}, {"sha256": "ABC"}, {"sha256": "a" * 64,
                "size": -1}, {"a": {2: "x"}}):  # fmt: skip
        with pytest.raises(ValueError):
            leaf_of(bad)
    for kw in ({"time": "2026-11-22T08:30:00Z"}, {"prev": b"\x00"}, {"seq": -1}, {"seq": True}, {"origin": None}):
        with pytest.raises(ValueError):
            leaf_of({}, **kw)


def test_unflatten_refuses_paths_that_disagree_on_the_shape() -> None:
    for bad in ({"a": 1, "a/b": 2}, {"a/b": 2, "a": 1}, {"a/0": 1, "a/b": 2}, {"0": 1}, {"a/100001": 1},
                {"a": [], "a/0": 1}):  # fmt: skip
        with pytest.raises(ValueError):
            unflatten(bad)
    with pytest.raises(ValueError):
        check_shape(["a/0", "a/2"])
    assert unflatten({"a/1": "x"}) == {"a": [None, "x"]}


def _v2(doc_change: dict[str, Any] | None = None, raw: bytes | None = None) -> bytes:
    data = leaf_of({"name": "张三", "sha256": "a" * 64, "size": 1, "receipt_sha256": "b" * 64}, type="ServiceRecorded")
    if raw is not None:
        return raw
    doc = json.loads(data)
    doc.update(doc_change or {})
    return rfc8785.dumps(doc)


@pytest.mark.parametrize(
    "data",
    [
        b"not json", b"[1]", b"\xff", _v2({"format": "sifa-leaf/3"}), _v2({"extra": 1}), _v2({"dossier": str(DOSSIER)}),
        _v2({"time": "2026-11-22T08:30:00Z"}), _v2({"prev": "00"}), _v2({"seq": -1}), _v2({"version": True}),
        _v2({"origin": 5}), _v2({"commitments": {"name": "zz"}}), _v2({"commitments": []}),
        _v2({"commitments": {"a": "0" * 64, "a/b": "0" * 64}}), _v2({"commitments": {"a/1": "0" * 64}}),
        _v2({"commitments": {"sha256": "0" * 64}}), _v2({"files": {}}),
        _v2({"files": [{"field": "receipt_sha256", "sha256": "b" * 64, "size": None},
                       {"field": "sha256", "sha256": "a" * 64, "size": 1}][::-1]}),
        _v2({"files": [{"field": "name", "sha256": "a" * 64, "size": 1}]}),
        _v2({"files": [{"field": "sha256", "sha256": "A" * 64, "size": 1}]}),
        _v2({"files": [{"field": "sha256", "sha256": "a" * 64, "size": -1}]}),
        _v2({"files": [{"field": "receipt_sha256", "sha256": "b" * 64, "size": 5}]}),
        _v2({"commitments": {"a~2": "0" * 64}}),
        _v2({"commitments": {"a~0": "0" * 64, "a~": "0" * 64}}),
        _v2(raw=_v2().replace(b'"seq":0', b'"seq":1152921504606846976')),
        json.dumps(json.loads(_v2()), indent=1).encode(),  # not canonical
        b'{"seq":"1"}', b'{"body":[]}', b'{"prev":5}',
    ],
    ids=lambda d: d[:60].decode("utf-8", "replace"),
)  # fmt: skip
def test_malformed_leaves_are_refused(data: bytes) -> None:
    with pytest.raises(MalformedLeafError) as caught:
        read_leaf(data)
    assert caught.value.code == "malformed_leaf"


# --- old leaves ---


def test_v1_leaves_still_read() -> None:
    prev = None
    for n, e in enumerate(EVENTS[:6]):
        data = envelope_bytes(envelope(ORIGIN, n, n + 1, e, prev))
        leaf = read_leaf(data)
        assert (leaf.format, leaf.type, leaf.version) == (FORMAT_V1, type(e).__name__, e.originator_version)
        assert leaf.dossier == str(e.originator_id)
        assert leaf.time == json.loads(data)["time"] and leaf.commitments == {} and leaf.body == e.leaf_body()
        assert {f.sha256 for f in leaf.files} == {v for k, v in e.leaf_body().items() if k in FILE_FIELDS and v}
        prev = hashlib.sha256(b"\x00" + data).digest()
    receipt = json.loads((Path(__file__).parent / "vectors" / "receipts" / "valid.json").read_text("utf-8"))
    toy = read_leaf(base64.b64decode(receipt["leaf_data"]))  # the receipt corpus' minimal leaves
    assert (toy.format, toy.seq, toy.dossier, toy.files[0].field, toy.files[0].size) == (
        FORMAT_V1,
        5,
        None,
        "sha256",
        5,
    )


# --- known answers, checked step by step without sifa's functions ---


def test_vectors_reproduce_byte_for_byte() -> None:
    assert VECTORS.read_text("utf-8") == make_disclosure_vectors.build()


def _hmac_sha256(key: bytes, msg: bytes) -> bytes:
    return hmac.new(key, msg, hashlib.sha256).digest()


def _event_key(secret: bytes, dossier: str, version: int) -> bytes:
    return _hmac_sha256(secret, b"sifa-salt/2\x00" + dossier.encode() + b"\x00" + str(version).encode())


def _salt_stream(key: bytes, count: int) -> bytes:
    return hashlib.shake_256(b"sifa-salts/2\x00" + key).digest(16 * count)


def _commit(path: str, value: Any, salt: bytes) -> str:
    return hashlib.sha256(
        b"sifa-commit/2" + b"\x00" + salt + path.encode("utf-8") + b"\x00" + rfc8785.dumps(value)
    ).hexdigest()


def test_vectors_by_hand() -> None:
    v = json.loads(VECTORS.read_text("utf-8"))
    secret, dossier = bytes.fromhex(v["secret"]), v["dossier"]
    assert _hmac_sha256(secret, b"sifa-dossier-ref/1\x00" + dossier.encode())[:16].hex() == v["dossier_ref"]
    for event in v["salts"]:
        assert _event_key(secret, dossier, event["version"]).hex() == event["event_key"]
        stream = _salt_stream(bytes.fromhex(event["event_key"]), len(event["paths"]))
        assert [stream[16 * k : 16 * k + 16].hex() for k in range(len(event["paths"]))] == event["salts"]
        assert event["paths"] == sorted(event["paths"], key=lambda p: p.encode("utf-16-be", "surrogatepass"))
    for c in v["commitments"]:
        assert _commit(c["path"], c["value"], base64.b64decode(c["salt"])) == c["commitment"]
    prev = None
    for item in v["leaves"]:
        given_, data = item["input"], item["leaf"].encode("utf-8")
        assert hashlib.sha256(b"\x00" + data).hexdigest() == item["leaf_hash"] and given_["prev"] == prev
        body = given_["body"]
        files = sorted(({"field": f, "sha256": body[f], "size": body.get("size") if f == "sha256" else None}
                        for f in ("sha256", "contract_sha256", "receipt_sha256", "package_sha256", "events_sha256",
                                  "checkpoint_sha256") if body.get(f)), key=lambda f: f["field"])  # fmt: skip
        commitments = {}
        order = list(json.loads(data)["commitments"])  # the k-th path of the leaf has the k-th salt
        stream = _salt_stream(_event_key(secret, dossier, given_["version"]), len(order))
        for d in item["disclosures"]:
            salt = base64.b64decode(d["salt"])
            k = order.index(d["path"])
            assert stream[16 * k : 16 * k + 16] == salt
            commitments[d["path"]] = _commit(d["path"], d["value"], salt)
        expected = {"format": "sifa-leaf/2", "origin": given_["origin"], "seq": given_["seq"],
                    "position": given_["position"], "dossier": v["dossier_ref"], "version": given_["version"],
                    "type": given_["type"], "time": given_["time"], "prev": prev, "files": files,
                    "commitments": commitments}  # fmt: skip
        assert rfc8785.dumps(expected) == data
        # the disclosures are the whole body: nothing is missing from the leaf, nothing else is in it
        paths = {d["path"] for d in item["disclosures"]}
        body_keys = {k for k in body if k not in ("size", *(f["field"] for f in files))}
        assert {p.split("/")[0].replace("~1", "/").replace("~0", "~") for p in paths} == body_keys
        assert all("salts" not in p.split("/") for p in paths)
        prev = item["leaf_hash"]
    for m in v["mismatches"]:
        leaf = read_leaf(v["leaves"][m["leaf"]]["leaf"].encode("utf-8"))
        with pytest.raises(DisclosureError) as caught:
            verify_disclosures(leaf, [m["disclosure"]])
        assert caught.value.code == m["code"]
    for m in v["malformed"]:
        with pytest.raises(MalformedLeafError) as refused:
            read_leaf(m["leaf"].encode("utf-8"))
        assert refused.value.code == m["code"]
    nfd = next(m["disclosure"] for m in v["mismatches"] if m["why"].startswith("NFD"))
    assert unicodedata.normalize("NFC", nfd["value"]) != nfd["value"]


def test_commitment_takes_another_hash_without_changing_shape() -> None:
    sm3_like = lambda data: hashlib.sha3_256(data).digest()  # noqa: E731 - a stand-in for SM3 (issue 21)
    salt = bytes(16)
    assert commitment("name", "张三", salt, sm3_like) == hashlib.sha3_256(
        b"sifa-commit/2\x00" + salt + b"name\x00" + rfc8785.dumps("张三")).hexdigest()  # fmt: skip
    data = leaf_of({"name": "张三"}, digest=sm3_like)
    leaf = read_leaf(data)
    [d] = opened({"name": "张三"})
    assert verify_disclosures(leaf, [d], sm3_like) == {"name": "张三"}
    with pytest.raises(DisclosureError):
        verify_disclosures(leaf, [d])  # checked with SHA-256, a SM3-like leaf does not open
    with pytest.raises(ValueError):
        commitment("name", "x", bytes(17))


def test_evidence_disclosure_needs_nothing_beyond_the_standard_library_and_ledger() -> None:
    """The lawyer's verifier installs only PyNaCl: no rfc8785, no eventsourcing, no dossier."""
    code = ("import sys; sys.modules['rfc8785'] = None; before = set(sys.modules); import evidence.disclosure; "
            "new = {m.split('.')[0] for m in set(sys.modules) - before}; "
            "print(sorted(new - set(sys.stdlib_module_names)))")  # fmt: skip
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=Path(__file__).parent.parent)  # fmt: skip
    assert set(json.loads(out.stdout.replace("'", '"'))) <= {"evidence", "ledger"}


def test_the_worked_example_in_docs_privacy_md_is_the_vectors() -> None:
    doc = (Path(__file__).parent.parent / "docs" / "privacy.md").read_text("utf-8")
    v = json.loads(VECTORS.read_text("utf-8"))
    [first] = [s for s in v["salts"] if s["version"] == 1]
    salt = first["salts"][first["paths"].index("case_number")]
    [c] = [c for c in v["commitments"] if c["path"] == "case_number"]
    for shown in (
        f"S={v['secret']}",
        f"D={v['dossier']}",
        v["dossier_ref"],
        first["event_key"],
        salt,
        c["salt"],
        c["commitment"],
        c["value"],
    ):
        assert shown in doc
    assert dossier_ref(bytes.fromhex(v["secret"]), v["dossier"]) == v["dossier_ref"]


@settings(max_examples=100, deadline=None)
@given(st.binary(min_size=32, max_size=200), st.integers(0, 2**40),
       st.sets(st.text(st.characters(blacklist_categories=["Cs"])), max_size=6))  # fmt: skip
def test_salts_are_hmac_sha256_then_shake256_for_any_secret_length(
    secret: bytes, version: int, paths: set[str]
) -> None:
    """event_key writes HMAC out over hashlib for speed: it must equal the standard library's HMAC;
    the salts are its SHAKE-256 stream cut in 16-byte pieces, in the leaf's (UTF-16) path order."""
    msg = b"sifa-salt/2\x00" + str(DOSSIER).encode() + b"\x00" + str(version).encode()
    key = hmac.new(secret, msg, hashlib.sha256).digest()
    assert event_key(secret, DOSSIER, version) == key
    order = sorted(paths, key=lambda p: p.encode("utf-16-be"))
    stream = hashlib.shake_256(b"sifa-salts/2\x00" + key).digest(16 * len(order))
    salts = event_salts(secret, DOSSIER, version, paths)
    assert list(salts) == order and list(salts.values()) == [stream[16 * k : 16 * k + 16] for k in range(len(order))]
    assert len(set(salts.values())) == len(order)


def test_one_disclosure_opens_its_field_alone_and_needs_no_other_salt() -> None:
    """A field's salt is one piece of the event's stream: the other pieces are not derivable from it
    (SHAKE-256 under a key only the node has), and each disclosure checks on its own."""
    body = {"a": "张三", "b": "李四", "c": {"d": 1}}
    leaf = read_leaf(leaf_of(body))
    shown = opened(body)
    for d in shown:
        assert verify_disclosures(leaf, [d]) == {d.path: d.value}
    salts = [d.salt for d in shown]
    assert len(set(salts)) == 3 and all(len(s) == 16 for s in salts)
    swapped = [Disclosure(shown[0].path, shown[0].value, shown[1].salt)]
    with pytest.raises(DisclosureError):
        verify_disclosures(leaf, swapped)


@pytest.mark.parametrize("key", ["name", "名称", "x~y/z", "𠀀字段", "a\u00e9"])
def test_build_leaf_fast_serialisation_is_rfc8785(key: str) -> None:
    """build_leaf serialises with the stdlib unless a path needs RFC 8785's UTF-16 key order."""
    import rfc8785

    body = {key: "值", "nested": {key: ["𠀀", 1, None, True]}, "sha256": "ab" * 32, "size": 3}
    leaf = build_leaf(origin=ORIGIN, seq=1, position=2, dossier=DOSSIER, version=3, type="T", time=WHEN,
                      prev=None, body=body, secret=SECRET)  # fmt: skip
    assert leaf == rfc8785.dumps(json.loads(leaf)) == canonical_json(json.loads(leaf))
