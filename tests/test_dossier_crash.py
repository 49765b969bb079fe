"""Kill -9 while 1,000 events are written and sealed; after restart nothing is lost or doubled."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from dossier.envelope import read_leaf
from evidence.disclosure import dossier_ref
from ledger.receipt import verify_receipt
from tests.dossier_fixtures import make_stack
from tests.servers import PostgresCluster

ROOT = Path(__file__).resolve().parent.parent
TOTAL = 2000


def _run(spec: str, root: Path, count: int, kill_after: float | None) -> tuple[list[tuple[str, int]], bool]:
    proc = subprocess.Popen([sys.executable, "-m", "tests.dossier_writer", spec, str(root), str(count)],
                            cwd=ROOT, stdout=subprocess.PIPE, text=True)  # fmt: skip
    assert proc.stdout is not None
    acks: list[tuple[str, int]] = []
    assert proc.stdout.readline() == "ready\n"
    if kill_after is not None:
        threading.Timer(kill_after, lambda: proc.poll() is None and proc.send_signal(signal.SIGKILL)).start()
    for line in proc.stdout:
        if line.startswith("ack "):
            _, dossier, version = line.split()
            acks.append((dossier, int(version)))
    proc.wait(timeout=300)
    proc.stdout.close()
    return acks, proc.returncode == -signal.SIGKILL


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_kill_9_while_writing_and_sealing(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    spec = "sqlite"
    if backend == "postgres":
        cluster: PostgresCluster = request.getfixturevalue("postgres")
        cluster.create_database("crash")
        spec = f"postgres:127.0.0.1:{cluster.port}:crash"
    rng = random.Random(os.getpid())
    acked: list[tuple[str, int]] = []
    kills = 0
    started = time.monotonic()
    while len(acked) < TOTAL:
        last = kills >= 5 or time.monotonic() - started > 120
        acks, killed = _run(spec, tmp_path, TOTAL - len(acked), None if last else rng.uniform(0.02, 0.4))
        acked += acks
        kills += killed
    assert kills >= 3, "the writer was not killed mid-way often enough to test anything"

    stack = make_stack(spec, tmp_path)
    stack.sealer.seal()
    notes = stack.app.recorder.select_notifications(start=None, limit=10 * TOTAL)
    stored = {(str(n.originator_id), n.originator_version) for n in notes}
    assert set(acked) <= stored  # every acknowledged event survived
    leaves = [read_leaf(e) for e in stack.log.entries(0, stack.log.size)]
    assert len(leaves) == len(notes)  # leaves == events, one to one, in order
    assert [(x["dossier"], x["version"], x["position"]) for x in leaves] == [
        (dossier_ref(stack.sealer.secret, n.originator_id), n.originator_version, n.id) for n in notes
    ]
    for index in range(0, len(leaves), 7):
        verify_receipt(stack.log.receipt(index, leaves[index]["time"]), [stack.signer.verifier])
    stack.close()
