"""S3 blob store with the ``minio`` client: MinIO in production, any S3 endpoint.

Keys: ``<prefix><ab>/<sha256>``. A stream is uploaded in parts of ``part_size``
(memory stays bounded by one part) while it is hashed; minio signs each part's
SHA-256 (over plain HTTP) or TLS protects it, so the server checks every part on
arrival, and the completed size is compared with what was read. With a declared
SHA-256 the parts go straight to the final key and the upload is completed only
if the bytes hash to it; without one they go to a temporary key and are copied
server-side once the hash is known. An interrupted or refused upload is aborted:
nothing becomes visible. Locking uses S3 Object Lock in COMPLIANCE mode (the
bucket is created with Object Lock), which no credential can shorten or lift.
A blob found corrupt is quarantined by an object ``quarantine/<key>``; putting
its right bytes writes a new version over the corrupt one (locked again if the
corrupt one was) and removes the marker.
"""

from __future__ import annotations

import io
import json
import threading
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from itertools import chain
from typing import Any, NoReturn

import urllib3
from minio import Minio
from minio.commonconfig import COMPLIANCE, ComposeSource
from minio.datatypes import Part
from minio.error import MinioException, S3Error, ServerError
from minio.retention import Retention

from storage.blobstore import CHUNK, BlobInfo, BlobStore, HashingReader, Source, check_digest, check_range
from storage.errors import (
    BlobLockedError,
    BlobNotFoundError,
    StorageError,
    StorageFullError,
    StorageUnavailableError,
)
from storage.minio_multipart import Headers, Multipart

MIN_PART = 5 << 20  # SPEC: S3 "each part must be at least 5 MB in size, except the last part"
NOT_FOUND = {"NoSuchKey", "NoSuchObject", "NoSuchVersion", "ResourceNotFound"}
# MinIO: XMinioStorageFull (507, its drives below the free-space threshold) and bucket quotas;
# HTTP 507 Insufficient Storage (RFC 4918) from any other S3 endpoint.
FULL = {"XMinioStorageFull", "XMinioAdminBucketQuotaExceeded", "InsufficientStorage", "QuotaExceeded"}
INSUFFICIENT_STORAGE = 507


def _translate(exc: Exception, what: str) -> NoReturn:
    """Backend errors to the project's, most specific first."""
    if isinstance(exc, S3Error):
        if exc.code in NOT_FOUND:
            raise BlobNotFoundError(f"no blob {what}") from exc
        if exc.code in FULL or (exc.response is not None and exc.response.status == INSUFFICIENT_STORAGE):
            raise StorageFullError(f"S3 has no room left for {what} ({exc.code}); nothing was stored") from exc
        if exc.code == "AccessDenied":
            raise BlobLockedError(f"S3 refused to change {what}: {exc.message}") from exc
        raise StorageError(f"S3 error on {what}: {exc.code} {exc.message}") from exc
    if isinstance(exc, ServerError) and exc.status_code == INSUFFICIENT_STORAGE:
        raise StorageFullError(f"S3 has no room left for {what} (HTTP 507); nothing was stored") from exc
    if isinstance(exc, urllib3.exceptions.HTTPError | OSError | MinioException):
        raise StorageUnavailableError(f"the S3 endpoint does not answer ({type(exc).__name__})") from exc
    raise exc


class S3BlobStore(BlobStore):
    """Blobs as objects in one bucket (Object Lock enabled)."""

    def __init__(
        self,
        endpoint: str,
        bucket: str,
        access_key: str,
        secret_key: str,
        *,
        secure: bool = True,
        region: str = "us-east-1",
        prefix: str = "blobs/",
        part_size: int = 16 << 20,
        timeout: float = 10.0,
    ) -> None:
        if part_size < MIN_PART:
            raise StorageError(f"part size must be at least {MIN_PART} bytes")
        http = urllib3.PoolManager(
            timeout=urllib3.Timeout(connect=timeout, read=max(timeout, 60.0)),
            retries=urllib3.Retry(total=2, backoff_factor=0.2, status_forcelist=[502, 503, 504]),
            maxsize=8,
        )
        self._http = http  # ours, so close() need not reach into the client
        self.client = Minio(endpoint, access_key, secret_key, secure=secure, region=region, http_client=http)
        self.endpoint, self.bucket, self.prefix, self.part_size = endpoint, bucket, prefix, part_size
        self.multipart = Multipart(self.client, bucket)
        self._locking = threading.Lock()
        try:
            if not self.client.bucket_exists(bucket):
                self.client.make_bucket(bucket, object_lock=True)
        except S3Error as exc:
            if exc.code not in ("BucketAlreadyOwnedByYou", "BucketAlreadyExists"):  # another worker made it first
                _translate(exc, f"bucket {bucket}")
        except Exception as exc:
            _translate(exc, f"bucket {bucket}")

    def key(self, sha256: str) -> str:
        """The object key: only the validated hex digest names it."""
        check_digest(sha256)
        return f"{self.prefix}{sha256[:2]}/{sha256}"

    def put(self, source: Source, expected_sha256: str | None = None) -> BlobInfo:
        if expected_sha256 is not None:
            check_digest(expected_sha256)
        reader = HashingReader(source, CHUNK)
        parts = _parts(iter(reader), self.part_size)
        try:
            first = next(parts, b"")
            second = next(parts, None)
            if second is None:  # small: one request, hash already known
                digest = reader.check(expected_sha256)
                before = self._before(digest, reader.size)
                if before is not False:
                    self.client.put_object(self.bucket, self.key(digest), io.BytesIO(first), len(first),
                                           metadata={"sha256": digest})  # fmt: skip
                    self._after(digest, before)
                return self.stat(digest)
            return self._multipart(reader, expected_sha256, [first, second], parts)
        except StorageError:
            raise
        except Exception as exc:
            if reader.source_failed:
                raise
            _translate(exc, "the upload")

    def _before(self, digest: str, size: int) -> BlobInfo | bool | None:
        """False: a sound copy is stored (nothing to write). Else what is to be written over:
        None (nothing) or a corrupt copy's info (so its retention carries over)."""
        if self._sound(digest, size) is not None:
            return False
        try:
            return self.stat(digest)
        except BlobNotFoundError:
            return None

    def _after(self, digest: str, before: BlobInfo | bool | None) -> None:
        """The right bytes are written: if they replace a corrupt copy, lift its quarantine and keep the
        longest retention any version of the key had (the corrupt version on top may have none)."""
        if isinstance(before, BlobInfo):
            until = self._retained_until(digest)
            if until is not None and until > datetime.now(UTC):
                self.lock(digest, until)
            self._restored(digest)

    def _retained_until(self, sha256: str) -> datetime | None:
        key, found = self.key(sha256), []
        for obj in self.client.list_objects(self.bucket, prefix=key, include_version=True):
            if obj.object_name == key and not obj.is_delete_marker:
                stat = self.client.stat_object(self.bucket, key, version_id=obj.version_id)
                until = _header(stat.metadata, "x-amz-object-lock-retain-until-date")
                if until:
                    found.append(datetime.fromisoformat(until.replace("Z", "+00:00")))
        return max(found, default=None)

    def _multipart(
        self, reader: HashingReader, expected: str | None, head: list[bytes], rest: Iterator[bytes]
    ) -> BlobInfo:
        target = self.key(expected) if expected else f"tmp/{uuid.uuid4().hex}"
        headers: Headers = {"x-amz-meta-sha256": expected} if expected else {}
        upload_id = self.multipart.create(target, headers)
        done: list[Part] = []
        try:
            for number, data in enumerate(chain(head, rest), start=1):
                done.append(self.multipart.upload_part(target, upload_id, number, data))
            digest = reader.check(expected)
            before = self._before(digest, reader.size)
            if before is False:
                self.multipart.abort(target, upload_id)
                return self.stat(digest)
        except BaseException:
            self.multipart.abort(target, upload_id)
            raise
        self.multipart.complete(target, upload_id, done)
        if expected is None:
            self._promote(target, digest)
        info = self.stat(digest)
        if info.size != reader.size:
            raise StorageError(f"S3 stored {info.size} bytes of {reader.size} for {digest}")
        self._after(digest, before)
        return self.stat(digest)

    def _promote(self, tmp: str, digest: str) -> None:
        # Copy server-side to the content address, then drop the temporary object.
        try:
            self.client.compose_object(self.bucket, self.key(digest), [ComposeSource(self.bucket, tmp)],
                                       metadata={"sha256": digest})  # fmt: skip
        finally:
            stat = self.client.stat_object(self.bucket, tmp)
            self.client.remove_object(self.bucket, tmp, version_id=stat.version_id)

    def _open(self, sha256: str, start: int, end: int | None) -> tuple[Iterator[bytes], int]:
        size = self.stat(sha256).size
        return self._stream(sha256, start, check_range(size, start, end)), size

    def _stream(self, sha256: str, start: int, stop: int) -> Iterator[bytes]:
        if stop == start:
            return
        try:
            response = self.client.get_object(self.bucket, self.key(sha256), offset=start, length=stop - start)
        except Exception as exc:
            _translate(exc, sha256)
        try:
            yield from response.stream(CHUNK)
        except Exception as exc:
            _translate(exc, sha256)
        finally:
            response.close()
            response.release_conn()

    def stat(self, sha256: str) -> BlobInfo:
        try:
            obj = self.client.stat_object(self.bucket, self.key(sha256))
        except Exception as exc:
            _translate(exc, sha256)
        until = _header(obj.metadata, "x-amz-object-lock-retain-until-date")
        locked = datetime.fromisoformat(until.replace("Z", "+00:00")) if until else None
        return BlobInfo(sha256, int(obj.size or 0), locked)

    def lock(self, sha256: str, until: datetime) -> BlobInfo:
        # COMPLIANCE retention can only be extended, so S3 itself refuses a shorter time set after a
        # longer one by another process; within this one, locks run one at a time (a store that does
        # not enforce COMPLIANCE keeps the later time too).
        with self._locking:
            if self._check_extension(sha256, until) is None:
                return self.stat(sha256)  # locked longer already: the later time stays
            try:
                self.client.set_object_retention(
                    self.bucket, self.key(sha256), Retention(COMPLIANCE, until.astimezone(UTC))
                )
            except Exception as exc:
                try:
                    _translate(exc, sha256)
                except BlobLockedError:
                    info = self.stat(sha256)  # refused: locked longer meanwhile (the later time stays)?
                    if info.locked_until is not None and info.locked_until >= until:
                        return info
                    raise
            return self.stat(sha256)

    def _marker(self, sha256: str) -> str:
        return "quarantine/" + self.key(sha256)

    def quarantined(self, sha256: str) -> bool:
        try:
            self.client.stat_object(self.bucket, self._marker(sha256))
        except S3Error as exc:
            if exc.code in NOT_FOUND:
                return False
            _translate(exc, sha256)
        except Exception as exc:
            _translate(exc, sha256)
        return True

    def _quarantine(self, sha256: str, finding: str) -> None:
        record = json.dumps({"sha256": sha256, "finding": finding,
                             "found": datetime.now(UTC).isoformat(timespec="seconds")}).encode()  # fmt: skip
        try:
            self.client.put_object(self.bucket, self._marker(sha256), io.BytesIO(record), len(record),
                                   content_type="application/json")  # fmt: skip
        except Exception as exc:
            _translate(exc, f"the quarantine of {sha256}")

    def _release(self, sha256: str) -> None:
        marker = self._marker(sha256)
        try:  # every version (and delete marker): the bucket is versioned, as Object Lock needs
            for obj in self.client.list_objects(self.bucket, prefix=marker, include_version=True):
                if obj.object_name == marker:
                    self.client.remove_object(self.bucket, marker, version_id=obj.version_id)
        except Exception as exc:
            _translate(exc, f"the quarantine of {sha256}")

    def close(self) -> None:
        self._http.clear()


def _header(headers: Any, name: str) -> str | None:
    for k, v in (headers or {}).items():
        if k.lower() == name:
            return str(v)
    return None


def _parts(chunks: Iterator[bytes], size: int) -> Iterator[bytes]:
    buf = bytearray()
    for chunk in chunks:
        buf += chunk
        while len(buf) >= size:
            yield bytes(buf[:size])
            del buf[:size]
    if buf:
        yield bytes(buf)
