"""Nothing anyone sends stops the log: every command's leaf fits, every text field is bounded and clean."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dossier import fields
from dossier.application import Pending
from dossier.domain import PERSONAL_FIELDS, Dossier
from dossier.envelope import MAX_ENTRY_SIZE, MAX_ORIGIN_BYTES, leaf_bound, leaf_v2
from dossier.errors import DossierNotFoundError, InvalidDossierInputError
from ledger.errors import LeafTooLargeError
from tests.dossier_fixtures import Stack, make_stack, pdf_bytes
from tests.nodes import Node
from tests.test_group_commit import Held

ACT = {"actor": "clerk:li", "role": "clerk"}


def _full_party(n: int) -> dict[str, str]:
    return {"role": "原告" * 25, "name": "张" * 200, "id_number": f"{n:018d}", "phone": "1" * 64, "address": "址" * 500}


def test_a_dossier_of_200_full_parties_is_refused_and_the_log_seals(stack: Stack) -> None:
    """The clerk's attack: 200 parties, every field filled, made a leaf of ~110 kB that no pass could seal."""
    app = stack.app
    with pytest.raises((InvalidDossierInputError, LeafTooLargeError)):
        app.open_dossier(case_number_text="（2026）京0105民初1号", case_type="民事",
                         parties=[_full_party(n) for n in range(200)], **ACT)  # fmt: skip
    app.open_dossier(case_number_text="（2026）京0105民初2号", case_type="民事", parties=[_full_party(1)], **ACT)
    stack.sealer.seal()
    assert stack.log.size == 1


def _wait_receipt(node: Node, dossier: str, version: int) -> int:
    deadline = time.monotonic() + 10
    while True:
        r = node.http.get(f"/v1/dossiers/{dossier}/receipts/{version}", headers=node.as_("clerk"))
        if r.status_code == 200 or time.monotonic() > deadline:
            return r.status_code
        time.sleep(0.05)


def test_a_70000_character_doc_type_is_refused_and_the_log_seals(node: Node) -> None:
    """The lawyer's attack: a 70,000-character X-Doc-Type was accepted (201) and stopped the log for good."""
    r = node.http.post("/v1/dossiers", headers=node.as_("clerk"),
                       json={"case_number": "（2026）京0105民初70000号", "case_type": "民事"})  # fmt: skip
    d = r.json()["dossier"]
    assert node.http.post(f"/v1/principals/{node.ids['lawyer']}/admissions", json={"dossier": d},
                          headers=node.as_("clerk")).status_code == 204  # fmt: skip
    h = {**node.as_("lawyer"), "X-File-Name": quote("证据.pdf"), "Content-Type": "application/pdf"}
    r = node.http.post(f"/v1/dossiers/{d}/documents", content=pdf_bytes(1),
                       headers={**h, "X-Doc-Type": quote("证" * 70000)})  # fmt: skip
    assert r.status_code in (413, 422), r.text
    assert r.json()["code"] in ("invalid_request", "invalid_input", "leaf_too_large")
    r = node.http.post(f"/v1/dossiers/{d}/documents", content=pdf_bytes(1), headers=h)
    assert r.status_code == 201, r.text
    assert _wait_receipt(node, d, r.json()["version"]) == 200  # the log still seals


# --- the fields module: bounded, NFC, clean ---


@pytest.mark.parametrize(
    "bad",
    ["a\x00b", "a\x1bb", "a\x7fb", "a\x85b", "a\x9fb", "a\u202eb", "a\u202ab", "a\u2066b", "a\u2069b", "a\ud800b",
     "a\nb", "a\tb", "a\rb", "", "   ", None, 5, b"bytes"],
)  # fmt: skip
def test_a_single_line_text_refuses_controls_bidi_surrogates_and_blanks(bad: object) -> None:
    with pytest.raises(InvalidDossierInputError):
        fields.text(bad, "file name")


def test_multi_line_text_takes_line_feeds_and_tabs_only() -> None:
    assert fields.text("第一行\n\t第二行", "reason", multiline=True) == "第一行\n\t第二行"
    for bad in ("a\r\nb", "a\x00b", "a\x0bb", "a\x85b", "a\u202eb"):
        with pytest.raises(InvalidDossierInputError):
            fields.text(bad, "reason", multiline=True)


def test_text_is_nfc_and_bounded_in_code_points_after_nfc() -> None:
    assert fields.text("e\u0301", "doc type") == "\u00e9"
    limit = fields.LIMITS["doc type"]
    assert fields.text("𠀀" * limit, "doc type") == "𠀀" * limit  # four UTF-8 bytes each, still one character
    assert fields.text("e\u0301" * limit, "doc type") == "\u00e9" * limit  # 2x before NFC, at the limit after
    for bad in ("证" * (limit + 1), "e\u0301" * (limit + 1)):
        with pytest.raises(InvalidDossierInputError, match="more than 50"):
            fields.text(bad, "doc type")


@pytest.mark.parametrize(
    ("given", "recorded"),
    [("2026-11-22T08:00:00+08:00", "2026-11-22T00:00:00.000000Z"),
     ("2026-11-22T08:00:00Z", "2026-11-22T08:00:00.000000Z"),
     ("2026-11-22T08:00:00.5-05:00", "2026-11-22T13:00:00.500000Z")],
)  # fmt: skip
def test_times_are_iso_8601_with_an_offset_recorded_as_utc(given: str, recorded: str) -> None:
    assert fields.moment(given, "sent_at") == recorded


@given(st.datetimes(timezones=st.timezones()))
@settings(max_examples=300, deadline=None)
def test_utc_is_the_isoformat_of_the_same_instant(when: datetime) -> None:
    """``utc`` formats by hand (the sealer calls it once per event): the same text as the standard
    library's isoformat of the instant in UTC, for every year, offset and microsecond."""
    try:
        expected = when.astimezone(UTC).replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"
    except OverflowError:
        with pytest.raises(OverflowError):
            fields.utc(when)
        return
    assert fields.utc(when) == expected


@pytest.mark.parametrize(
    "bad",
    ["2026-11-22T08:00:00", "2026-11-22", "yesterday", "２０２６-11-22T08:00:00Z", "0001-01-01T00:00:00+01:00",
     "2026-11-22T08:00:00Z\x00", "2026-11-22T08:00:00Z" + " " * 60, None, 1700000000],
)  # fmt: skip
def test_a_time_without_offset_or_out_of_range_is_refused(bad: object) -> None:
    with pytest.raises(InvalidDossierInputError):
        fields.moment(bad, "sent_at")


def test_counts_are_integers_not_booleans_or_text() -> None:
    assert fields.count(3, "order", most=10) == 3
    for bad in (True, "3", 3.0, -1, 11):
        with pytest.raises(InvalidDossierInputError):
            fields.count(bad, "order", most=10)


def test_every_command_refuses_a_dirty_field_and_records_nothing(stack: Stack) -> None:
    app = stack.app
    d = app.open_dossier(case_number_text="（2026）京0105民初3号", case_type="民事", parties=[], **ACT)
    doc = app.upload(d, iter([b"x"]), name="起诉状.txt", media_type="text/plain", source="court", doc_type=None, **ACT)
    party = {"role": "原告", "name": "张三"}
    bad_party = {"role": "原告", "name": "张\u202e三"}
    refused = [
        lambda: app.open_dossier(
            case_number_text="（2026）京0105民初4号", case_type="民事", parties=[bad_party], **ACT
        ),
        lambda: app.open_dossier(
            case_number_text="（2026）京0105民初4号", case_type="民事", parties=[{**party, "nickname": "x"}], **ACT
        ),
        lambda: app.open_dossier(
            case_number_text="（2026）京0105民初4号", case_type="民事", parties=[party] * 101, **ACT
        ),
        lambda: app.open_dossier(
            case_number_text="（2026）京0105民初4号", case_type="民事", parties=[], actor="clerk:\x00", role="clerk"
        ),
        lambda: app.upload(
            d, iter([b"y"]), name="证据.pdf", media_type="application/pdf", source="court", doc_type="起诉状\x00", **ACT
        ),
        lambda: app.upload(
            d, iter([b"y"]), name="证据\u202e.pdf", media_type="application/pdf", source="court", doc_type=None, **ACT
        ),
        lambda: app.upload(
            d, iter([b"y"]), name="证据.pdf", media_type="应用/pdf", source="court", doc_type=None, **ACT
        ),
        lambda: app.catalogue(
            d,
            document_id=doc["document_id"],
            volume="正卷",
            category="起诉状",
            order=True,
            title="x",
            pages=None,
            **ACT,
        ),
        lambda: app.catalogue(
            d,
            document_id=doc["document_id"],
            volume="正卷",
            category="起诉状",
            order=1,
            title="x\x85",
            pages=None,
            **ACT,
        ),
        lambda: app.withdraw(d, document_id=doc["document_id"], reason="\u2066错误\u2069", **ACT),
        lambda: app.submit_evidence(
            d, sha256="ab" * 32, size="10", name="合同.pdf", submitter=party, description="", **ACT
        ),
        lambda: app.submit_evidence(
            d, sha256="ab" * 32, size=10, name="合同.pdf", submitter=party, description="描述\r\n", **ACT
        ),
        lambda: app.record_service(
            d,
            document_id=doc["document_id"],
            recipient=party,
            channel="平台",
            sent_at="2026-11-22T08:00:00",
            delivered_at=None,
            read_at=None,
            receipt_sha256=None,
            **ACT,
        ),
        lambda: app.record_service(
            d,
            document_id=doc["document_id"],
            recipient=party,
            channel="平台",
            sent_at="2026-11-22T08:00:00Z",
            delivered_at="later",
            read_at=None,
            receipt_sha256=None,
            **ACT,
        ),
        lambda: app.register_contract(
            d, contract_sha256="ab" * 32, parties=[party] * 51, signed_at="2026-01-01T00:00:00Z", **ACT
        ),
        lambda: app.register_contract(d, contract_sha256="ab" * 32, parties=[party], signed_at="2026-01-01", **ACT),
        lambda: app.transfer(d, to_court="1101-0200", kind="上诉", reason="x" * 2001, **ACT),
        lambda: app.archive(d, retention="²", package_sha256="0" * 64, **ACT),
        lambda: app.archive(d, retention="101", package_sha256="0" * 64, **ACT),
        lambda: app.retrieve(d, by_court="1101-0200", by="judge:\x1b", reason="调阅", **ACT),
    ]
    stack.sealer.seal()
    before = stack.log.size
    for n, command in enumerate(refused):
        with pytest.raises(InvalidDossierInputError):
            command()
        assert app.recorder.max_notification_id() == before, n
    stack.sealer.seal()
    assert stack.log.size == before


def test_a_declared_doc_type_is_nfc(stack: Stack) -> None:
    app = stack.app
    d = app.open_dossier(case_number_text="（2026）京0105民初5号", case_type="民事", parties=[], **ACT)
    up = app.upload(d, iter([b"x"]), name="cafe\u0301.txt", media_type="text/plain", source="court",
                    doc_type="cafe\u0301", **ACT)  # fmt: skip
    stored = app.get(d).documents[up["document_id"]]
    assert stored["doc_type"] == stored["name"].removesuffix(".txt") == "caf\u00e9"


# --- the backstop: a command whose leaf would not fit is refused when accepted ---


def test_a_command_whose_leaf_would_not_fit_is_refused_in_its_batch_alone(stack: Stack) -> None:
    """A command that reaches the aggregate with an oversized field (``retrieved`` records what its
    caller gives) is refused with leaf_too_large; the commands batched with it are recorded."""
    app = stack.app
    d = app.open_dossier(case_number_text="（2026）京0105民初6号", case_type="民事", parties=[], **ACT)
    held = Held(app, d)
    huge = app.enqueue(Pending(d, lambda x: x.retrieved(by_court="1101-0105", by=["读"] * 1000, reason="调阅", **ACT)))
    fine = app.retrieve.future(d, by_court="1101-0105", by="judge:wang", reason="调阅", **ACT)
    held.go()
    with pytest.raises(LeafTooLargeError, match="at most 65535"):
        huge.result(timeout=30)
    assert fine.result(timeout=30).version == 3
    stack.sealer.seal()
    assert stack.log.size == 3  # opened, the held evidence, the fine read: nothing of the refused one


def test_an_imported_dossier_whose_leaf_would_not_fit_is_refused(stack: Stack) -> None:
    """An import builds its events from another court's package, not through the field checks."""
    from dossier.domain import party

    app = stack.app
    d = Dossier(court="1101-0105", case_number="（2026）京0105民初7号", case_type="民事",
                parties=[party(_full_party(n)) for n in range(200)], actor="court:x", role="court")  # fmt: skip
    with pytest.raises(LeafTooLargeError):
        app.import_dossier(d)
    with pytest.raises(DossierNotFoundError):
        app.get(d.id)
    assert not app.recorder.max_notification_id()


def test_the_leaf_bound_holds_whatever_the_origin_position_and_prev(stack: Stack) -> None:
    app = stack.app
    d = app.open_dossier(case_number_text="（2026）京0105民初8号", case_type="民事", parties=[_full_party(1)], **ACT)
    stack.sealer.seal()
    [event] = app.repository.event_store.get(d)
    assert isinstance(event, Dossier.Event)
    worst = leaf_v2("o" * MAX_ORIGIN_BYTES, 2**53 - 1, 2**53 - 1, event, b"\xff" * 32, stack.sealer.secret)
    assert len(stack.log.entry(0)) < len(worst) <= leaf_bound(event)
    # a sifa-leaf/2 leaf's size does not grow with its texts: each field is a 64-digit commitment
    assert len(stack.log.entry(0)) == len(leaf_v2(stack.sealer.origin, 0, 1, event, None, bytes(32)))


# --- every command at its maxima: the leaf fits, the log seals ---

# The widest characters a field takes: 4-byte UTF-8 (CJK Extension B, emoji), 3-byte CJK, and what
# JSON escapes (a quote, a backslash; line feeds and tabs in multi-line text) — all NFC-stable.
WIDE = ("𠀀", "𪚥", "😀", "证", "據", '"', "\\", "é", "a")
MULTI = (*WIDE, "\n", "\t")


def _at_most(what: str, *, multiline: bool = False, alphabet: tuple[str, ...] = WIDE) -> st.SearchStrategy[str]:
    n = fields.LIMITS[what]
    return st.text(st.sampled_from(MULTI if multiline else alphabet), min_size=n, max_size=n).filter(str.strip)


@st.composite
def _full_parties(draw: st.DrawFn, n: int) -> list[dict[str, str]]:
    person = st.fixed_dictionaries({"role": _at_most("party role"), "kind": st.sampled_from(["natural", "legal"]),
                                    **{f: _at_most(f"party {f}") for f in PERSONAL_FIELDS}})  # fmt: skip
    one = draw(person)
    return [one] * n  # each record gets its own salts: n full records, drawn once for speed


@st.composite
def _maxed(draw: st.DrawFn) -> dict[str, Any]:
    name = draw(_at_most("file name", alphabet=tuple(c for c in WIDE if c != "\\")))  # no path separators
    return {
        "actor": draw(_at_most("actor")),
        "parties": draw(_full_parties(fields.MAX_PARTIES)),
        "contract_parties": draw(_full_parties(fields.MAX_CONTRACT_PARTIES)),
        "name": name,
        "doc_type": draw(_at_most("doc type")),
        "category": draw(_at_most("category")),
        "title": draw(_at_most("title")),
        "evidence_name": draw(_at_most("evidence name")),
        "description": draw(_at_most("description", multiline=True)),
        "channel": draw(_at_most("channel")),
        "reason": draw(_at_most("reason", multiline=True)),
        "reader": draw(_at_most("reader")),
    }


_numbers = iter(range(100_000, 1_000_000))


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(_maxed())
def test_every_command_at_its_maxima_fits_one_leaf_and_the_log_seals(tmp_path_factory: pytest.TempPathFactory,
                                                                     m: dict[str, Any]) -> None:  # fmt: skip
    stack = _max_stack(tmp_path_factory)
    app, log = stack.app, stack.log
    act = {"actor": m["actor"], "role": "clerk"}
    number = f"（2026）京010500民初民初民初{next(_numbers):07d}号"  # the longest case number there is
    d = app.open_dossier(case_number_text=number, case_type="非诉保全", parties=m["parties"], **act)
    up = app.upload(d, iter([b"x"]), name=m["name"], media_type="application/" + "x" * 243, source="court",
                    doc_type=m["doc_type"], **act)  # fmt: skip
    doc = up["document_id"]
    app.catalogue(d, document_id=doc, volume="副卷", category=m["category"], order=fields.MAX_ORDER,
                  title=m["title"], pages=fields.MAX_PAGES, **act)  # fmt: skip
    app.submit_evidence(d, sha256="ab" * 32, size=fields.MAX_SIZE, name=m["evidence_name"],
                        submitter=m["parties"][0], description=m["description"], **act)  # fmt: skip
    app.record_service(d, document_id=doc, recipient=m["parties"][0], channel=m["channel"],
                       sent_at="2026-11-22T08:00:00.123456+08:00", delivered_at="2026-11-22T08:00:00.123456+08:00",
                       read_at="2026-11-22T08:00:00.123456+08:00", receipt_sha256="cd" * 32, **act)  # fmt: skip
    app.register_contract(d, contract_sha256="ef" * 32, parties=m["contract_parties"],
                          signed_at="2026-11-22T08:00:00.123456+08:00", **act)  # fmt: skip
    app.retrieve(d, by_court="1101-0105", by=m["reader"], reason=m["reason"], **act)
    app.withdraw(d, document_id=doc, reason=m["reason"], **act)
    app.transfer(d, to_court="1101-0200", kind="再审", reason=m["reason"], **act)
    app.archive(d, retention="100", package_sha256="0" * 64, **act)
    before = log.size
    stack.sealer.seal()
    events = list(app.repository.event_store.get(d))
    assert log.size == before + len(events) == before + 11  # every event sealed: the log did not stop
    largest = 0
    for i, event in enumerate(events):
        assert isinstance(event, Dossier.Event)
        leaf = log.entry(before + i)
        assert len(leaf) <= leaf_bound(event) <= MAX_ENTRY_SIZE
        largest = max(largest, len(leaf))
    assert largest > 40_000  # the opening with every party full: near the limit, on purpose


_STACKS: dict[str, Stack] = {}


def _max_stack(factory: pytest.TempPathFactory) -> Stack:
    """One stack for every example (Hypothesis runs a test many times in one fixture's life)."""
    if "s" not in _STACKS:
        _STACKS["s"] = make_stack("sqlite", factory.mktemp("maxima"))
    return _STACKS["s"]


@pytest.fixture(scope="module", autouse=True)
def _close_max_stack() -> Iterator[None]:
    yield
    if "s" in _STACKS:
        _STACKS.pop("s").close()


# --- raw UTF-8 headers are refused, never sealed as mojibake ---


@pytest.mark.parametrize(
    ("headers", "status", "code", "named"),
    [
        ({"X-File-Name": "证据目录.pdf".encode()}, 400, "header_not_ascii", "X-File-Name"),
        ({"X-Doc-Type": "起诉状".encode()}, 400, "header_not_ascii", "X-Doc-Type"),
        ({"Content-Type": "application/pdf; name=证据.pdf".encode()}, 400, "header_not_ascii", "Content-Type"),
        ({"X-Content-SHA256": "证".encode() * 21 + b"a"}, 400, "header_not_ascii", "X-Content-SHA256"),
        ({"X-Doc-Type": "%E8%B5%B7%E8%AF%89%FF"}, 400, "invalid_encoding", None),
        ({"X-Doc-Type": "%ED%A0%80"}, 400, "invalid_encoding", None),  # a surrogate, which UTF-8 never encodes
        ({"X-Doc-Type": "%E8%B5%B7%00"}, 422, "invalid_input", None),
        ({"X-File-Name": "a%E2%80%AEfdp.exe"}, 422, "invalid_input", None),  # U+202E: "a" + "exe.pdf" reversed
    ],
)
def test_a_text_header_is_percent_encoded_ascii_or_refused(
    node: Node, headers: dict[str, object], status: int, code: str, named: str | None
) -> None:
    d = _dossier_for_lawyer(node)
    before = node.http.get(f"/v1/dossiers/{d}/events", headers=node.as_("clerk")).json()
    h: dict[str, Any] = {**node.as_("lawyer"), "X-File-Name": quote("证据目录.pdf"), "Content-Type": "application/pdf"}
    r = node.http.post(f"/v1/dossiers/{d}/documents", content=pdf_bytes(1), headers={**h, **headers})
    assert (r.status_code, r.json()["code"]) == (status, code), r.text
    if named is not None:  # the message names the header and says how to send it
        assert named in r.json()["message"] and "not ASCII" in r.json()["message"]
        if named.startswith("X-File") or named.startswith("X-Doc"):
            assert "percent-encoded UTF-8" in r.json()["message"]
    after = node.http.get(f"/v1/dossiers/{d}/events", headers=node.as_("clerk")).json()
    assert [e["type"] for e in after if e["type"] != "Retrieved"] == [
        e["type"] for e in before if e["type"] != "Retrieved"
    ]


def test_a_percent_encoded_name_and_type_are_stored_as_sent(node: Node) -> None:
    d = _dossier_for_lawyer(node)
    h = {**node.as_("lawyer"), "X-File-Name": quote("证据目录.pdf"), "X-Doc-Type": quote("证据材料"),
         "Content-Type": "application/pdf"}  # fmt: skip
    r = node.http.post(f"/v1/dossiers/{d}/documents", content=pdf_bytes(1) + b"named", headers=h)
    assert r.status_code == 201, r.text
    stored = node.http.get(f"/v1/dossiers/{d}", headers=node.as_("clerk")).json()["documents"][r.json()["document_id"]]
    assert (stored["name"], stored["doc_type"]) == ("证据目录.pdf", "证据材料")


_lawyer_dossiers = iter(range(71000, 72000))


def _dossier_for_lawyer(node: Node) -> str:
    number = f"（2026）京0105民初{next(_lawyer_dossiers)}号"
    r = node.http.post("/v1/dossiers", headers=node.as_("clerk"), json={"case_number": number, "case_type": "民事"})
    d: str = r.json()["dossier"]
    assert node.http.post(f"/v1/principals/{node.ids['lawyer']}/admissions", json={"dossier": d},
                          headers=node.as_("clerk")).status_code == 204  # fmt: skip
    return d
