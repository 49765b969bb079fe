"""The blob store contract: every adapter passes the same suite.

The S3 run talks to moto's S3 server over real HTTP on 127.0.0.1 (a separate
process), with Object Lock. Backend classes at the bottom say how to make the
store and how to attempt what the port itself never offers (raw removal).
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import threading
import time
import unicodedata
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from minio.commonconfig import COMPLIANCE
from minio.retention import Retention

from storage.blobstore import BlobInfo, BlobStore
from storage.errors import (
    BlobCorruptError,
    BlobNotFoundError,
    DigestMismatchError,
    InvalidDigestError,
    RangeError,
    StorageFullError,
)
from storage.filesystem import FilesystemBlobStore, set_immutable
from tests.servers import MotoServer
from tests.small_disk import free_bytes, small_disk

ROOT = Path(__file__).resolve().parent.parent
MIB = 1 << 20
HOSTILE_KEYS = ["../../etc/passwd", "a" * 63, "A" * 64, "g" * 64, "a" * 64 + "\x00", "", "a" * 10_000, "../" + "a" * 61]
HOSTILE_NAMES = [
    "（2026）京0105民初123号 起诉状.pdf",
    "../../etc/passwd",
    "evil\x00name.pdf",
    "x" * 10_000,
    unicodedata.normalize("NFD", "证据-é.pdf"),
    unicodedata.normalize("NFC", "证据-é.pdf"),
    "line\r\nSet-Cookie: a=b",
]


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def pattern(size: int, seed: int = 0) -> bytes:
    block = hashlib.sha256(f"blob-{seed}".encode()).digest() * 32768  # 1 MiB
    return (block * (size // len(block) + 1))[:size]


def chunked(data: bytes, size: int = 256 * 1024) -> Iterator[bytes]:
    for i in range(0, len(data), size):
        yield data[i : i + size]


class Interrupted(ConnectionResetError):
    pass


def broken_stream(data: bytes, after: int) -> Iterator[bytes]:
    yield from chunked(data[:after])
    raise Interrupted("client went away")


class BlobStoreContract:
    @pytest.fixture
    def store(self) -> BlobStore:
        raise NotImplementedError

    def visible_keys(self, store: BlobStore) -> list[str]:
        """Every digest the backend shows under a final name, and anything else it holds."""
        raise NotImplementedError

    def raw_remove(self, store: BlobStore, digest: str) -> None:
        """Try to remove a blob behind the port's back; raise if the backend refuses."""
        raise NotImplementedError

    def raw_write(self, store: BlobStore, digest: str, data: bytes) -> None:
        """Put other bytes under a blob's name behind the port's back (rot, a bad restore, an intruder)."""
        raise NotImplementedError

    def reopen(self, store: BlobStore) -> BlobStore:
        """The same store as a new process would open it."""
        raise NotImplementedError

    def test_put_stat_read_and_ranges(self, store: BlobStore) -> None:
        data = "（2026）京0105民初123号 民事起诉状".encode() * 1000
        info = store.put(chunked(data))
        assert (info.sha256, info.size, info.locked_until) == (sha(data), len(data), None)
        assert store.stat(sha(data)) == info and store.exists(sha(data))
        assert b"".join(store.read(sha(data))) == data
        assert b"".join(store.read(sha(data), 10, 100)) == data[10:100]
        assert b"".join(store.read(sha(data), len(data) - 1)) == data[-1:]
        assert b"".join(store.read(sha(data), 5, 5)) == b""
        for start, end in [(-1, None), (0, len(data) + 1), (20, 10)]:
            with pytest.raises(RangeError):
                store.read(sha(data), start, end)

    def test_empty_blob(self, store: BlobStore) -> None:
        info = store.put(iter([]))
        assert info.sha256 == sha(b"") and info.size == 0
        assert b"".join(store.read(sha(b""))) == b""

    def test_same_bytes_again_is_a_no_op(self, store: BlobStore) -> None:
        data = pattern(3 * MIB)
        first = store.put(chunked(data))
        assert store.put(chunked(data), expected_sha256=sha(data)) == first
        assert self.visible_keys(store) == [sha(data)]

    def test_large_multipart_with_and_without_declared_hash(self, store: BlobStore) -> None:
        a, b = pattern(21 * MIB, 1), pattern(17 * MIB + 3, 2)
        assert store.put(chunked(a, MIB), expected_sha256=sha(a)).size == len(a)
        assert store.put(chunked(b, 3 * MIB)).sha256 == sha(b)
        assert hashlib.sha256(b"".join(store.read(sha(a)))).hexdigest() == sha(a)
        assert b"".join(store.read(sha(b), 6 * MIB, 11 * MIB)) == b[6 * MIB : 11 * MIB]
        assert sorted(self.visible_keys(store)) == sorted([sha(a), sha(b)])
        assert store.verify(sha(b)).size == len(b)

    def test_declared_hash_mismatch_stores_nothing(self, store: BlobStore) -> None:
        for size in (1000, 12 * MIB):
            data = pattern(size, 3)
            with pytest.raises(DigestMismatchError) as info:
                store.put(chunked(data), expected_sha256=sha(b"something else"))
            assert info.value.detail["actual"] == sha(data)
            assert not store.exists(sha(data)) and not store.exists(sha(b"something else"))
        assert self.visible_keys(store) == []

    @pytest.mark.parametrize("declared", [True, False])
    def test_interrupted_write_leaves_nothing_visible(self, store: BlobStore, declared: bool) -> None:
        data = pattern(13 * MIB, 4)
        with pytest.raises(Interrupted):
            store.put(broken_stream(data, 11 * MIB), expected_sha256=sha(data) if declared else None)
        assert not store.exists(sha(data))
        assert self.visible_keys(store) == []

    def test_hostile_keys_refused(self, store: BlobStore) -> None:
        for key in HOSTILE_KEYS:
            with pytest.raises(InvalidDigestError):
                store.stat(key)
            with pytest.raises(InvalidDigestError):
                store.read(key)
            with pytest.raises(InvalidDigestError):
                store.lock(key, datetime.now(UTC) + timedelta(days=1))
            with pytest.raises(InvalidDigestError):
                store.put(iter([b"x"]), expected_sha256=key)
        with pytest.raises(BlobNotFoundError):
            store.stat(sha(b"never stored"))
        assert self.visible_keys(store) == []

    def test_file_names_never_affect_where_bytes_land(self, store: BlobStore, tmp_path: Path) -> None:
        digests = set()
        for i, name in enumerate(HOSTILE_NAMES):
            safe = name.replace("\x00", "_").replace("/", "／")[:200]
            path = tmp_path / f"{i}-{safe}"
            path.write_bytes(name.encode("utf-8", "surrogatepass"))
            with path.open("rb") as f:
                digests.add(store.put(f).sha256)
        assert sorted(self.visible_keys(store)) == sorted(digests)

    def test_lock_extends_never_shortens_and_refuses_removal(self, store: BlobStore) -> None:
        data = "archived judgment 判决书".encode()
        store.put(iter([data]))
        until = (datetime.now(UTC) + timedelta(days=2)).replace(microsecond=0)
        assert store.lock(sha(data), until).locked_until == until
        assert store.lock(sha(data), until - timedelta(days=1)).locked_until == until  # the later time stays
        assert store.stat(sha(data)).locked_until == until
        later = until + timedelta(days=30)
        assert store.lock(sha(data), later).locked_until == later
        assert store.put(iter([data])).locked_until == later  # same bytes: a no-op, still locked
        with pytest.raises(Exception) as refused:
            self.raw_remove(store, sha(data))
        assert not isinstance(refused.value, AssertionError)
        assert b"".join(store.read(sha(data))) == data
        with pytest.raises(BlobNotFoundError):
            store.lock(sha(b"absent"), until)

    def test_two_locks_at_once_keep_the_later_time(self, store: BlobStore) -> None:
        """Two archives locking one shared file at once (one 永久, one 1 year): neither fails and the
        file stays locked until the later time, whichever writes last (attack F1)."""
        now = datetime.now(UTC).replace(microsecond=0)
        long, short = now + timedelta(days=36600), now + timedelta(days=366)
        for i in range(12):
            data = f"shared exhibit 共用证据 {i}".encode()
            store.put(iter([data]))
            start = threading.Barrier(4)
            errors: list[BaseException] = []

            def lock(until: datetime, data: bytes = data, start: threading.Barrier = start,
                     errors: list[BaseException] = errors) -> None:  # fmt: skip
                start.wait()
                try:
                    store.lock(sha(data), until)
                except BaseException as exc:
                    errors.append(exc)

            threads = [threading.Thread(target=lock, args=(u,)) for u in (long, short, short, long)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            assert errors == []
            assert store.stat(sha(data)).locked_until == long

    def test_flipped_byte_is_never_served_whole(self, store: BlobStore, caplog: pytest.LogCaptureFixture) -> None:
        data = pattern(3 * MIB + 5, 7)
        store.put(chunked(data))
        flipped = bytearray(data)
        flipped[2 * MIB + 1] ^= 0x01
        self.raw_write(store, sha(data), bytes(flipped))
        got = bytearray()
        with pytest.raises(BlobCorruptError):
            for chunk in store.read(sha(data)):
                got += chunk
        assert len(got) < len(data)  # the stream is cut: a reader never holds a whole wrong copy
        assert "ALARM" in caplog.text and sha(data) in caplog.text
        assert store.quarantined(sha(data)) and self.reopen(store).quarantined(sha(data))
        for start, end in [(0, None), (0, 10)]:  # refused before a byte, ranges too
            with pytest.raises(BlobCorruptError):
                store.read(sha(data), start, end)
        with pytest.raises(BlobCorruptError):
            store.verify(sha(data))
        assert store.put(chunked(data)).sha256 == sha(data)  # the right bytes restore it
        assert not store.quarantined(sha(data))
        assert b"".join(store.read(sha(data))) == data and store.verify(sha(data)).size == len(data)

    def test_a_size_other_than_the_recorded_one_is_refused_before_a_byte(self, store: BlobStore) -> None:
        data = "送达回证".encode() * 100
        store.put(iter([data]))
        assert b"".join(store.read(sha(data), size=len(data))) == data
        longer = "伪造的送达回证".encode() * 100  # other bytes, longer than recorded: a reader holding the recorded
        self.raw_write(store, sha(data), longer)  # size would see a "complete" body of the wrong bytes
        with pytest.raises(BlobCorruptError):
            store.read(sha(data), size=len(data))
        assert store.quarantined(sha(data))

    def test_small_corrupt_blob_yields_nothing(self, store: BlobStore) -> None:
        data = "判决书".encode()
        store.put(iter([data]))
        self.raw_write(store, sha(data), "判决币".encode())
        stream = store.read(sha(data))
        with pytest.raises(BlobCorruptError):
            next(stream)

    def test_other_size_under_the_name_is_replaced_by_the_right_bytes(self, store: BlobStore) -> None:
        data = b"evidence"
        store.put(iter([data]))
        self.raw_write(store, sha(data), b"evidence, altered")
        with pytest.raises(BlobCorruptError):
            store.verify(sha(data))
        assert store.put(iter([data])).size == len(data)
        assert b"".join(store.read(sha(data))) == data and not store.quarantined(sha(data))

    def test_bytes_put_back_in_place_lift_the_quarantine_on_verify(self, store: BlobStore) -> None:
        data = pattern(100_000, 8)
        store.put(iter([data]))
        self.raw_write(store, sha(data), data[:-1] + b"?")
        with pytest.raises(BlobCorruptError):
            b"".join(store.read(sha(data)))
        self.raw_write(store, sha(data), data)  # an operator copies the backup back
        with pytest.raises(BlobCorruptError):
            store.read(sha(data))  # still withheld: nobody has checked the bytes yet
        assert store.verify(sha(data)).size == len(data)
        assert b"".join(store.read(sha(data))) == data

    def test_restoring_a_locked_blob_keeps_its_lock(self, store: BlobStore) -> None:
        data = "归档 判决书".encode() * 100
        store.put(iter([data]))
        until = (datetime.now(UTC) + timedelta(days=3)).replace(microsecond=0)
        store.lock(sha(data), until)
        self.raw_write(store, sha(data), data[::-1])
        with pytest.raises(BlobCorruptError):
            store.verify(sha(data))
        assert store.put(iter([data])).locked_until == until
        assert b"".join(store.read(sha(data))) == data

    # Collection of blobs no event names (the port's delete path; dossier/fixity.py decides which).

    def renewing(self, store: BlobStore) -> BlobStore:
        """The same store, opened so that a put of bytes already stored always renews their stored time."""
        raise NotImplementedError

    def test_collection_lists_claims_and_discards_only_unlocked_blobs(self, store: BlobStore) -> None:
        before = time.time()
        orphan, kept = "导入中断的文件".encode(), "归档锁定的文件".encode()
        store.put(iter([orphan]))
        store.put(iter([kept]))
        store.lock(sha(kept), datetime.now(UTC) + timedelta(days=1))
        listed = dict(store.unlocked())
        assert sha(orphan) in listed and before - 1 <= listed[sha(orphan)] <= time.time() + 1
        assert store.claim(sha(kept)) is None  # locked: never taken, whether listed or not
        assert store.claim("0" * 64) is None  # gone
        claimed = store.claim(sha(orphan))
        assert claimed is not None and before - 1 <= claimed <= time.time() + 1
        store.discard(sha(orphan))
        assert not store.exists(sha(orphan)) and sha(orphan) not in dict(store.unlocked())
        assert b"".join(store.read(sha(kept))) == kept

    def test_an_unclaimed_blob_is_as_it_was(self, store: BlobStore) -> None:
        data = "正在上传".encode()
        info = store.put(iter([data]))
        assert store.claim(sha(data)) is not None
        store.unclaim(sha(data))
        assert store.stat(sha(data)) == info and b"".join(store.read(sha(data))) == data

    def test_a_put_of_the_same_bytes_renews_the_time_a_claim_reports(self, store: BlobStore) -> None:
        renewing = self.renewing(store)
        data = "上次导入中断，这次重新上传".encode()
        renewing.put(iter([data]))
        time.sleep(1.1)  # S3 keeps whole seconds
        again = time.time()
        renewing.put(iter([data]))
        claimed = renewing.claim(sha(data))
        assert claimed is not None and claimed > again - 0.5  # renewed (a file's time is the kernel's coarse clock)
        renewing.unclaim(sha(data))

    def test_a_put_after_a_claim_keeps_its_bytes_through_the_discard(self, store: BlobStore) -> None:
        renewing = self.renewing(store)
        data = "上次导入中断，这次重新上传".encode()
        renewing.put(iter([data]))
        assert renewing.claim(sha(data)) is not None
        renewing.put(iter([data]))  # an upload of the same bytes, between the claim and the delete
        renewing.discard(sha(data))
        assert b"".join(renewing.read(sha(data))) == data

    def test_a_collected_quarantined_blob_leaves_no_quarantine_behind(self, store: BlobStore) -> None:
        data = b"rotten orphan"
        store.put(iter([data]))
        self.raw_write(store, sha(data), b"rotten orphaN")
        with pytest.raises(BlobCorruptError):
            store.verify(sha(data))
        assert store.claim(sha(data)) is not None
        store.discard(sha(data))
        assert not store.quarantined(sha(data))
        store.put(iter([data]))  # uploaded again later: served
        assert b"".join(store.read(sha(data))) == data

    @pytest.mark.slow
    def test_one_gib_upload_keeps_memory_bounded(self, store: BlobStore) -> None:
        out = subprocess.run(
            [sys.executable, "-m", "tests.rss_upload", *self.child_args(store)],
            cwd=ROOT, check=True, capture_output=True, text=True, timeout=600,
        )  # fmt: skip
        result = json.loads(out.stdout)
        assert result["size"] == 1 << 30
        assert result["growth_kib"] < 100 * 1024, result
        assert store.stat(result["sha256"]).size == 1 << 30

    def child_args(self, store: BlobStore) -> list[str]:
        raise NotImplementedError


class TestFilesystemBlobStore(BlobStoreContract):
    @pytest.fixture
    def store(self, tmp_path: Path) -> Iterator[BlobStore]:
        root = tmp_path / "blobs-root"
        yield FilesystemBlobStore(root)
        for dirpath, _, files in os.walk(root):  # let pytest clean up locked files
            for f in files:
                set_immutable(Path(dirpath) / f, False)

    def visible_keys(self, store: BlobStore) -> list[str]:
        assert isinstance(store, FilesystemBlobStore)
        assert os.listdir(store.root / "tmp") == []
        found = []
        for dirpath, _, files in os.walk(store.root / "blobs"):
            for f in files:
                path = Path(dirpath) / f
                assert path == store.path(f), f"{path} is not where {f} belongs"
                found.append(f)
        return found

    def raw_remove(self, store: BlobStore, digest: str) -> None:
        assert isinstance(store, FilesystemBlobStore)
        path = store.path(digest)
        with pytest.raises(PermissionError):
            path.open("r+b")
        os.unlink(path)

    def child_args(self, store: BlobStore) -> list[str]:
        assert isinstance(store, FilesystemBlobStore)
        return ["filesystem", str(store.root)]

    def raw_write(self, store: BlobStore, digest: str, data: bytes) -> None:
        assert isinstance(store, FilesystemBlobStore)
        path = store.path(digest)
        set_immutable(path, False)
        os.chmod(path, 0o600)
        path.write_bytes(data)
        os.chmod(path, 0o400)

    def reopen(self, store: BlobStore) -> BlobStore:
        assert isinstance(store, FilesystemBlobStore)
        return FilesystemBlobStore(store.root)

    def renewing(self, store: BlobStore) -> BlobStore:
        return store  # a put of stored bytes always touches their time

    def test_only_the_owner_may_read(self, store: BlobStore) -> None:
        assert isinstance(store, FilesystemBlobStore)
        data = b"private"
        store.put(iter([data]))
        store.lock(sha(data), datetime.now(UTC) + timedelta(days=1))
        self.raw_write(store, sha(data), b"privatE")
        with pytest.raises(BlobCorruptError):
            store.verify(sha(data))
        modes = _modes(store.root)
        assert modes[store.path(sha(data))] == 0o400
        assert {m for p, m in modes.items() if p.is_dir()} == {0o700}
        assert {m for p, m in modes.items() if p.is_file() and "blobs" not in p.parts[-4:]} == {0o600}

    def test_a_looser_older_store_is_tightened(self, tmp_path: Path) -> None:
        root = tmp_path / "old"
        store = FilesystemBlobStore(root)
        store.put(iter([b"old blob"]))
        for path in [root, *root.rglob("*")]:  # as sifa left it before: 0755 folders, 0444 blobs
            os.chmod(path, 0o755 if path.is_dir() else 0o444)
        FilesystemBlobStore(root)
        assert not [p for p, m in _modes(root).items() if m & 0o077]
        assert b"".join(FilesystemBlobStore(root).read(sha(b"old blob"))) == b"old blob"

    def test_full_disk_is_storage_full_and_leaves_nothing(self, tmp_path: Path) -> None:
        with small_disk(tmp_path / "disk", 4) as disk:
            store = FilesystemBlobStore(disk / "blobs")
            small = store.put(iter([b"before the disk filled"]))
            for declared in (True, False):
                data = pattern(6 * MIB, 9)
                with pytest.raises(StorageFullError) as refused:
                    store.put(chunked(data), expected_sha256=sha(data) if declared else None)
                assert refused.value.code == "storage_full"
                assert sorted(self.visible_keys(store)) == [small.sha256]  # no temp file, no half blob
            assert free_bytes(disk) > 3 * MIB  # the space the refused writes took is free again
            assert store.put(iter([b"after"])).sha256 == sha(b"after")

    def test_crash_leftovers_are_swept_not_published(self, tmp_path: Path) -> None:
        root = tmp_path / "r"
        FilesystemBlobStore(root)
        stale = root / "tmp" / "put-stale"
        stale.write_bytes(b"half a file")
        os.utime(stale, (0, 0))
        store = FilesystemBlobStore(root)
        assert not stale.exists() and self.visible_keys(store) == []

    def test_leftovers_older_than_an_hour_go_when_the_store_opens(self, tmp_path: Path) -> None:
        """An upload cut by a SIGKILLed node leaves its temp file; the next open removes it after an
        hour (a write still going on touches its file, so it is never that old)."""
        root = tmp_path / "r"
        FilesystemBlobStore(root)
        old, young = root / "tmp" / "put-killed", root / "tmp" / "put-writing"
        for path, age in ((old, 3700), (young, 600)):
            path.write_bytes(b"half an upload")
            os.utime(path, (time.time() - age, time.time() - age))
        FilesystemBlobStore(root).close()
        assert not old.exists() and young.exists()


class TestS3BlobStore(BlobStoreContract):
    @pytest.fixture
    def store(self, s3_server: MotoServer) -> Iterator[BlobStore]:
        from storage.s3 import S3BlobStore

        bucket = f"sifa-{uuid.uuid4().hex[:12]}"
        s = S3BlobStore(s3_server.endpoint, bucket, s3_server.access_key, s3_server.secret_key,
                        secure=False, part_size=5 * MIB)  # fmt: skip
        yield s
        s.close()

    def visible_keys(self, store: BlobStore) -> list[str]:
        from storage.s3 import S3BlobStore

        assert isinstance(store, S3BlobStore)
        found = []
        for obj in store.client.list_objects(store.bucket, recursive=True, include_version=True):
            name = obj.object_name or ""
            digest = name.rsplit("/", 1)[-1]
            assert name == store.key(digest), f"{name} is not where {digest} belongs"
            found.append(digest)
        assert store.multipart.in_progress().uploads == []
        return found

    def raw_remove(self, store: BlobStore, digest: str) -> None:
        from storage.s3 import S3BlobStore

        assert isinstance(store, S3BlobStore)
        key = store.key(digest)
        version = store.client.stat_object(store.bucket, key).version_id
        store.client.remove_object(store.bucket, key, version_id=version)

    def raw_write(self, store: BlobStore, digest: str, data: bytes) -> None:
        import io

        from storage.s3 import S3BlobStore

        assert isinstance(store, S3BlobStore)  # a new version on top, as any writer of the bucket may
        store.client.put_object(store.bucket, store.key(digest), io.BytesIO(data), len(data))

    def reopen(self, store: BlobStore) -> BlobStore:
        from storage.s3 import S3BlobStore

        assert isinstance(store, S3BlobStore)
        host = store.endpoint
        return S3BlobStore(host, store.bucket, MotoServer.access_key, MotoServer.secret_key, secure=False,
                           part_size=5 * MIB)  # fmt: skip

    def renewing(self, store: BlobStore) -> BlobStore:
        from storage.s3 import S3BlobStore

        assert isinstance(store, S3BlobStore)
        return S3BlobStore(store.endpoint, store.bucket, MotoServer.access_key, MotoServer.secret_key, secure=False,
                           part_size=5 * MIB, renew_after=0)  # fmt: skip

    def test_a_put_of_bytes_stored_a_moment_ago_writes_nothing(self, store: BlobStore) -> None:
        """Within renews_after (an hour by default) the same bytes again leave no second version."""
        data = pattern(6 * MIB, seed=7)  # multipart, straight to the final key
        store.put(chunked(data))
        store.put(chunked(data), expected_sha256=sha(data))
        store.put(iter([b"small"]))
        store.put(iter([b"small"]))
        assert sorted(self.visible_keys(store)) == sorted([sha(data), sha(b"small")])

    def test_a_renewing_put_is_a_new_version_and_keeps_a_lock_set_on_the_old_one(self, store: BlobStore) -> None:
        from storage.s3 import S3BlobStore

        renewing = self.renewing(store)
        assert isinstance(renewing, S3BlobStore)
        data = pattern(6 * MIB, seed=8)
        renewing.put(chunked(data))
        renewing.put(chunked(data), expected_sha256=sha(data))
        renewing.put(chunked(data))
        assert self.visible_keys(store) == [sha(data)] * 3
        # A lock that lands on the version a renewing put writes over (after the put looked) holds the new one too.
        until = datetime.now(UTC).replace(microsecond=0) + timedelta(days=1)

        class LockLandsMeanwhile(S3BlobStore):
            def _before(self, digest: str, size: int) -> BlobInfo | bool | None:
                before = super()._before(digest, size)
                key = self.key(digest)
                self.client.set_object_retention(self.bucket, key, Retention(COMPLIANCE, until))
                return before

        racing = LockLandsMeanwhile(store.endpoint, store.bucket, MotoServer.access_key, MotoServer.secret_key,
                                    secure=False, part_size=5 * MIB, renew_after=0)  # fmt: skip
        assert racing.put(iter([data])).locked_until == until
        assert len(self.visible_keys(store)) == 4 and racing.claim(sha(data)) is None

    def test_a_lock_or_hold_keeps_a_blob_from_collection(self, store: BlobStore) -> None:
        from storage.errors import BlobLockedError
        from storage.s3 import S3BlobStore

        assert isinstance(store, S3BlobStore)
        held, late = b"under legal hold", b"locked after its claim"
        store.put(iter([held]))
        store.client.enable_object_legal_hold(store.bucket, store.key(sha(held)))
        assert store.claim(sha(held)) is None
        store.client.disable_object_legal_hold(store.bucket, store.key(sha(held)))
        assert store.claim(sha(held)) is not None  # the hold, nothing else, kept it
        store.unclaim(sha(held))
        store.put(iter([late]))
        assert store.claim(sha(late)) is not None
        store.lock(sha(late), datetime.now(UTC) + timedelta(days=1))  # an archive, between claim and delete
        with pytest.raises(BlobLockedError):
            store.discard(sha(late))
        assert b"".join(store.read(sha(late))) == late and store.exists(sha(held))
        assert store.claim(sha(late)) is None

    def test_a_bucket_without_versions_is_never_collected(self, s3_server: MotoServer) -> None:
        from minio import Minio

        from storage.s3 import S3BlobStore

        bucket = f"sifa-plain-{uuid.uuid4().hex[:8]}"
        Minio(s3_server.endpoint, s3_server.access_key, s3_server.secret_key, secure=False).make_bucket(bucket)
        plain = S3BlobStore(s3_server.endpoint, bucket, s3_server.access_key, s3_server.secret_key, secure=False)
        data = b"no versions"
        plain.put(iter([data]))
        assert sha(data) in dict(plain.unlocked()) and plain.claim(sha(data)) is None
        assert plain.exists(sha(data))
        plain.close()

    def test_storage_full_answers_are_recognised(self) -> None:
        from minio.error import S3Error, ServerError

        from storage.errors import StorageError
        from storage.s3 import _translate

        for code in ("XMinioStorageFull", "XMinioAdminBucketQuotaExceeded"):
            with pytest.raises(StorageFullError):
                _translate(S3Error(None, code, "full", "/b/k", "r", "h"), "the upload")  # type: ignore[arg-type]
        with pytest.raises(StorageFullError):
            _translate(ServerError("server failed with HTTP status code 507", 507), "the upload")
        with pytest.raises(StorageError) as other:
            _translate(S3Error(None, "InternalError", "x", "/b/k", "r", "h"), "the upload")  # type: ignore[arg-type]
        assert not isinstance(other.value, StorageFullError)

    def child_args(self, store: BlobStore) -> list[str]:
        from storage.s3 import S3BlobStore

        assert isinstance(store, S3BlobStore)
        return ["s3", store.endpoint, store.bucket, MotoServer.access_key, MotoServer.secret_key]

    def test_endpoint_down_is_unavailable(self) -> None:
        from storage.errors import StorageUnavailableError
        from storage.s3 import S3BlobStore
        from tests.servers import free_port

        with pytest.raises(StorageUnavailableError):
            S3BlobStore(f"127.0.0.1:{free_port()}", "sifa-down", "a", "b", secure=False, timeout=1)


def _modes(root: Path) -> dict[Path, int]:
    return {p: p.stat().st_mode & 0o777 for p in [root, *root.rglob("*")]}


def test_settings_pick_the_backend(tmp_path: Path, s3_server: MotoServer) -> None:
    from api.node import open_blob_store
    from api.settings import Settings
    from storage.s3 import S3BlobStore

    fs = open_blob_store(tmp_path, Settings(data_dir=tmp_path))
    assert isinstance(fs, FilesystemBlobStore) and fs.root == tmp_path / "blobs"
    s3 = open_blob_store(
        tmp_path,
        Settings(s3_endpoint=s3_server.endpoint, s3_bucket="sifa-from-settings", s3_access_key=s3_server.access_key,
                 s3_secret_key=s3_server.secret_key, s3_secure=False),
    )  # fmt: skip
    assert isinstance(s3, S3BlobStore)
    assert s3.put(iter([b"via settings"])).sha256 == sha(b"via settings")
    s3.close()


def test_the_minio_shim_is_pinned_to_the_installed_minio() -> None:
    """storage/minio_multipart.py calls minio's private multipart methods: an upgrade of minio fails
    here until someone has re-read those calls against the new version and moved the pin."""
    import inspect
    import re
    import tomllib
    from importlib.metadata import version

    from minio import Minio

    from storage.minio_multipart import MINIO_VERSION

    assert version("minio") == MINIO_VERSION
    with open(Path(__file__).parent.parent / "pyproject.toml", "rb") as f:
        project = tomllib.load(f)["project"]
    pins = [*project["dependencies"], *(p for extra in project["optional-dependencies"].values() for p in extra)]
    assert f"minio=={MINIO_VERSION}" in pins
    called = {  # the arguments the shim passes, in its order
        "_create_multipart_upload": ["bucket_name", "object_name", "headers"],
        "_upload_part": ["bucket_name", "object_name", "data", "headers", "upload_id", "part_number"],
        "_complete_multipart_upload": ["bucket_name", "object_name", "upload_id", "parts"],
        "_abort_multipart_upload": ["bucket_name", "object_name", "upload_id"],
        "_list_multipart_uploads": ["bucket_name"],
    }
    for name, args in called.items():
        params = list(inspect.signature(getattr(Minio, name)).parameters)[1:]
        assert params[: len(args)] == args, name
    source = Path(__file__).parent.parent.joinpath("storage", "s3.py").read_text(encoding="utf-8")
    assert not re.search(r"client\._", source)  # the adapter itself uses only the public API and the shim
