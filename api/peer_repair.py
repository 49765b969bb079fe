"""Fixity's repair from a peer court: the courts a dossier was transferred to hold its files.

``PeerCourts`` is a ``dossier.fixity.RepairSource``. For a corrupt or missing file it looks, in each
dossier that holds the file, for the courts the dossier was transferred to (its ``Transferred``
events), and asks each one's node — signed node-to-node requests, as remote retrieval sends them
(api/peers.py) — for ``GET /v1/peer/dossiers/{id}/files/{sha256}``. The peer answers only the
court it received that dossier from (api/routes/transfer.py), and records the read.

The answer is never trusted: it is read at most one byte past the size the file was recorded
with, into a spool (memory, then the system's temp dir), hashed as it arrives, and only bytes of
exactly the recorded size that hash to the file's name are handed to ``BlobStore.put`` (which
hashes them once more). A peer's wrong, short or oversized answer is logged and changes nothing:
the file stays quarantined, its alarm stays, and the next court (if any) is asked.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Callable, Iterator
from tempfile import SpooledTemporaryFile
from typing import TYPE_CHECKING

from api.peers import PeerStream
from dossier.courts import origin_for
from ledger.errors import SifaError
from ledger.trust import Trust
from storage.blobstore import BlobStore
from storage.errors import StorageError

if TYPE_CHECKING:
    from dossier.application import DossierApp

log = logging.getLogger("sifa.fixity")

CHUNK = 1 << 20
SPOOL = 8 << 20  # bytes a fetched copy is held in memory before it spills to a temp file
# A copy must arrive within GRACE seconds plus its size at MIN_RATE: a peer trickling bytes (each read
# within the socket's timeout) would otherwise hold the sweep for as long as it likes.
GRACE = 60.0
MIN_RATE = 256 << 10  # bytes per second

# api/peers.py ``fetcher``: a signed GET, ``fetch(url, target, to=origin, deadline=monotonic time)``
Fetch = Callable[..., PeerStream]


class WrongCopyError(Exception):
    """A peer's answer that is not the file: another size, other bytes, or more than was recorded."""


class PeerCourts:
    """The peer courts that received a dossier holding the file (``peers``: their log keys and urls)."""

    def __init__(self, app: DossierApp, peers: Trust, fetch: Fetch) -> None:
        self.app, self.peers, self.fetch = app, peers, fetch
        self.name = "peer court"

    def repair(self, sha256: str, blobs: BlobStore, holders: set[str]) -> bool:
        for dossier, size, court in self._asks(sha256, holders):
            origin = origin_for(court)
            url = self.peers.log_urls.get(origin)
            if url is None or not any(k.name == origin for k in self.peers.logs):
                log.warning("dossier %s went to court %s, which has no log key and url in this node's peers file "
                            "(SIFA_PEERS): not asked for %s", dossier, court, sha256)  # fmt: skip
                continue
            try:
                with _copy(self.fetch, url, f"/v1/peer/dossiers/{dossier}/files/{sha256}", origin, sha256,
                           size) as spool:  # fmt: skip
                    blobs.put(spool, sha256)
            except WrongCopyError as exc:
                log.error("peer court %s (%s) sent a wrong copy of %s, refused, nothing written: %s", court, url,
                          sha256, exc)  # fmt: skip
                continue
            except (SifaError, StorageError, OSError) as exc:  # unreachable, refused, or our own store failed
                log.warning("peer court %s (%s) gave no copy of %s: %s", court, url, sha256, exc)
                continue
            self.name = f"peer court {court} ({origin})"
            return True
        return False

    def _asks(self, sha256: str, holders: set[str]) -> Iterator[tuple[str, int, str]]:
        """(dossier, recorded size, court) for every court a holding dossier was transferred to."""
        asked: set[tuple[str, str]] = set()
        for dossier in sorted(holders):
            try:
                d = self.app.get(dossier, copy=False)
            except Exception:  # an unreadable dossier is the audit's to report
                continue
            sizes = {doc["size"] for doc in d.documents.values() if doc["sha256"] == sha256}
            if len(sizes) != 1:  # not one of its documents (a package, kept leaves): no peer holds it
                continue
            (size,) = sizes
            for transfer in d.transfers:
                court = str(transfer["to_court"])
                if (str(d.id), court) not in asked:
                    asked.add((str(d.id), court))
                    yield str(d.id), size, court


def _copy(fetch: Fetch, url: str, target: str, origin: str, sha256: str, size: int) -> SpooledTemporaryFile[bytes]:
    """The peer's answer for the file, read into a spool and checked whole (size, then SHA-256); the
    spool, rewound. Raises WrongCopyError, the fetch's errors, OSError (a cut stream)."""
    spool = SpooledTemporaryFile(max_size=SPOOL)  # noqa: SIM115 (the caller's, or closed here)
    # From the request on, headers included: a peer that never finishes its headers (endless 100 Continue
    # answers, a byte at a time) is cut at the deadline too.
    deadline = time.monotonic() + GRACE + size / MIN_RATE
    try:
        answer = fetch(url, target, to=origin, deadline=deadline)
        try:
            _read_bounded(answer, spool, sha256, size, deadline)
        finally:
            answer.close()
    except BaseException:
        spool.close()
        raise
    spool.seek(0)
    return spool


def _read_bounded(answer: PeerStream, spool: SpooledTemporaryFile[bytes], sha256: str, size: int,
                  deadline: float) -> None:  # fmt: skip
    declared = answer.response.headers.get("Content-Length")
    if declared is not None and declared.strip() != str(size):
        raise WrongCopyError(f"it announces {declared.strip()[:20]} bytes; the file was recorded with {size}")
    digest, got = hashlib.sha256(), 0
    while got <= size:  # one byte past the recorded size is enough to refuse
        chunk = answer.read1(min(CHUNK, size + 1 - got))
        if time.monotonic() > deadline:  # a chunk late, or the end the deadline's cut made
            raise WrongCopyError(f"it sent {got} of {size} bytes in {GRACE + size / MIN_RATE:.0f} s, slower than "
                                 f"{MIN_RATE >> 10} KiB/s")  # fmt: skip
        if not chunk:
            break
        got += len(chunk)
        if got > size:
            raise WrongCopyError(f"it sent more than the {size} bytes the file was recorded with")
        digest.update(chunk)
        spool.write(chunk)
    if got != size:
        raise WrongCopyError(f"it sent {got} bytes; the file was recorded with {size}")
    if digest.hexdigest() != sha256:
        raise WrongCopyError(f"its {size} bytes hash to {digest.hexdigest()}")
