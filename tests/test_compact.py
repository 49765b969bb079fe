"""The compact range against the RFC 9162 reference, known answers and the tree store; the audit's pass over it.

Differential tests as transparency-dev/merkle's compact/range_test.go does them: random ranges grown by
single leaves, batches and merges keep exactly the subtree hashes the reference gives, and the root of
[0, n) is the recursive RFC 9162 root at every size.
"""

from __future__ import annotations

import base64
import hashlib
import itertools
import json
import sqlite3
import subprocess
import sys
from collections.abc import Collection
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import dossier.audit
from dossier.audit import BUNDLES, AuditReport, audit_log
from ledger.checkpoint import Checkpoint, sign_checkpoint
from ledger.compact import CompactRange
from ledger.errors import TreeSizeError
from ledger.hashing import SHA256
from ledger.log import MerkleLog
from ledger.note import Ed25519Signer
from ledger.proof import perfect_subtrees
from ledger.sqlite import SQLiteTreeStore
from tests import reference
from tests.dossier_fixtures import make_stack

SETTINGS = settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
VECTORS = Path(__file__).parent / "vectors"
RFC = json.loads((VECTORS / "rfc6962" / "roots.json").read_text())
RFC_LEAVES = [bytes.fromhex(x) for x in RFC["leaves_hex"]]
SIGNER = Ed25519Signer("sifa.court/test-compact", bytes(range(32)))


def _leaves(seed: int, n: int) -> list[bytes]:
    # Varied lengths, empty leaves included, deterministic per seed.
    return [hashlib.sha256(f"{seed}/{i}".encode()).digest()[: (i * 7 + seed) % 40] for i in range(n)]


def _grown(begin: int, leaves: list[bytes], end: int, cuts: list[int], how: list[int]) -> CompactRange:
    """Leaves [begin, end) put into a range in pieces at ``cuts``: one by one, as a batch or as a merged range."""
    r = CompactRange(SHA256, begin)
    bounds = sorted({begin, end, *(c for c in cuts if begin < c < end)})
    for k, (lo, hi) in enumerate(itertools.pairwise(bounds)):
        kind = how[k % len(how)]
        hashes = SHA256.leaves(leaves[lo:hi])
        if kind == 0:
            for h in hashes:
                r.append(h)
        elif kind == 1:
            r.extend(hashes)
        else:
            piece = CompactRange(SHA256, lo)
            piece.extend(hashes)
            r.append_range(piece)
    assert (r.begin, r.end) == (begin, end)
    return r


def test_root_at_every_size_equals_reference() -> None:
    leaves = _leaves(1, 600)
    r = CompactRange(SHA256)
    assert r.root() == reference.mth([])
    for n, leaf in enumerate(leaves, start=1):
        r.append(SHA256.leaf(leaf))
        assert r.root() == reference.mth(leaves[:n]), n
        assert len(r.hashes) == n.bit_count()  # one subtree per set bit: O(log n)


@SETTINGS
@given(st.integers(0, 2**16), st.lists(st.integers(1, 1500), min_size=1, max_size=8), st.data())
def test_batched_roots_equal_reference(seed: int, batches: list[int], data: st.DataObject) -> None:
    leaves = _leaves(seed, sum(batches))
    r = CompactRange(SHA256)
    pos = 0
    for b in batches:
        r.extend(SHA256.leaves(leaves[pos : pos + b]))
        pos += b
        assert r.root() == reference.mth(leaves[:pos])
    # And at random sizes inside the batches, growing a fresh range up to each.
    sizes = sorted(data.draw(st.lists(st.integers(0, pos), max_size=6)))
    r = CompactRange(SHA256)
    for size in sizes:
        r.extend(SHA256.leaves(leaves[r.end : size]))
        assert r.root() == reference.mth(leaves[:size])


@SETTINGS
@given(
    st.integers(0, 2**16),
    st.integers(0, 700),
    st.integers(0, 700),
    st.lists(st.integers(0, 1400), max_size=10),
    st.lists(st.integers(0, 2), min_size=1, max_size=4),
)
def test_any_range_keeps_the_reference_subtrees(seed: int, a: int, b: int, cuts: list[int], how: list[int]) -> None:
    begin, end = min(a, b), max(a, b) + 1
    leaves = _leaves(seed, end)
    r = _grown(begin, leaves, end, cuts, how)
    want = [reference.mth(leaves[i << level : (i + 1) << level]) for level, i in perfect_subtrees(begin, end)]
    assert list(r.hashes) == want
    if begin == 0:
        assert r.root() == reference.mth(leaves)


def test_merging_two_halves_gives_the_whole_root() -> None:
    leaves = _leaves(3, 1000)
    for k in (1, 255, 256, 257, 511, 512, 999):
        left, right = CompactRange(SHA256), CompactRange(SHA256, k)
        left.extend(SHA256.leaves(leaves[:k]))
        right.extend(SHA256.leaves(leaves[k:]))
        left.append_range(right)
        assert left.root() == reference.mth(leaves), k


def test_rfc6962_known_roots() -> None:
    r = CompactRange(SHA256)
    assert r.root().hex() == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    for leaf, want in zip(RFC_LEAVES, RFC["roots_hex"], strict=True):
        r.append(SHA256.leaf(leaf))
        assert r.root().hex() == want
    assert r.root().hex().startswith("5dc9da79") and r.root().hex().endswith("4328")


@pytest.mark.parametrize(
    "case", sorted((VECTORS / "transparency-dev-merkle").rglob("happy-path.json")), ids=lambda p: p.parent.name
)
def test_transparency_dev_golden_roots(case: Path) -> None:
    # The golden proofs are over the RFC 6962 test tree; each names the roots of its sizes.
    c = json.loads(case.read_text())
    pairs = [(c["treeSize"], c["root"])] if "treeSize" in c else [(c["size1"], c["root1"]), (c["size2"], c["root2"])]
    for size, root in pairs:
        r = CompactRange(SHA256)
        r.extend(SHA256.leaves(RFC_LEAVES[:size]))
        assert r.root() == base64.b64decode(root)


@SETTINGS
@given(st.integers(0, 2**16), st.lists(st.integers(1, 900), min_size=1, max_size=8), st.data())
def test_roots_equal_the_tree_store(seed: int, batches: list[int], data: st.DataObject) -> None:
    leaves = _leaves(seed, sum(batches))
    store = SQLiteTreeStore(":memory:")
    log = MerkleLog(store)
    pos = 0
    for b in batches:
        log.append(leaves[pos : pos + b])
        pos += b
    sizes = sorted({0, pos, *data.draw(st.lists(st.integers(0, pos), max_size=10))})
    r = CompactRange(SHA256)
    for size in sizes:
        r.extend(SHA256.leaves(log.entries(r.end, size)))
        assert r.root() == log.root(size)
    store.close()


def test_misuse_is_refused() -> None:
    with pytest.raises(TreeSizeError):
        CompactRange(SHA256, -1)
    with pytest.raises(TreeSizeError):
        CompactRange(SHA256, 4).root()
    left, right = CompactRange(SHA256), CompactRange(SHA256, 3)
    left.extend(SHA256.leaves([b"a", b"b"]))
    with pytest.raises(TreeSizeError):
        left.append_range(right)  # [0, 2) and [3, 3) do not meet
    assert (left.end, len(left.hashes)) == (2, 1)


# --- sifa audit's pass: checks (3) and (4) of dossier/audit.py --------------------------------------


class _CountingStore(SQLiteTreeStore):
    """A real SQLite tree store that counts the checkpoint notes and entry bundles it hands out."""

    def __init__(self, path: str | Path) -> None:
        super().__init__(path)
        self.notes_read: dict[int, int] = {}
        self.bundles_read: dict[int, int] = {}
        self.largest_bundle_read = 0

    def checkpoints(self, *, above: int = -1, newest_first: bool = False,
                    limit: int | None = None) -> list[tuple[int, str]]:  # fmt: skip
        out = super().checkpoints(above=above, newest_first=newest_first, limit=limit)
        for size, _ in out:
            self.notes_read[size] = self.notes_read.get(size, 0) + 1
        return out

    def read_bundles(self, ids: Collection[int]) -> dict[int, bytes]:
        out = super().read_bundles(ids)
        self.largest_bundle_read = max(self.largest_bundle_read, len(ids))
        for b in out:
            self.bundles_read[b] = self.bundles_read.get(b, 0) + 1
        return out


def _log_with_checkpoints(store: SQLiteTreeStore, n: int, every: int) -> MerkleLog:
    log = MerkleLog(store)
    leaves = _leaves(5, n)
    for start in range(0, n, every):
        log.append(leaves[start : start + every])
        log.sign_checkpoint(SIGNER)
    return log


def _kinds(report: AuditReport) -> list[tuple[str, str]]:
    return [(f.kind, f.where) for f in report.findings]


def test_audit_pass_reads_each_checkpoint_and_bundle_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(dossier.audit, "PAGE", 7)  # several pages of checkpoints
    store = _CountingStore(tmp_path / "t.db")
    log = _log_with_checkpoints(store, 40 * 256 + 3, every=97)
    store.notes_read.clear()
    store.bundles_read.clear()
    report = AuditReport()
    audit_log(log, SIGNER.verifier, report)
    assert report.clean and report.checkpoints == len(store.notes_read) == -(-(40 * 256 + 3) // 97)
    assert set(store.notes_read.values()) == {1}
    assert set(store.bundles_read.values()) == {1} and len(store.bundles_read) == 41
    assert store.largest_bundle_read <= BUNDLES
    store.close()


def test_audit_pass_finds_a_signed_checkpoint_with_a_wrong_root(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(dossier.audit, "PAGE", 5)
    store = SQLiteTreeStore(tmp_path / "t.db")
    log = _log_with_checkpoints(store, 3000, every=61)
    sizes = [s for s, _ in store.checkpoints()]
    wrong = sizes[len(sizes) // 2]
    forged = Checkpoint(SIGNER.name, wrong, log.root(wrong - 1))  # the previous leaf's root, validly signed
    store.save_checkpoint(wrong, sign_checkpoint(forged, SIGNER).to_text())
    report = AuditReport()
    audit_log(log, SIGNER.verifier, report)
    assert _kinds(report) == [("checkpoint_root", f"checkpoint {wrong}")]
    store.close()


def test_audit_pass_finds_a_rewritten_leaf(tmp_path: Path) -> None:
    db = tmp_path / "t.db"
    store = SQLiteTreeStore(db)
    _log_with_checkpoints(store, 2000, every=500)
    store.close()
    with sqlite3.connect(db) as conn:  # leaf 767, the last of bundle 2, rewritten; tiles left alone
        (data,) = conn.execute("SELECT data FROM sifa_tree_entries WHERE idx = 2").fetchone()
        conn.execute("UPDATE sifa_tree_entries SET data = ? WHERE idx = 2", (data[:-1] + bytes([data[-1] ^ 1]),))
    store = SQLiteTreeStore(db)
    report = AuditReport()
    audit_log(MerkleLog(store), SIGNER.verifier, report)
    # Every size from the bundle on: the tiles disagree, and so does every checkpoint's root.
    assert _kinds(report) == [("tree_mismatch", f"tree size {s}") for s in (1000, 1500, 2000)] + [
        ("checkpoint_root", f"checkpoint {s}") for s in (1000, 1500, 2000)
    ]
    store.close()


CHILD = """
import sys
def hwm():  # peak RSS of this process in KiB (ru_maxrss would carry the parent's over exec)
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmHWM:"))
from pathlib import Path
from dossier.audit import audit
from tests.dossier_fixtures import make_stack
stack = make_stack("sqlite", Path(sys.argv[1]))
before = hwm()
report = audit(stack.app, stack.log, stack.app.blobs, stack.signer.verifier, secret=stack.sealer.secret)
after = hwm()
stack.close()
print(report.leaves, (after - before) // 1024)
"""


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads VmHWM from /proc")
def test_audit_memory_does_not_grow_with_the_log(tmp_path: Path) -> None:
    # 300,000 leaves: rebuilding the tree in memory took ~40 MB more; the streaming pass holds one page.
    n = 300_000
    stack = make_stack("sqlite", tmp_path)
    for start in range(0, n, 100_000):
        stack.log.append([b"%064d" % i for i in range(start, start + 100_000)])
    stack.log.sign_checkpoint(stack.signer)
    stack.close()
    out = subprocess.run([sys.executable, "-c", CHILD, str(tmp_path)], check=True, capture_output=True, text=True)
    leaves, grown_mib = map(int, out.stdout.split())
    assert leaves == n
    assert grown_mib < 15, f"the audit grew by {grown_mib} MiB over {n:,} leaves"


def test_bench_audit_runs_small(capsys: pytest.CaptureFixture[str]) -> None:
    # A smoke run of `python -m bench audit` (its child raises if the audit finds anything).
    from bench import audit as bench_audit

    assert bench_audit.main(["--leaves", "2500", "--warm"]) == 0
    out = capsys.readouterr().out
    assert "pass over 2,500 leaves" in out and "hashlib loop" in out and "1 checkpoint(s), all compared" in out
