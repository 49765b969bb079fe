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
import unicodedata
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import unquote

import pytest

from storage.blobstore import BlobStore
from storage.errors import (
    BlobConflictError,
    BlobLockedError,
    BlobNotFoundError,
    DigestMismatchError,
    InvalidDigestError,
    RangeError,
)
from storage.filesystem import FilesystemBlobStore, set_immutable
from tests.servers import MotoServer

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
            url = store.direct_url(sha(name.encode()), filename=name)
            if url is not None:
                assert "\r" not in url and "\n" not in url and "\x00" not in url
                assert name in unquote(unquote(url)) or len(name) > 1000 or "\x00" in name
        assert sorted(self.visible_keys(store)) == sorted(digests)

    def test_lock_extends_never_shortens_and_refuses_removal(self, store: BlobStore) -> None:
        data = "archived judgment 判决书".encode()
        store.put(iter([data]))
        until = (datetime.now(UTC) + timedelta(days=2)).replace(microsecond=0)
        assert store.lock(sha(data), until).locked_until == until
        with pytest.raises(BlobLockedError):
            store.lock(sha(data), until - timedelta(days=1))
        later = until + timedelta(days=30)
        assert store.lock(sha(data), later).locked_until == later
        assert store.put(iter([data])).locked_until == later  # same bytes: a no-op, still locked
        with pytest.raises(Exception) as refused:
            self.raw_remove(store, sha(data))
        assert not isinstance(refused.value, AssertionError)
        assert b"".join(store.read(sha(data))) == data
        with pytest.raises(BlobNotFoundError):
            store.lock(sha(b"absent"), until)

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

    def test_tampered_file_fails_verify(self, store: BlobStore) -> None:
        assert isinstance(store, FilesystemBlobStore)
        data = b"evidence"
        store.put(iter([data]))
        path = store.path(sha(data))
        os.chmod(path, 0o644)
        path.write_bytes(b"evidencE")
        with pytest.raises(BlobConflictError):
            store.verify(sha(data))
        # Different bytes of another size under that name: a conflict, never silently "fixed".
        path.write_bytes(b"evidence, altered")
        with pytest.raises(BlobConflictError):
            store.put(iter([data]))

    def test_crash_leftovers_are_swept_not_published(self, tmp_path: Path) -> None:
        root = tmp_path / "r"
        FilesystemBlobStore(root)
        stale = root / "tmp" / "put-stale"
        stale.write_bytes(b"half a file")
        os.utime(stale, (0, 0))
        store = FilesystemBlobStore(root)
        assert not stale.exists() and self.visible_keys(store) == []


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
        assert store.client._list_multipart_uploads(store.bucket).uploads == []
        return found

    def raw_remove(self, store: BlobStore, digest: str) -> None:
        from storage.s3 import S3BlobStore

        assert isinstance(store, S3BlobStore)
        key = store.key(digest)
        version = store.client.stat_object(store.bucket, key).version_id
        store.client.remove_object(store.bucket, key, version_id=version)

    def child_args(self, store: BlobStore) -> list[str]:
        from storage.s3 import S3BlobStore

        assert isinstance(store, S3BlobStore)
        return ["s3", store.client._base_url.host, store.bucket, MotoServer.access_key, MotoServer.secret_key]

    def test_presigned_url_downloads_with_the_exact_name(self, store: BlobStore) -> None:
        import urllib.request

        data = "电子送达回证".encode()
        store.put(iter([data]))
        name = "（2026）京0105民初123号 送达回证.pdf"
        url = store.direct_url(sha(data), filename=name)
        assert url is not None
        with urllib.request.urlopen(url, timeout=10) as resp:
            assert resp.read() == data
            disposition = resp.headers["Content-Disposition"]
        assert unquote(disposition.split("filename*=UTF-8''", 1)[1]) == name

    def test_endpoint_down_is_unavailable(self) -> None:
        from storage.errors import StorageUnavailableError
        from storage.s3 import S3BlobStore
        from tests.servers import free_port

        with pytest.raises(StorageUnavailableError):
            S3BlobStore(f"127.0.0.1:{free_port()}", "sifa-down", "a", "b", secure=False, timeout=1)


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
