"""Key history (docs/keys.md): ``sifa rotate-key`` twice, receipts of every era verified with a trust
file pinning only the first key, a key compromised from a leaf on refused by verifiers and witnesses,
witness keys rotated through the trust file's windows."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from api.cli import main as sifa
from api.keys import rotate_key
from api.node import NodeError, load_signer, open_tree_store
from ledger.checkpoint import Checkpoint, sign_checkpoint
from ledger.cosignature import CosignatureSigner, QuorumError, require_quorum
from ledger.keys import LABEL, KeyHistory, KeyHistoryError, follow, read_rotation
from ledger.log import MerkleLog
from ledger.note import Ed25519Signer, Ed25519Verifier, Note, add_signatures
from ledger.receipt import Receipt
from ledger.trust import parse_trust
from ledger.witness import Witness, add_checkpoint_request
from ledger.witness_sqlite import SQLiteWitnessState
from tests.nodes import run_verify
from verifier.cli import main as sifa_verify

ORIGIN = "sifa.court/1101-0105"
WHEN = "2026-12-01T08:00:00Z"


def leaf(i: int) -> bytes:
    return json.dumps(
        {"type": "DocumentUploaded", "seq": i, "time": WHEN, "名称": "判决书"}, ensure_ascii=False
    ).encode()


@dataclass
class Node:
    data: Path
    first: Ed25519Signer  # the key the node was created with, the one a trust file pins

    def grow(self, n: int) -> int:
        """Append ``n`` leaves signed as the sequencer signs; return the new size."""
        store = open_tree_store(self.data, "")
        try:
            log = MerkleLog(store)
            log.append([leaf(log.size + i) for i in range(n)], signer=load_signer(self.data))
            return log.size
        finally:
            store.close()

    def receipt(self, index: int, size: int) -> Receipt:
        store = open_tree_store(self.data, "")
        try:
            return MerkleLog(store).receipt(index, WHEN, size=size)
        finally:
            store.close()

    def checkpoint(self, size: int) -> str:
        store = open_tree_store(self.data, "")
        try:
            kept = store.checkpoint(size)
            assert kept is not None
            return kept[1]
        finally:
            store.close()


@pytest.fixture
def node(tmp_path: Path) -> Iterator[Node]:
    data = tmp_path / "node"
    assert sifa(["init", str(data), "--court", "1101-0105", "--name", "北京市朝阳区人民法院"]) == 0
    yield Node(data, load_signer(data))


def trust(path: Path, *logs: dict[str, Any], witnesses: list[dict[str, Any]] | None = None, quorum: int = 0) -> Path:
    path.write_text(json.dumps({"logs": list(logs), "witnesses": witnesses or [], "quorum": quorum}), encoding="utf-8")
    return path


def verify(tmp_path: Path, receipt: Receipt | dict[str, Any], trust_path: Path, capsys: pytest.CaptureFixture[str],
           *extra: str) -> tuple[int, dict[str, Any]]:  # fmt: skip
    code, result, err = run_verify(tmp_path, receipt, trust_path, capsys, *extra)
    return code, result or {"err": err}


def rotated_twice(node: Node, capsys: pytest.CaptureFixture[str]) -> dict[str, Receipt]:
    """Three eras: 3 leaves under the first key, 3 under the second, 3 under the third."""
    receipts = {"first": node.receipt(1, node.grow(3))}
    assert sifa(["rotate-key", "--data-dir", str(node.data)]) == 0
    second = capsys.readouterr().out.strip()
    receipts["second"] = node.receipt(5, node.grow(3))  # leaf 3 is the rotation
    vkey, index = rotate_key(node.data)
    assert index == 7 and vkey != second and load_signer(node.data).verifier.vkey() == vkey
    receipts["third"] = node.receipt(9, node.grow(3))
    return receipts


def test_receipts_of_every_era_verify_with_a_trust_file_pinning_the_first_key(
    node: Node, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    receipts = rotated_twice(node, capsys)
    pinned = trust(tmp_path / "t.json", {"key": node.first.verifier.vkey()})
    assert "key_history" not in receipts["first"].parts
    assert len(receipts["second"].parts["key_history"]["entries"]) == 1
    assert len(receipts["third"].parts["key_history"]["entries"]) == 2
    for era, receipt in receipts.items():
        assert Receipt.from_json(receipt.to_json()) == receipt
        code, result = verify(tmp_path, receipt, pinned, capsys)
        assert code == 0, (era, result)
        if era != "first":
            assert result["checks"][0]["check"] == "key_history" and result["checks"][0]["ok"]
    # The later eras' checkpoints are not signed by the first key: without the history they do not verify.
    bare = receipts["third"].to_dict()
    del bare["key_history"]
    code, result = verify(tmp_path, bare, pinned, capsys)
    assert code == 1 and result["checks"][-1]["code"] == "checkpoint_unknown_key"
    # The node's retired keys are kept; its audit follows the history (every checkpoint verifies).
    assert len(list(node.data.glob("log.key.*.retired"))) == 2


def test_a_rotation_not_signed_by_the_current_key_is_refused(
    node: Node, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    receipt = rotated_twice(node, capsys)["third"]
    doc = receipt.to_dict()
    entries = doc["key_history"]["entries"]
    entries[0], entries[1] = entries[1], entries[0]  # the order is the leaves' order whatever the list says
    code, _ = verify(tmp_path, doc, trust(tmp_path / "t.json", {"key": node.first.verifier.vkey()}), capsys)
    assert code == 0
    stranger = Ed25519Signer.generate(ORIGIN)  # pinned instead of the first key: nothing it hands on to
    code, result = verify(tmp_path, receipt, trust(tmp_path / "s.json", {"key": stranger.verifier.vkey()}), capsys)
    assert code == 1 and result["checks"][0]["code"] == "key_history_invalid"
    entry = json.loads(base64.b64decode(entries[0]["leaf"]))
    entry["signatures"]["old"] = entry["signatures"]["new"]
    entries[0]["leaf"] = base64.b64encode(json.dumps(entry).encode()).decode()
    code, result = verify(tmp_path, doc, trust(tmp_path / "t.json", {"key": node.first.verifier.vkey()}), capsys)
    assert code == 1 and result["checks"][0]["code"] == "key_history_invalid"


def test_follow_refuses_a_second_rotation_by_a_retired_key() -> None:
    k1, k2, k3 = (Ed25519Signer.generate(ORIGIN) for _ in range(3))
    from ledger.keys import rotation_leaf

    r1 = read_rotation(rotation_leaf(k1, k2, 4, WHEN), 4)
    fork = read_rotation(rotation_leaf(k1, k3, 9, WHEN), 9)  # the old key, used again after it was replaced
    keys = follow([k1.verifier], [r1])
    assert [(k.first_size, k.last_size) for k in keys] == [(0, 4), (5, None)]
    with pytest.raises(KeyHistoryError):
        follow([k1.verifier], [r1, fork])


def forged_after_compromise(node: Node, capsys: pytest.CaptureFixture[str]) -> tuple[Receipt, Receipt, int]:
    """The first key, stolen, is marked compromised from leaf 2; the thief signs a checkpoint of size 4."""
    node.grow(2)
    node.grow(2)
    stolen = load_signer(node.data)
    assert sifa(["rotate-key", "--data-dir", str(node.data), "--compromised-from", "2"]) == 0
    capsys.readouterr()
    later = node.receipt(3, node.grow(1))  # the honest log, under the new key
    store = open_tree_store(node.data, "")
    try:
        log = MerkleLog(store)
        forged_note = sign_checkpoint(Checkpoint(ORIGIN, 4, log.root(4)), stolen)
        forged = Receipt.build(
            origin=ORIGIN,
            leaf_index=3,
            leaf_data=log.entry(3),
            inclusion_proof=log.inclusion_proof(3, 4),
            checkpoint=Checkpoint.from_text(forged_note.text),
            checkpoint_note=forged_note,
            recorded_at=WHEN,
        )
    finally:
        store.close()
    return forged, later, 4


def test_a_checkpoint_signed_after_the_compromise_is_refused(
    node: Node, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    forged, later, _ = forged_after_compromise(node, capsys)
    pinned = trust(tmp_path / "t.json", {"key": node.first.verifier.vkey()})
    history = tmp_path / "keys.json"
    history.write_text(json.dumps(later.parts["key_history"]))  # what GET /v1/log/keys answers
    code, result = verify(tmp_path, forged, pinned, capsys, "--keys", str(history))
    assert code == 1 and result["checks"][-1]["code"] == "log_key_not_valid"
    assert "compromised from leaf 2" in result["checks"][-1]["detail"]
    code, _ = verify(tmp_path, later, pinned, capsys, "--keys", str(history))
    assert code == 0
    # A trust file that says so refuses it without any history; a checkpoint up to the leaf is still good.
    marked = trust(tmp_path / "m.json", {"key": node.first.verifier.vkey(), "compromised_from": 2})
    code, result = verify(tmp_path, forged, marked, capsys)
    assert code == 1 and result["checks"][-1]["code"] == "log_key_not_valid"
    code, _ = verify(tmp_path, node.receipt(1, 2), marked, capsys)
    assert code == 0  # a checkpoint up to the compromised leaf is still the first key's to sign
    code, _ = verify(tmp_path, forged, pinned, capsys)
    assert code == 0  # the limit (docs/keys.md): told neither the history nor the mark, a verifier cannot know


def test_a_witness_refuses_a_checkpoint_signed_after_the_compromise(
    node: Node, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    forged, _, size = forged_after_compromise(node, capsys)
    logs = parse_trust({"logs": [{"key": node.first.verifier.vkey(), "compromised_from": 2}]}).logs
    witness = Witness(CosignatureSigner.generate("sifa.witness/test"), logs, SQLiteWitnessState(tmp_path / "w.db"))
    answer = witness.add_checkpoint(add_checkpoint_request(0, [], Note.from_text(forged.checkpoint)))
    assert answer.status == 403 and size == 4
    root = Checkpoint.from_text(Note.from_text(node.checkpoint(2)).text).root_hash
    honest = sign_checkpoint(Checkpoint(ORIGIN, 2, root), node.first)
    assert witness.add_checkpoint(add_checkpoint_request(0, [], honest)).status == 200


def test_rotate_key_refuses_while_a_sequencer_runs_and_a_bad_index(
    node: Node, capsys: pytest.CaptureFixture[str]
) -> None:
    node.grow(2)
    store = open_tree_store(node.data, "")
    try:
        with store.sequencer_lock(), pytest.raises(NodeError):
            rotate_key(node.data)
    finally:
        store.close()
    assert sifa(["rotate-key", "--data-dir", str(node.data), "--compromised-from", "9"]) == 2
    assert "compromised-from" in capsys.readouterr().err
    assert load_signer(node.data).key_id == node.first.key_id and not (node.data / "log.key.next").exists()
    store = open_tree_store(node.data, "")
    try:
        assert MerkleLog(store).find(LABEL) == [] and store.state().size == 2
    finally:
        store.close()


def test_the_node_serves_its_key_history(node: Node, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from fastapi.testclient import TestClient

    from api.app import create_app
    from api.settings import Settings

    receipts = rotated_twice(node, capsys)
    with TestClient(create_app(Settings(data_dir=node.data))) as client:
        doc = client.get("/v1/log/keys").json()
    history = KeyHistory.from_dict(doc)
    assert [i for i, _, _ in history.entries] == [3, 7]
    path = tmp_path / "keys.json"
    path.write_text(json.dumps(doc))
    bare = receipts["third"].to_dict()
    del bare["key_history"]
    code, _ = verify(tmp_path, bare, trust(tmp_path / "t.json", {"key": node.first.verifier.vkey()}), capsys,
                     "--keys", str(path))  # fmt: skip
    assert code == 0


def test_witness_keys_rotate_through_the_trust_file_windows() -> None:
    old, new = CosignatureSigner.generate("sifa.witness/w"), CosignatureSigner.generate("sifa.witness/w")
    log = Ed25519Signer.generate(ORIGIN)
    note = sign_checkpoint(Checkpoint(ORIGIN, 1, b"\x01" * 32), log)
    doc = {"logs": [{"key": log.verifier.vkey()}], "quorum": 1, "witnesses": [
        {"key": old.verifier.vkey(), "not_after": 1000}, {"key": new.verifier.vkey(), "not_before": 1000}]}  # fmt: skip
    t = parse_trust(doc)
    assert require_quorum(add_signatures(note, [old.cosign(note.text, 999)]), t.witnesses, 1) == {"sifa.witness/w": 999}
    assert require_quorum(add_signatures(note, [new.cosign(note.text, 2000)]), t.witnesses, 1) == {
        "sifa.witness/w": 2000
    }
    with pytest.raises(QuorumError):  # the retired key's cosignature after its window vouches for nothing
        require_quorum(add_signatures(note, [old.cosign(note.text, 2000)]), t.witnesses, 1)


def test_audit_follows_the_key_history_and_skips_rotation_leaves(tmp_path: Path) -> None:
    """A node's own audit after a rotation: events still match their leaves, every checkpoint verifies."""
    from dossier.audit import audit
    from ledger.keys import rotation_leaf
    from tests.dossier_fixtures import make_stack

    act = {"actor": "clerk:keys", "role": "clerk"}
    stack = make_stack("sqlite", tmp_path)
    try:
        app = stack.app

        def upload(k: int) -> None:
            d = app.open_dossier(case_number_text=f"（2026）京0105民初{k}号", case_type="民事",
                                 parties=[{"role": "原告", "name": "张三"}], **act)  # fmt: skip
            app.upload(d, iter([f"文书 {k}\n".encode()]), name="文书.txt", media_type="text/plain", source="court",
                       doc_type=None, **act)  # fmt: skip
            stack.sealer.seal()

        upload(1)
        new = Ed25519Signer.generate(stack.signer.name)
        state = stack.log.store.state()
        rotation = rotation_leaf(stack.signer, new, state.size, WHEN)
        stack.log.append([rotation], cursor=state.cursor, labels=[[LABEL]], signer=new, base=state)
        stack.sealer.signer = new
        upload(2)
        report = audit(app, stack.log, app.blobs, new.verifier, secret=stack.sealer.secret)
    finally:
        stack.close()
    assert report.findings == [] and report.leaves == report.events + 1 and report.checkpoints == 3


def test_a_dossier_package_after_a_rotation_verifies_with_the_first_key_and_the_history(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """sifa-verify --dossier --keys: a package proved against a checkpoint of the new key."""
    from dossier.package import plan_package
    from ledger.keys import rotation_leaf
    from tests.dossier_fixtures import make_stack

    act = {"actor": "clerk:keys", "role": "clerk"}
    stack = make_stack("sqlite", tmp_path / "node")
    try:
        app, first = stack.app, stack.signer
        d = app.open_dossier(case_number_text="（2026）京0105民初7号", case_type="民事",
                             parties=[{"role": "原告", "name": "张三"}], **act)  # fmt: skip
        app.upload(d, iter(["起诉状\n".encode()]), name="起诉状.txt", media_type="text/plain", source="court",
                   doc_type=None, **act)  # fmt: skip
        stack.sealer.seal()
        before = plan_package(stack.sealer, str(d), court_name="北京市朝阳区人民法院", purpose="上诉")
        (tmp_path / "before.tar").write_bytes(b"".join(before.stream(app.blobs)))  # signed by the first key
        new = Ed25519Signer.generate(first.name)
        state = stack.log.store.state()
        stack.log.append([rotation_leaf(first, new, state.size, WHEN)], cursor=state.cursor, labels=[[LABEL]],
                         signer=new, base=state)  # fmt: skip
        stack.sealer.signer = new
        app.upload(d, iter(["答辩状\n".encode()]), name="答辩状.txt", media_type="text/plain", source="court",
                   doc_type=None, **act)  # fmt: skip
        stack.sealer.seal()
        plan = plan_package(stack.sealer, str(d), court_name="北京市朝阳区人民法院", purpose="上诉")
        (tmp_path / "dossier.tar").write_bytes(b"".join(plan.stream(app.blobs)))
        kept = stack.log.store.checkpoint()
        assert kept is not None
        history = stack.log.key_history(kept[0], kept[1])
        assert history is not None
    finally:
        stack.close()
    (tmp_path / "keys.json").write_text(json.dumps(history.to_dict()))
    pinned = trust(tmp_path / "t.json", {"key": first.verifier.vkey()})
    args = ["--dossier", str(tmp_path / "dossier.tar"), "--trust", str(pinned), "--json"]
    assert sifa_verify(args) == 1
    capsys.readouterr()
    assert sifa_verify([*args, "--keys", str(tmp_path / "keys.json")]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["valid"] and result["events"] == 5 and result["checks"][0]["check"] == "key_history"
    # A package proved only against the replaced key's checkpoint: that key may have been stolen, and its
    # tree may be a fork; refused once the history says it was replaced (ask for a fresh package).
    old = ["--dossier", str(tmp_path / "before.tar"), "--trust", str(pinned), "--json"]
    assert sifa_verify(old) == 0
    capsys.readouterr()
    assert sifa_verify([*old, "--keys", str(tmp_path / "keys.json")]) == 1
    refused = json.loads(capsys.readouterr().out)
    assert not refused["valid"] and refused["checks"][-1]["code"] == "log_key_retired"


def test_a_rotation_interrupted_before_the_new_key_is_installed_is_finished_not_repeated(
    node: Node, monkeypatch: pytest.MonkeyPatch
) -> None:
    import api.keys

    node.grow(2)
    real = api.keys._install

    def crash(data_dir: Path, old: Ed25519Signer) -> None:
        raise OSError("power lost")

    monkeypatch.setattr(api.keys, "_install", crash)
    with pytest.raises(OSError):
        rotate_key(node.data)
    pending = Ed25519Signer.from_skey((node.data / "log.key.next").read_text())
    assert load_signer(node.data).key_id == node.first.key_id  # not installed yet
    monkeypatch.setattr(api.keys, "_install", real)
    vkey, index = rotate_key(node.data)
    assert vkey == pending.verifier.vkey() and index == 2 and load_signer(node.data).key_id == pending.key_id
    store = open_tree_store(node.data, "")
    try:
        assert MerkleLog(store).find(LABEL) == [2] and store.state().size == 3  # one rotation leaf, not two
    finally:
        store.close()


def test_the_monitor_follows_a_rotation_and_alarms_on_a_retired_key(
    node: Node, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """sifa monitor pinning the first key: a rotated log grows consistently; a checkpoint the replaced
    key signs after the rotation is an alarm."""
    from api.app import create_app
    from api.settings import Settings
    from tests.nodes import free_port, in_thread
    from verifier.monitor import check

    pinned = parse_trust({"logs": [{"key": node.first.verifier.vkey()}]})
    state = tmp_path / "monitor.json"
    port = free_port()
    with in_thread(create_app(Settings(data_dir=node.data, port=port)), port):
        assert check(f"http://127.0.0.1:{port}", pinned, state).ok
    rotated_twice(node, capsys)
    with in_thread(create_app(Settings(data_dir=node.data, port=port)), port):
        round_ = check(f"http://127.0.0.1:{port}", pinned, state)
    assert round_.ok and "consistently" in round_.detail, round_
    store = open_tree_store(node.data, "")
    try:  # the first key, retired since leaf 3, signs the latest tree: as a thief holding it would
        log = MerkleLog(store)
        size = log.size
        store.save_checkpoint(size, sign_checkpoint(Checkpoint(ORIGIN, size, log.root(size)), node.first).to_text())
    finally:
        store.close()
    with in_thread(create_app(Settings(data_dir=node.data, port=port)), port):
        round_ = check(f"http://127.0.0.1:{port}", pinned, state)
    assert not round_.ok and round_.alarm == "bad_signature" and "which signs sizes 0 to 3" in round_.detail


def thiefs_fork(node: Node, tmp_path: Path, stolen: Ed25519Signer, at: int) -> dict[str, Any]:
    """A thief holding the first key builds a log of the same origin: the honest leaves below ``at``,
    a rotation from the stolen key to his own at ``at``, then a forged record; his receipt for it
    carries his key history."""
    from ledger.keys import rotation_leaf
    from ledger.sqlite import SQLiteTreeStore

    thief = Ed25519Signer.generate(ORIGIN)
    store = SQLiteTreeStore(tmp_path / "fork.sqlite")
    fork = MerkleLog(store)
    honest = open_tree_store(node.data, "")
    try:
        fork.append([MerkleLog(honest).entry(i) for i in range(at)], signer=stolen)
    finally:
        honest.close()
    fork.append([rotation_leaf(stolen, thief, at, WHEN)], signer=thief)
    fork.append(
        [json.dumps({"type": "DocumentUploaded", "seq": 99, "time": WHEN, "伪造": True}).encode()], signer=thief
    )
    forged = fork.receipt(fork.size - 1, WHEN).to_dict()
    history = KeyHistory(
        store.checkpoint(fork.size)[1], ((at, fork.entry(at), tuple(fork.inclusion_proof(at, fork.size))),)
    )  # type: ignore[index]
    forged["key_history"] = history.to_dict()
    store.close()
    return forged


def test_a_thiefs_key_history_beside_the_courts_is_a_fork(
    node: Node, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    node.grow(4)
    stolen = load_signer(node.data)
    assert sifa(["rotate-key", "--data-dir", str(node.data), "--compromised-from", "2"]) == 0
    capsys.readouterr()
    honest = node.receipt(5, node.grow(1))
    history = tmp_path / "keys.json"
    history.write_text(json.dumps(honest.parts["key_history"]))  # the court's, as GET /v1/log/keys answers
    pinned = trust(tmp_path / "t.json", {"key": node.first.verifier.vkey()})
    assert verify(tmp_path, honest, pinned, capsys, "--keys", str(history))[0] == 0
    for at in (4, 2, 6):  # the court's rotation index, before it, after it
        (tmp_path / "fork.sqlite").unlink(missing_ok=True)
        forged = thiefs_fork(node, tmp_path, stolen, at)
        code, result = verify(tmp_path, forged, pinned, capsys, "--keys", str(history))
        assert code == 1 and result["checks"][0]["code"] == "key_history_invalid", (at, result)
        assert "forked" in result["checks"][0]["detail"]
        # Given as two --keys files, the same.
        mine = tmp_path / "thief.json"
        mine.write_text(json.dumps(forged["key_history"]))
        code, result = verify(tmp_path, honest, pinned, capsys, "--keys", str(history), "--keys", str(mine))
        assert code == 1 and result["checks"][0]["code"] == "key_history_invalid", at


def test_a_replaced_keys_checkpoint_needs_a_proof_that_the_current_log_extends_it(
    node: Node, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    node.grow(4)
    stolen = load_signer(node.data)
    old_receipt = node.receipt(1, 4)  # issued before the rotation, signed by the first key
    assert sifa(["rotate-key", "--data-dir", str(node.data)]) == 0
    capsys.readouterr()
    later = node.receipt(5, node.grow(1))
    history = tmp_path / "keys.json"
    history.write_text(json.dumps(later.parts["key_history"]))
    pinned = trust(tmp_path / "t.json", {"key": node.first.verifier.vkey()})
    # The thief signs a fork of size 2 with the replaced key: inside its window, but a fork.
    from ledger.sqlite import SQLiteTreeStore

    fork = MerkleLog(SQLiteTreeStore(tmp_path / "fork.sqlite"))
    fork.append([json.dumps({"type": "DocumentUploaded", "seq": i, "time": WHEN, "伪造": True}).encode()
                 for i in range(2)], signer=stolen)  # fmt: skip
    forged = fork.receipt(0, WHEN)
    code, result = verify(tmp_path, forged, pinned, capsys, "--keys", str(history))
    assert code == 1 and result["checks"][-1]["code"] == "log_key_retired", result
    # An honest receipt under the replaced key, kept from before: refused the same way, until fresh.
    code, result = verify(tmp_path, old_receipt, pinned, capsys, "--keys", str(history))
    assert code == 1 and result["checks"][-1]["code"] == "log_key_retired"
    assert "fresh receipt" in result["checks"][-1]["detail"]
    # One the node issues now for that old checkpoint carries the proof to the current key's tree.
    proved = node.receipt(1, 4)
    assert "key_consistency" in proved.parts and len(proved.parts["key_history"]["entries"]) == 1
    assert Receipt.from_json(proved.to_json()) == proved
    assert verify(tmp_path, proved, pinned, capsys)[0] == 0
    assert verify(tmp_path, proved, pinned, capsys, "--keys", str(history))[0] == 0
    # The forged one with the honest proof grafted on: not consistent.
    grafted = forged.to_dict() | {"key_consistency": proved.parts["key_consistency"],
                                  "key_history": proved.parts["key_history"]}  # fmt: skip
    code, result = verify(tmp_path, grafted, pinned, capsys)
    assert code == 1 and result["checks"][-1]["code"] == "log_key_retired" and "fork" in result["checks"][-1]["detail"]
    # A proof's checkpoint signed by the replaced key itself does not do.
    selfish = proved.to_dict()
    selfish["key_consistency"] = {"checkpoint": node.checkpoint(4), "proof": []}
    code, result = verify(tmp_path, selfish, pinned, capsys)
    assert code == 1 and result["checks"][-1]["code"] == "log_key_retired"
    # A malformed part is an input error.
    selfish["key_consistency"] = {"checkpoint": node.checkpoint(4), "proof": "x"}
    code, result = verify(tmp_path, selfish, pinned, capsys)
    assert code == 2


@pytest.mark.parametrize("window", ["compromised", "until", "compromised_both"])
def test_trust_file_windows_written_as_the_docs_say_agree_with_the_honest_history(
    node: Node, tmp_path: Path, capsys: pytest.CaptureFixture[str], window: str
) -> None:
    node.grow(4)
    first = node.first.verifier.vkey()
    assert sifa(["rotate-key", "--data-dir", str(node.data), "--compromised-from", "2"]) == 0
    second = capsys.readouterr().out.strip()
    honest = node.receipt(5, node.grow(1))
    logs: dict[str, list[dict[str, Any]]] = {
        "compromised": [{"key": first, "compromised_from": 2}],
        "until": [{"key": first, "until_size": 4}, {"key": second, "from_size": 5}],
        "compromised_both": [{"key": first, "compromised_from": 2}, {"key": second, "from_size": 5}],
    }
    code, result = verify(tmp_path, honest, trust(tmp_path / "t.json", *logs[window]), capsys)
    assert code == 0, result


def test_two_rotate_keys_at_once_never_fork_the_history(node: Node, capsys: pytest.CaptureFixture[str]) -> None:
    """Each round starts two ``sifa rotate-key`` processes together: each either rotates from the key
    then current or refuses with one line; the history stays one chain, ``log.key`` is its last key,
    and no retired file holds a private key."""
    import subprocess
    import sys

    node.grow(2)
    run = [sys.executable, "-c", "import sys; from api.cli import main; sys.exit(main(sys.argv[1:]))",
           "rotate-key", "--data-dir", str(node.data)]  # fmt: skip
    for _ in range(4):
        procs = [subprocess.Popen(run, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
        for p in procs:
            _, err = p.communicate(timeout=60)
            assert p.returncode in (0, 2), err
            assert "Traceback" not in err and (p.returncode == 0 or len(err.strip().splitlines()) == 1), err
    store = open_tree_store(node.data, "")
    try:
        log = MerkleLog(store)
        rotations = [read_rotation(log.entry(i), i) for i in log.find(LABEL)]
    finally:
        store.close()
    keys = follow([node.first.verifier], rotations)  # raises on a second rotation by one key
    assert 4 <= len(rotations) <= 8
    assert keys[-1].last_size is None and keys[-1].key_id == load_signer(node.data).key_id
    for retired in node.data.glob("log.key.*.retired"):
        text = retired.read_text()
        assert "PRIVATE" not in text and Ed25519Verifier.from_vkey(text.strip()).key_id.hex() in retired.name


def test_rotate_key_refuses_while_sifa_serve_runs_even_with_its_sequencer_killed(
    node: Node, capsys: pytest.CaptureFixture[str]
) -> None:
    """``sifa serve`` loaded the log key once and publishes it (/v1/log/key, /verify) and signs peer
    requests with it: rotating beside it, even while its sequencer child is down, is refused."""
    import os
    import signal

    import httpx2

    from tests.nodes import Serve

    node.grow(2)
    serve = Serve(node.data)
    try:
        os.kill(serve.sequencer(), signal.SIGKILL)  # the sequencer lock is free now; serve is not
        assert sifa(["rotate-key", "--data-dir", str(node.data)]) == 2
        assert "serving" in capsys.readouterr().err
        assert load_signer(node.data).key_id == node.first.key_id and not list(node.data.glob("log.key.*"))
        key = httpx2.get(f"{serve.url}/v1/log/key", timeout=10).json()
        assert node.first.verifier.vkey() in json.dumps(key)
    finally:
        serve.stop()
    assert sifa(["rotate-key", "--data-dir", str(node.data)]) == 0  # stopped: it rotates


NESTED = "[" * 100000 + "]" * 100000


@pytest.mark.parametrize("where", ["receipt", "trust", "keys", "proof", "rotation_leaf", "key_consistency"])
def test_deeply_nested_json_anywhere_the_verifier_reads_is_one_line_exit_2(
    node: Node, tmp_path: Path, capsys: pytest.CaptureFixture[str], where: str
) -> None:
    node.grow(2)
    assert sifa(["rotate-key", "--data-dir", str(node.data)]) == 0
    capsys.readouterr()
    receipt = node.receipt(1, 2)  # carries key_history and key_consistency
    pinned = trust(tmp_path / "t.json", {"key": node.first.verifier.vkey()})
    doc = receipt.to_dict()
    receipt_path, keys = tmp_path / "r.json", tmp_path / "keys.json"
    keys.write_text(json.dumps(doc["key_history"]))
    extra: list[str] = ["--keys", str(keys)]
    if where == "receipt":
        receipt_path.write_text(NESTED)
    else:
        if where == "trust":
            pinned.write_text(NESTED)
        elif where == "keys":
            keys.write_text(NESTED)
        elif where == "rotation_leaf":
            doc["key_history"]["entries"][0]["leaf"] = base64.b64encode(NESTED.encode()).decode()
        elif where == "key_consistency":
            doc["key_consistency"] = json.loads("[" * 50 + "]" * 50)  # parses; the part's form is refused
        receipt_path.write_text(json.dumps(doc))
    if where == "proof":
        old, new = tmp_path / "old.txt", tmp_path / "new.txt"
        old.write_text(node.checkpoint(2))
        new.write_text(node.checkpoint(3))
        (tmp_path / "proof.json").write_text(NESTED)
        argv = ["consistency", str(old), str(new), "--proof", str(tmp_path / "proof.json"), "--trust", str(pinned)]
    else:
        argv = ["--receipt", str(receipt_path), "--trust", str(pinned), *extra]
    code = sifa_verify(argv)
    _, err = capsys.readouterr()
    assert code == 2 and "Traceback" not in err and len(err.strip().splitlines()) == 1, err
