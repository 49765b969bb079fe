"""Building a court's dossier stack (events, blobs, tree, sealer) for tests."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from dossier.application import DossierApp, postgres_env, sqlite_env
from dossier.courts import Court, CourtRegistry
from dossier.sealer import Sealer
from ledger.gm import N, SM2Signer
from ledger.hashing import SHA256, SM3Hasher
from ledger.log import MerkleLog
from ledger.note import Ed25519Signer
from ledger.store import TreeStore
from storage.blobstore import BlobStore
from storage.filesystem import FilesystemBlobStore

COURT = "1101-0105"
ORIGIN = f"sifa.court/{COURT}"
CIPHER_KEY = "c2lmYS10ZXN0LWtleS0zMi1ieXRlcy1sb25nLTAwMDA="  # 32 bytes, tests only
SM4_KEY = "c2lmYS1zbTQta2V5LTE2Qg=="  # 16 bytes, tests only (a GM stack's events)
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
    signer: Ed25519Signer | SM2Signer

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


def make_stack(
    spec: str, root: Path, court: str = COURT, seed: bytes = SIGNER_SEED, blobs: BlobStore | None = None
) -> Stack:
    """``spec`` is ``sqlite`` or ``postgres:<host>:<port>:<dbname>``, with ``+gm`` for a 国密 stack (SM4-GCM
    events, SM3 tree, SM2 checkpoints); ``court`` whose stack it is; ``blobs`` files under ``root`` if None."""
    spec, _, crypto = spec.partition("+")
    gm = crypto == "gm"
    key, topic = (SM4_KEY, "dossier.cipher:SM4Cipher") if gm else (CIPHER_KEY, "eventsourcing.cryptography:AESCipher")
    blobs = FilesystemBlobStore(root / "blobs") if blobs is None else blobs
    store: TreeStore
    if spec == "sqlite":
        from ledger.sqlite import SQLiteTreeStore

        env = sqlite_env(str(root / "events.sqlite"), key, topic)
        store = SQLiteTreeStore(root / "tree.sqlite")
    else:
        from ledger.postgres import PostgresTreeStore

        _, host, port, dbname = spec.split(":")
        env = postgres_env(host, int(port), "postgres", dbname, "", key, topic)
        store = PostgresTreeStore(f"host={host} port={port} user=postgres dbname={dbname}")
    app = DossierApp(env, blobs, COURTS, court)
    log = MerkleLog(store, SM3Hasher() if gm else SHA256)
    name = f"sifa.court/{court}"
    signer: Ed25519Signer | SM2Signer
    if gm:
        signer = SM2Signer(name, (int.from_bytes(seed, "big") % (N - 2) + 1).to_bytes(32, "big"))
    else:
        signer = Ed25519Signer(name, seed)
    secret = hashlib.sha256(b"sifa test leaf secret|" + court.encode()).digest()  # each court its own, tests only
    return Stack(app, log, Sealer(app, log, signer, secret=secret, batch=200), signer)
