"""The node's scheduled upkeep, run by its sequencer (one per log): fixity sweeps (dossier/fixity.py).

When the last sweep ended is kept in ``fixity.json`` in the data dir, so a restarted sequencer does
not sweep again before its time.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from pathlib import Path

from api.peer_repair import PeerCourts
from api.peers import fetcher
from api.settings import Settings
from dossier.application import DossierApp
from dossier.fixity import (
    ArchivePackages,
    CollectReport,
    CopiesDir,
    Fixity,
    FixityReport,
    RepairSource,
    Stop,
    UnreadableEventsError,
    collect,
)
from ledger.note import Signer
from ledger.trust import Trust
from storage.blobstore import BlobStore
from storage.errors import StorageError

log = logging.getLogger("sifa.maintenance")

STATE = "fixity.json"


def fixity_for(settings: Settings, app: DossierApp, blobs: BlobStore, *, signer: Signer | None = None,
               peers: Trust | None = None) -> Fixity:  # fmt: skip
    """The node's fixity checker, with its repair sources: archive packages, the backup dir, then the
    peer courts the dossier went to (``peers``, asked with requests ``signer`` signs; api/peer_repair.py)."""
    sources: list[RepairSource] = [ArchivePackages(app)]
    if settings.fixity_repair_from is not None:
        sources.append(CopiesDir(settings.fixity_repair_from))
    if settings.fixity_repair_from_peers and peers is not None and signer is not None:
        sources.append(PeerCourts(app, peers, fetcher(signer, settings.tls_ca)))
    return Fixity(app, blobs, bytes_per_second=settings.fixity_bytes_per_second, sources=sources)


def collect_unnamed(settings: Settings, app: DossierApp, blobs: BlobStore) -> CollectReport | None:
    """Delete blobs no event names, stored longer ago than SIFA_FIXITY_COLLECT_AFTER_SECONDS, on either blob
    store (None: off, or not now: an event cannot be read, or the store failed; logged)."""
    if not settings.fixity_collect_after_seconds:
        return None
    try:
        return collect(app, blobs, older_than=settings.fixity_collect_after_seconds)
    except UnreadableEventsError as exc:
        log.error("%s", exc)
    except (StorageError, OSError) as exc:
        log.error("collecting blobs no event names stopped: %s; the next sweep tries again", exc)
    return None


def last_sweep(data_dir: Path) -> float:
    try:
        return float(json.loads((data_dir / STATE).read_text())["last"])
    except (OSError, ValueError, KeyError, TypeError):
        return 0.0


def remember_sweep(data_dir: Path, report: FixityReport) -> None:
    tmp = data_dir / f".{STATE}.{os.getpid()}"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump({"last": time.time(), "report": report.to_dict()}, f)
    os.replace(tmp, data_dir / STATE)


def start_fixity(settings: Settings, app: DossierApp, blobs: BlobStore, stop: Stop, *, signer: Signer | None = None,
                 peers: Trust | None = None) -> threading.Thread | None:  # fmt: skip
    """A thread sweeping on the settings' schedule (None when SIFA_FIXITY_INTERVAL_SECONDS is 0)."""
    interval = settings.fixity_interval_seconds
    if not interval:
        return None
    fixity = fixity_for(settings, app, blobs, signer=signer, peers=peers)
    data = settings.data_dir

    def loop() -> None:
        wait = max(0.0, last_sweep(data) + interval - time.time())
        while not stop.wait(wait):
            try:
                report = fixity.sweep(stop)
            except Exception:
                log.exception("the fixity sweep failed; the next one is in %.0f s", interval)
            else:
                if stop.is_set():
                    return  # cut short: not a sweep
                collect_unnamed(settings, app, blobs)
                remember_sweep(data, report)
                log.info("fixity sweep: %d file(s), %d bytes in %.1f s; %d corrupt, %d gone, %d repaired",
                         report.checked, report.bytes, report.seconds, len(report.corrupt), len(report.missing),
                         len(report.repaired))  # fmt: skip
            wait = interval

    thread = threading.Thread(target=loop, name="sifa-fixity", daemon=True)
    thread.start()
    return thread
