"""Static reads: the court's log published to an S3/MinIO bucket in the c2sp.org/tlog-tiles layout.

Public reads then scale on object storage and its caches, as Tessera's storage drivers do: the
node writes, the bucket (or a CDN in front of it) serves ``<prefix>checkpoint``,
``<prefix>tile/<L>/<N>[.p/<W>]`` and ``<prefix>tile/entries/<N>[.p/<W>]``.

Tiles and entry bundles are **immutable objects**: each is written once, after a look that it is
not there, and never again (a partial tile of width W is fixed forever: the next size gets a new
object, ``.p/W+1`` or the full tile), with ``Cache-Control: public, max-age=31536000, immutable``.
The checkpoint is the one object that changes; it is written last, after every tile and bundle it
needs, with ``Cache-Control: no-cache``, so a reader who has a checkpoint finds all it names.
Each round publishes what the newest checkpoint has beyond the checkpoint already in the bucket.

Run by the sequencer (one per log) every ``SIFA_PUBLISH_INTERVAL_SECONDS`` when
``SIFA_PUBLISH_BUCKET`` is set (on the ``SIFA_S3_*`` endpoint); ``sifa publish`` runs one round.
"""

from __future__ import annotations

import io
import logging

from minio import Minio
from minio.error import S3Error

from api.node import NodeError
from api.settings import Settings
from dossier.sealer import Stop
from ledger.checkpoint import Checkpoint
from ledger.log import MerkleLog
from ledger.note import Note
from ledger.tiles import pack_entries
from ledger.tlog_client import paths_for

log = logging.getLogger("sifa.publish")

IMMUTABLE = "public, max-age=31536000, immutable"
MUTABLE = "no-cache"


class Publisher:
    """Publishes one log's tiles, entry bundles and checkpoint to ``bucket`` under ``prefix``."""

    def __init__(self, merkle: MerkleLog, client: Minio, bucket: str, prefix: str = "") -> None:
        self.log, self.client, self.bucket = merkle, client, bucket
        self.prefix = prefix if not prefix or prefix.endswith("/") else prefix + "/"
        self.written = 0  # objects written by this publisher (tests, the log line)
        if not client.bucket_exists(bucket):
            client.make_bucket(bucket)

    def published_size(self) -> int:
        """The size of the checkpoint in the bucket (0: none yet)."""
        try:
            response = self.client.get_object(self.bucket, self.prefix + "checkpoint")
        except S3Error as exc:
            if exc.code == "NoSuchKey":
                return 0
            raise
        try:
            text = response.read().decode("utf-8")
        finally:
            response.close()
            response.release_conn()
        return Checkpoint.from_text(Note.from_text(text).text).size

    def publish(self) -> int:
        """Publish the newest checkpoint and everything it needs; return its size."""
        kept = self.log.store.checkpoint()
        if kept is None:
            return 0
        size, note = kept
        old = self.published_size()
        if size < old:
            log.error("the bucket's checkpoint (size %d) is ahead of this log's (%d): nothing published", old, size)
            return old
        for path, level, index in paths_for(old, size):
            if self._exists(path):
                continue  # written by a round cut short before its checkpoint: immutable, so the same bytes
            if level < 0:
                start = index * 256
                data = pack_entries(self.log.entries(start, min(size, start + 256)))
            else:
                width = int(path.rsplit(".p/", 1)[1]) if ".p/" in path else 256
                tile = self.log.store.read_tiles([(level, index)])[(level, index)]
                data = tile.bottom()[: width * self.log.store.hash_size]
            self._put(path, data, IMMUTABLE)
        if size != old or not self._exists("checkpoint"):
            self._put("checkpoint", note.encode("utf-8"), MUTABLE, content_type="text/plain; charset=utf-8")
        return size

    def _exists(self, path: str) -> bool:
        try:
            self.client.stat_object(self.bucket, self.prefix + path)
        except S3Error as exc:
            if exc.code in ("NoSuchKey", "NoSuchObject", "ResourceNotFound"):
                return False
            raise
        return True

    def _put(self, path: str, data: bytes, cache: str, *, content_type: str = "application/octet-stream") -> None:
        self.client.put_object(self.bucket, self.prefix + path, io.BytesIO(data), len(data), content_type=content_type,
                               metadata={"Cache-Control": cache})  # fmt: skip
        self.written += 1

    def run(self, stop: Stop, interval: float) -> None:
        """A round every ``interval`` seconds until ``stop`` is set; a failed round is tried again."""
        while not stop.wait(interval):
            try:
                self.publish()
            except Exception:
                log.exception("publishing the log to bucket %s failed; trying again in %.1f s", self.bucket, interval)


def publisher_for(settings: Settings, merkle: MerkleLog) -> Publisher:
    """The publisher the settings name (SIFA_PUBLISH_BUCKET on the SIFA_S3_* endpoint). Raises NodeError."""
    if not settings.publish_bucket or not settings.s3_endpoint:
        raise NodeError("SIFA_PUBLISH_BUCKET and SIFA_S3_ENDPOINT name where the log is published")
    client = Minio(settings.s3_endpoint, settings.s3_access_key, settings.s3_secret_key, secure=settings.s3_secure,
                   region=settings.s3_region)  # fmt: skip
    return Publisher(merkle, client, settings.publish_bucket, settings.publish_prefix)
