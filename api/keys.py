"""``sifa rotate-key``: hand the court's log to a new key, announced in the log itself (docs/keys.md).

With the node stopped (the command takes the sequencer lock first, and refuses while a sequencer or
another rotation holds it; it reads ``log.key`` only under the lock): a new Ed25519 key is made;
one leaf, ``LogKeyRotated``, signed by the old key and the new one, is appended, and the checkpoint
that holds it is signed by the new key, in one transaction; the new key then becomes ``log.key``.
Of the old key only its public (verifier) key is kept, as ``log.key.<key id>.retired``: its
private part is deleted, so a copy of the data dir made later cannot sign in the old key's window.
A crash between the two leaves ``log.key.next``, which the next run finishes installing.
"""

from __future__ import annotations

import fcntl
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import IO

from api.node import LOG_KEY, NodeError, load_config, load_signer, open_tree_store
from ledger.keys import LABEL, rotation_leaf
from ledger.log import MerkleLog
from ledger.note import Ed25519Signer
from ledger.store import SequencerBusyError

NEXT = LOG_KEY + ".next"
SERVING = "serving.lock"  # held (shared) by every process that serves the node; rotate-key takes it alone


def serving(data_dir: Path) -> IO[str]:
    """Hold the data dir's serving lock (shared) for as long as the returned file stays open: a
    serving node loaded ``log.key`` once and publishes and signs with it, so ``sifa rotate-key``
    refuses while any node holds this (docs/keys.md). Waits while a rotation runs."""
    fd = os.open(data_dir / SERVING, os.O_RDWR | os.O_CREAT, 0o600)
    os.fchmod(fd, 0o600)  # whatever a copy of the data dir left
    f = os.fdopen(fd, "r+")
    fcntl.flock(f, fcntl.LOCK_SH)
    return f


def _no_node_serving(data_dir: Path) -> IO[str]:
    """The serving lock, alone; raises NodeError while a node serves from ``data_dir``."""
    fd = os.open(data_dir / SERVING, os.O_RDWR | os.O_CREAT, 0o600)
    f = os.fdopen(fd, "r+")
    try:
        fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        f.close()
        raise NodeError("a node is serving from this data dir (sifa serve): stop it before rotating its key") from None
    return f


def _install(data_dir: Path, old: Ed25519Signer) -> None:
    retired = data_dir / f"{LOG_KEY}.{old.key_id.hex()}.retired"
    if not retired.exists():
        fd = os.open(retired, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(old.verifier.vkey() + "\n")  # the public key only: a replaced key signs nothing more
            f.flush()
            os.fsync(f.fileno())
    os.replace(data_dir / NEXT, data_dir / LOG_KEY)


def rotate_key(data_dir: Path, database_url: str = "", compromised_from: int | None = None) -> tuple[str, int]:
    """Rotate the log key; return the new verifier key and the rotation leaf's index.

    ``compromised_from``: the old key is marked compromised from that leaf index on (a checkpoint
    it signs of a larger size is refused). Raises NodeError (a sequencer running, a bad index).
    """
    config = load_config(data_dir)
    alone = _no_node_serving(data_dir)
    tree = open_tree_store(data_dir, database_url)
    try:
        try:
            lease = tree.sequencer_lock()
        except SequencerBusyError as exc:
            raise NodeError(
                f"{exc.diagnostics()}: stop the node (or the other sifa rotate-key) before rotating its key"
            ) from None
        with lease:
            # Read under the lock: a rotation that finished while this one waited has replaced log.key.
            old = load_signer(data_dir)
            if not isinstance(old, Ed25519Signer):
                raise NodeError("sifa rotate-key: key rotation on a 国密 (SM2) log is not built yet (docs/keys.md)")
            merkle = MerkleLog(tree)
            pending = data_dir / NEXT
            if pending.exists():  # a rotation committed before a crash, or one that never was
                new = Ed25519Signer.from_skey(pending.read_text())
                last = merkle.last(LABEL)
                if last is not None and f'"new":"{new.verifier.vkey()}"' in merkle.entry(last).decode():
                    _install(data_dir, old)
                    return new.verifier.vkey(), last
                pending.unlink()
            new = Ed25519Signer.generate(config.origin)
            fd = os.open(pending, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as f:
                f.write(new.skey() + "\n")
                f.flush()
                os.fsync(f.fileno())
            state = tree.state()
            if compromised_from is not None and not 0 <= compromised_from <= state.size:
                pending.unlink()
                raise NodeError(f"--compromised-from is a leaf index from 0 to the log's size {state.size}")
            now = datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
            leaf = rotation_leaf(old, new, state.size, now, compromised_from)
            merkle.append([leaf], cursor=state.cursor, labels=[[LABEL]], signer=new, base=state)
            _install(data_dir, old)
            return new.verifier.vkey(), state.size
    finally:
        tree.close()
        alone.close()
