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

Collection of blobs no event names (dossier/fixity.py decides which) leans on the
bucket's versioning, which Object Lock requires. A put of bytes already stored,
unlocked, and stored longer ago than ``renew_after`` writes them again: a new
version, with a new LastModified (the stored time). ``claim`` notes the versions
the key has now, and refuses if any is under retention or legal hold (nothing is
then deleted, nor tried) or the bucket keeps no versions; ``discard`` deletes
exactly those versions, by version id, each checked unlocked right before. So an
upload of the same bytes racing a collection either wrote its version before the
claim (the claim reports its fresh time: the collector keeps the blob), or after
it (a version ``discard`` does not know, which stays the blob); and an upload that
found the blob stored less than ``renew_after`` ago wrote nothing, but then the
blob is too young to be collected until its event is long recorded (the collector
adds ``renews_after`` to its grace). S3 times are whole seconds: a version is
taken as stored at the end of its LastModified second, never earlier.
"""

from __future__ import annotations

import io
import json
import logging
import threading
import time
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
    InvalidDigestError,
    StorageError,
    StorageFullError,
    StorageUnavailableError,
)
from storage.minio_multipart import Headers, Multipart

log = logging.getLogger(__name__)

MIN_PART = 5 << 20  # SPEC: S3 "each part must be at least 5 MB in size, except the last part"
NOT_FOUND = {"NoSuchKey", "NoSuchObject", "NoSuchVersion", "ResourceNotFound"}
# MinIO: XMinioStorageFull (507, its drives below the free-space threshold) and bucket quotas;
# HTTP 507 Insufficient Storage (RFC 4918) from any other S3 endpoint.
FULL = {"XMinioStorageFull", "XMinioAdminBucketQuotaExceeded", "InsufficientStorage", "QuotaExceeded"}
INSUFFICIENT_STORAGE = 507
# Seconds: a put of bytes stored longer ago than this writes them again (a new version), renewing their stored
# time for collection; sooner, it is a no-op (so identical re-uploads leave at most one extra version an hour).
RENEW_AFTER = 3600.0


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
        renew_after: float | None = None,
    ) -> None:
        """``renew_after``: seconds, RENEW_AFTER if None (see the module docstring)."""
        if part_size < MIN_PART:
            raise StorageError(f"part size must be at least {MIN_PART} bytes")
        self.renews_after = RENEW_AFTER if renew_after is None else renew_after
        self._claims: dict[str, list[tuple[str, bool]]] = {}  # sha256 -> (version id, delete marker), newest first
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
        """False: a sound copy is stored, locked or stored less than ``renews_after`` ago (nothing to write).
        Else what is to be written over: True, a sound copy whose stored time the write renews (collection,
        module docstring); None, nothing; or a corrupt copy's info (so its retention carries over)."""
        sound = self._sound(digest, size)
        if sound is not None:
            if sound.locked_until is not None:
                return False
            return self._age(digest) >= self.renews_after
        try:
            return self.stat(digest)
        except BlobNotFoundError:
            return None

    def _age(self, sha256: str) -> float:
        """Seconds since the blob's current version was stored, from the start of its LastModified second (so
        never less than it is: a blob is renewed rather too early than too late); infinite if it is gone since
        (collected: its bytes are to be written)."""
        try:
            obj = self.client.stat_object(self.bucket, self.key(sha256))
        except S3Error as exc:
            if exc.code in NOT_FOUND:
                return float("inf")
            _translate(exc, sha256)
        except Exception as exc:
            _translate(exc, sha256)
        return float("inf") if obj.last_modified is None else time.time() - obj.last_modified.timestamp()

    def _after(self, digest: str, before: BlobInfo | bool | None) -> None:
        """The right bytes are written over a copy: keep the longest retention any version of the key had
        (a lock may have landed on the copy written over meanwhile, or the corrupt version on top may have
        none); if they replace a corrupt copy, lift its quarantine."""
        if before is True or isinstance(before, BlobInfo):
            until = self._retained_until(digest)
            if until is not None and until > datetime.now(UTC):
                self.lock(digest, until)
        if isinstance(before, BlobInfo):
            self._restored(digest)

    def _retained_until(self, sha256: str) -> datetime | None:
        key, found = self.key(sha256), []
        for obj in self.client.list_objects(self.bucket, prefix=key, include_version=True):
            if obj.object_name == key and not obj.is_delete_marker:
                try:
                    stat = self.client.stat_object(self.bucket, key, version_id=obj.version_id)
                except S3Error as exc:
                    if exc.code in NOT_FOUND:  # deleted since it was listed (collected): it holds no lock
                        continue
                    raise
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

    # Collection (module docstring): claim notes the versions, discard deletes exactly those.

    def unlocked(self) -> Iterator[tuple[str, float]]:
        """Every blob's current version, listed 1,000 keys a page; S3 lists no retention, so locked blobs are
        listed too (``claim`` refuses them)."""
        try:
            for obj in self.client.list_objects(self.bucket, prefix=self.prefix, recursive=True):
                name = obj.object_name or ""
                if _is_key(self, name) and obj.last_modified is not None:
                    yield name.rsplit("/", 1)[-1], _stored(obj.last_modified)
        except StorageError:
            raise
        except Exception as exc:
            _translate(exc, "the listing of blobs")

    def claim(self, sha256: str) -> float | None:
        """Note the versions the blob has now; the time the newest was stored, or None if it is gone, any
        version is under retention or legal hold, or the bucket keeps no versions (a delete could then take
        bytes a put stored meanwhile)."""
        key, versions, newest = self.key(sha256), [], None
        try:
            for obj in self.client.list_objects(self.bucket, prefix=key, include_version=True):
                if obj.object_name != key:
                    continue
                if not obj.version_id or obj.version_id == "null":
                    log.error("bucket %s keeps no versions: blobs no event names are not collected", self.bucket)
                    return None
                if obj.is_latest == "true" and obj.is_delete_marker:
                    return None  # gone
                if not obj.is_delete_marker:
                    if self._held(key, obj.version_id):
                        return None
                    if obj.last_modified is not None:
                        newest = max(newest or 0.0, _stored(obj.last_modified))
                versions.append((obj.version_id, bool(obj.is_delete_marker)))
        except Exception as exc:
            _translate(exc, sha256)
        if newest is None:
            return None
        self._claims[sha256] = versions
        return newest

    def unclaim(self, sha256: str) -> None:
        self._claims.pop(sha256, None)

    def discard(self, sha256: str) -> None:
        """Delete the claimed versions, oldest first (the blob is there until the last one goes), each found
        unlocked right before; a version a put wrote since the claim stays, and is the blob. A quarantine
        marker goes too (a put since lifted it already, or there is nothing left to withhold)."""
        key, versions = self.key(sha256), self._claims.pop(sha256, [])
        try:
            if any(not marker and self._held(key, version) for version, marker in versions):
                raise BlobLockedError(f"blob {sha256} was locked after it was claimed: it is kept")
            for version, _ in reversed(versions):
                self.client.remove_object(self.bucket, key, version_id=version)
            if versions and self.quarantined(sha256):
                self._release(sha256)
        except StorageError:
            raise
        except Exception as exc:
            _translate(exc, sha256)

    def _held(self, key: str, version: str) -> bool:
        """Whether a version is under retention (even a lapsed one: what was locked stays) or legal hold; not if
        it is gone (another collector took it)."""
        try:
            meta = self.client.stat_object(self.bucket, key, version_id=version).metadata
        except S3Error as exc:
            if exc.code in NOT_FOUND:
                return False
            raise
        return bool(_header(meta, "x-amz-object-lock-retain-until-date")) or (
            (_header(meta, "x-amz-object-lock-legal-hold") or "").upper() == "ON"
        )

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


def _is_key(store: S3BlobStore, name: str) -> bool:
    """Whether an object's name is a blob's key (not a quarantine marker, a temporary object, or another's)."""
    try:
        return name == store.key(name.rsplit("/", 1)[-1])
    except InvalidDigestError:
        return False


def _stored(when: datetime) -> float:
    # S3 gives times in whole seconds: a version stored within that second is taken as stored at its end.
    return when.timestamp() + 1.0


def _parts(chunks: Iterator[bytes], size: int) -> Iterator[bytes]:
    buf = bytearray()
    for chunk in chunks:
        buf += chunk
        while len(buf) >= size:
            yield bytes(buf[:size])
            del buf[:size]
    if buf:
        yield bytes(buf)
