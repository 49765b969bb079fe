"""The one place sifa reaches into ``minio``'s private methods: S3's low-level multipart calls.

Upstream gap: minio-py exposes multipart uploads only inside ``put_object``, which completes every
upload it starts. The blob store must be able to abort after the last part (the bytes did not hash
to the declared name: nothing may become visible), so it drives CreateMultipartUpload, UploadPart,
CompleteMultipartUpload and AbortMultipartUpload itself. minio-py keeps those as underscored methods
and its maintainers point users to them for exactly this (minio/minio-py#1484, "You would need to use
low level APIs `_create_multipart_upload()`, `_upload_part()` and `_complete_multipart_upload()`").
They are not a stable API: ``MINIO_VERSION`` is the exact version pinned in pyproject.toml, and
tests/test_blob_store.py checks both, so an upgrade is a deliberate step that re-reads these calls.
"""

from __future__ import annotations

from minio import Minio
from minio.datatypes import ListMultipartUploadsResult, Part

MINIO_VERSION = "7.2.20"  # the version these calls were read against (pyproject.toml pins it)
Headers = dict[str, str | list[str] | tuple[str]]


class Multipart:
    """S3's multipart calls on one bucket, through ``client``."""

    def __init__(self, client: Minio, bucket: str) -> None:
        self.client, self.bucket = client, bucket

    def create(self, key: str, headers: Headers) -> str:
        """Start an upload to ``key``; its upload id."""
        upload_id: str = self.client._create_multipart_upload(self.bucket, key, headers)
        return upload_id

    def upload_part(self, key: str, upload_id: str, number: int, data: bytes) -> Part:
        etag: str = self.client._upload_part(self.bucket, key, data, None, upload_id, number)
        return Part(number, etag)

    def complete(self, key: str, upload_id: str, parts: list[Part]) -> None:
        self.client._complete_multipart_upload(self.bucket, key, upload_id, parts)

    def abort(self, key: str, upload_id: str) -> None:
        self.client._abort_multipart_upload(self.bucket, key, upload_id)

    def in_progress(self) -> ListMultipartUploadsResult:
        """Uploads started and neither completed nor aborted (the tests check none is left)."""
        found: ListMultipartUploadsResult = self.client._list_multipart_uploads(self.bucket)
        return found
