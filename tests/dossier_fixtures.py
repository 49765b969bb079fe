"""Building a court's dossier stack (events, blobs, tree, sealer) for tests."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from dossier.application import DossierApp, postgres_env, sqlite_env
from dossier.courts import Court, CourtRegistry
from dossier.sealer import Sealer
from ledger.log import MerkleLog
from ledger.note import Ed25519Signer
from ledger.store import TreeStore
from storage.filesystem import FilesystemBlobStore

COURT = "1101-0105"
ORIGIN = f"sifa.court/{COURT}"
CIPHER_KEY = "c2lmYS10ZXN0LWtleS0zMi1ieXRlcy1sb25nLTAwMDA="  # 32 bytes, tests only
COURTS = CourtRegistry([
    Court(COURT, "北京市朝阳区人民法院", "基层", "1101-0200"),
    Court("1101-0200", "北京市第三中级人民法院", "中级", "1100-0000"),
    Court("1100-0000", "北京市高级人民法院", "高级", "0000-0000"),
])  # fmt: skip
SIGNER_SEED = bytes(range(32))


@dataclass
class Stack:
    app: DossierApp
    log: MerkleLog
    sealer: Sealer
    signer: Ed25519Signer

    def close(self) -> None:
        self.app.close()
        self.log.store.close()


def pdf_bytes(pages: int) -> bytes:
    """A real PDF of blank A4 pages (pypdf)."""
    import io

    from pypdf import PdfWriter

    w = PdfWriter()
    for _ in range(pages):
        w.add_blank_page(width=595, height=842)
    out = io.BytesIO()
    w.write(out)
    return out.getvalue()


def make_stack(spec: str, root: Path, court: str = COURT, seed: bytes = SIGNER_SEED) -> Stack:
    """``spec`` is ``sqlite`` or ``postgres:<host>:<port>:<dbname>``; ``court`` whose stack it is."""
    blobs = FilesystemBlobStore(root / "blobs")
    store: TreeStore
    if spec == "sqlite":
        from ledger.sqlite import SQLiteTreeStore

        env = sqlite_env(str(root / "events.sqlite"), CIPHER_KEY)
        store = SQLiteTreeStore(root / "tree.sqlite")
    else:
        from ledger.postgres import PostgresTreeStore

        _, host, port, dbname = spec.split(":")
        env = postgres_env(host, int(port), "postgres", dbname, "", CIPHER_KEY)
        store = PostgresTreeStore(f"host={host} port={port} user=postgres dbname={dbname}")
    app = DossierApp(env, blobs, COURTS, court)
    log = MerkleLog(store)
    signer = Ed25519Signer(f"sifa.court/{court}", seed)
    secret = hashlib.sha256(b"sifa test leaf secret|" + court.encode()).digest()  # each court its own, tests only
    return Stack(app, log, Sealer(app, log, signer, secret=secret, batch=200), signer)
