"""Processes that start, stop and restart cleanly (issue 24): signals that cannot deadlock, a
sequencer that dies with its node, a node that restarts its sequencer or exits non-zero."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx2
import pytest

from api import lifecycle
from api.composition import open_node
from api.lifecycle import Supervisor
from api.settings import Settings
from tests.nodes import ROOT, Serve, alive, init, open_files

ACT = {"actor": "clerk:test", "role": "clerk"}


def hammer(kind: str) -> subprocess.CompletedProcess[str]:
    seconds = "2" if kind == "flag" else "5"  # the old handler is caught within a second; 5 s to be sure
    try:
        return subprocess.run([sys.executable, "-m", "tests.signal_hammer", kind, seconds], cwd=ROOT,
                              capture_output=True, text=True, timeout=20)  # fmt: skip
    except subprocess.TimeoutExpired:
        return subprocess.CompletedProcess([], 124, "", "stuck")


def test_a_signal_handler_never_waits_on_a_lock() -> None:
    """SIGTERM handled while the main thread waits: StopFlag's handler takes no lock, so it can
    land anywhere. The same hammer shows the old handler (``threading.Event.set``) stuck on the
    event's own lock, held by the very thread the handler interrupted (issue 24's stack)."""
    flag = hammer("flag")
    assert flag.returncode == 0 and flag.stdout.startswith("done"), flag.stderr[-2000:]
    event = hammer("event")
    assert event.returncode != 0 and "done" not in event.stdout  # stuck or crashed, as sifa seal was


def test_supervisor_restarts_a_dying_child_then_gives_up(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(lifecycle, "BACKOFF", 0.01)
    monkeypatch.setattr(lifecycle, "RESTARTS", 3)
    gave_up = threading.Event()
    failing = Supervisor([sys.executable, "-c", "raise SystemExit(2)"], dict(os.environ), on_give_up=gave_up.set)
    failing.start()
    assert gave_up.wait(30) and failing.failed and failing.restarts == 3 and not failing.running
    failing.stop()

    long = Supervisor([sys.executable, "-c", "import time; time.sleep(600)"], dict(os.environ))
    long.start()
    first = long.pid
    assert first is not None and long.running
    os.kill(first, signal.SIGKILL)
    deadline = time.monotonic() + 20
    while long.pid == first or not long.running:
        assert time.monotonic() < deadline, "the child was not restarted"
        time.sleep(0.02)
    second = long.pid
    started = time.monotonic()
    long.stop(timeout=3)
    assert time.monotonic() - started < 3.5 and second is not None and not alive(second) and not long.failed


def _node_with_waiting_event(tmp_path: Path) -> Path:
    data = tmp_path / "node"
    init(data, "1101-0105", "北京市朝阳区人民法院")
    with open_node(Settings(data_dir=data)) as opened:
        opened.dossiers.open_dossier(case_number_text="（2026）京0105民初1号", case_type="民事", parties=[], **ACT)
    return data


ORPHAN_PARENT = """
import os, subprocess, sys, time
child = subprocess.Popen([sys.executable, "-m", "api.cli", "seal", "--parent", str(os.getpid()), "--data-dir",
                          sys.argv[1]], stderr=subprocess.DEVNULL)
print(child.pid, flush=True)
time.sleep(600)
"""


@pytest.mark.slow
def test_an_orphaned_sequencer_stops_within_a_second_whatever_it_does(tmp_path: Path) -> None:
    """Its node killed with SIGKILL while the sequencer is stuck inside a database call (the tree
    store's write lock held elsewhere, SQLite's busy wait in C): gone within a second all the same,
    its transaction rolled back, no file held open. Before issue 24 it stayed up to 10 s, or for good."""
    data = _node_with_waiting_event(tmp_path)
    tree = data / "tree.sqlite"
    parent = subprocess.Popen([sys.executable, "-c", ORPHAN_PARENT, str(data)], cwd=ROOT, stdout=subprocess.PIPE,
                              text=True)  # fmt: skip
    blocker = sqlite3.connect(tree, isolation_level=None)
    try:
        assert parent.stdout is not None
        child = int(parent.stdout.readline())
        deadline = time.monotonic() + 60
        while not any(str(tree) in f and f.startswith(f"{child}:") for f in open_files(data)):
            assert time.monotonic() < deadline, "the sequencer did not open its stores"
            time.sleep(0.05)
        time.sleep(1.0)  # it seals the waiting event, then waits for more
        with open_node(Settings(data_dir=data)) as opened:
            blocker.execute("BEGIN IMMEDIATE")  # its next commit waits on SQLite's lock, in C
            opened.dossiers.open_dossier(case_number_text="（2026）京0105民初2号", case_type="民事", parties=[], **ACT)
        time.sleep(0.5)  # it is in the commit now
        parent.kill()
        parent.wait()
        killed = time.monotonic()
        while alive(child):
            assert time.monotonic() - killed < 1.0, "the orphaned sequencer outlived its node by a second"
            time.sleep(0.01)
    finally:
        blocker.close()
        if parent.poll() is None:
            parent.kill()
            parent.wait()
        if parent.stdout is not None:
            parent.stdout.close()
    assert open_files(data) == []
    with open_node(Settings(data_dir=data)) as opened:
        store = opened.tree
        assert store.state().size == 1 and not store.sequencer_status().alive  # the second batch rolled back


@pytest.mark.slow
def test_a_second_sequencer_waits_and_takes_over(tmp_path: Path) -> None:
    """``sifa seal`` beside a running node waits for the lock (sealing nothing), stops at once on
    SIGTERM while waiting, and seals on once the node's sequencer is gone; ``--once`` exits 3."""
    data = _node_with_waiting_event(tmp_path)
    node = Serve(data)
    env = {**os.environ, "SIFA_DATA_DIR": str(data)}
    try:
        node.sealing()  # its sequencer holds the lock
        once = subprocess.run([sys.executable, "-m", "api.cli", "seal", "--once"], cwd=ROOT, env=env,
                              capture_output=True, text=True, timeout=60)  # fmt: skip
        assert once.returncode == 3, once.stderr
        assert once.stderr.count("\n") == 1 and "another sequencer seals this log" in once.stderr
        waiting = subprocess.Popen([sys.executable, "-m", "api.cli", "seal"], cwd=ROOT, env=env,
                                   stderr=subprocess.PIPE, text=True)  # fmt: skip
        assert waiting.stderr is not None
        assert "another sequencer seals this log" in waiting.stderr.readline()
        waiting.send_signal(signal.SIGTERM)
        assert waiting.wait(timeout=2) == 0
        waiting.stderr.close()
        waiting = subprocess.Popen([sys.executable, "-m", "api.cli", "seal"], cwd=ROOT, env=env,
                                   stderr=subprocess.DEVNULL)  # fmt: skip
    finally:
        node.stop()
    try:
        with open_node(Settings(data_dir=data)) as opened:
            app, store = opened.dossiers, opened.tree
            app.open_dossier(case_number_text="（2026）京0105民初3号", case_type="民事", parties=[], **ACT)
            deadline = time.monotonic() + 30
            while store.state().size < 2:  # sealed by the sequencer that waited
                assert time.monotonic() < deadline, "the waiting sequencer did not take over"
                time.sleep(0.05)
            assert store.sequencer_status().alive
    finally:
        waiting.send_signal(signal.SIGINT)
        assert waiting.wait(timeout=5) == 0


@pytest.mark.slow
def test_serve_restarts_its_sequencer_or_exits_non_zero(tmp_path: Path) -> None:
    data = _node_with_waiting_event(tmp_path)
    log = tmp_path / "serve.log"
    node = Serve(data, log=log)
    try:
        first = node.sequencer()
        os.kill(first, signal.SIGKILL)
        deadline = time.monotonic() + 30
        while (second := node.sequencer()) == first:
            assert time.monotonic() < deadline, "sifa serve did not restart its sequencer"
            time.sleep(0.05)
        with httpx2.Client(base_url=node.url, timeout=10) as http:
            while (r := http.get("/healthz")).json()["sequencer"] != "sealing":
                assert time.monotonic() < deadline, r.text
                time.sleep(0.1)
            assert r.status_code == 200
        # Without the log key the sequencer cannot start again: the node gives up and exits 1.
        (data / "log.key").rename(tmp_path / "log.key")
        os.kill(second, signal.SIGKILL)
        assert node.proc.wait(timeout=60) == 1
        assert "the sequencer died and could not be restarted" in log.read_text()
    finally:
        node.stop()


@pytest.mark.slow
def test_start_stop_drill(tmp_path: Path) -> None:
    """Ten cycles of bench/drill.py (the hundred of issue 24: ``python -m bench drill``): every time
    every process of the node gone within 5 s, no file of its data dir open, the next start seals
    on; ``sifa audit`` clean at the end, a leaf for every event."""
    from bench.drill import run

    seed = int.from_bytes(os.urandom(4), "big")
    drill = run(tmp_path, cycles=10, seed=seed)
    assert drill.failures == [], f"python -m bench drill --cycles 10 --seed {seed}"
    assert drill.audit["clean"] and drill.audit["events"] == drill.audit["leaves"] and drill.acked > 0


def test_thread_sequencer_holds_the_lock_and_lets_go(tmp_path: Path) -> None:
    """SIFA_SEQUENCER=thread: the sequencer in the API process takes the same lock (a `sifa seal
    --once` beside it would exit 3), /healthz says it seals, and a stopped app holds nothing."""
    import uvicorn

    from api.app import create_app
    from api.node import open_tree_store
    from api.settings import Settings
    from ledger.store import SequencerBusyError
    from tests.servers import free_port

    data = _node_with_waiting_event(tmp_path)
    port = free_port()
    settings = Settings(data_dir=data, port=port, seal_interval_seconds=0.01, sequencer="thread")
    server = uvicorn.Server(uvicorn.Config(create_app(settings), host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    store = open_tree_store(data, "")
    try:
        deadline = time.monotonic() + 30
        with httpx2.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as http:
            while True:
                try:
                    r = http.get("/healthz")
                    if r.json() | {"checkpoint_age_seconds": 0} == {
                        "status": "ok", "sequencer": "sealing", "events_waiting": 0, "tree_size": 1,
                        "checkpoint_age_seconds": 0, "stalled": None, "problems": []}:  # fmt: skip
                        break
                except httpx2.TransportError:
                    pass
                assert time.monotonic() < deadline, "the thread sequencer did not seal"
                time.sleep(0.05)
        with pytest.raises(SequencerBusyError):
            store.sequencer_lock()
    finally:
        server.should_exit = True
        thread.join(timeout=30)
    assert not store.sequencer_status().alive
    store.close()
    assert open_files(data) == []


@pytest.mark.slow
def test_deleting_a_file_never_lets_a_second_sequencer_in(tmp_path: Path) -> None:
    """The SQLite sequencer lock is a flock on tree.sqlite itself: deleting every other file of the
    data dir that looks like a lock lets no `sifa seal --once` beside a running node (exit 3), and
    /healthz still sees the node's sequencer."""
    data = _node_with_waiting_event(tmp_path)
    node = Serve(data)
    env = {**os.environ, "SIFA_DATA_DIR": str(data)}
    try:
        node.sealing()
        for leftover in data.glob("*.lock"):
            leftover.unlink()
        once = subprocess.run([sys.executable, "-m", "api.cli", "seal", "--once"], cwd=ROOT, env=env,
                              capture_output=True, text=True, timeout=60)  # fmt: skip
        assert once.returncode == 3, once.stderr
        assert node.sealing()["status"] == "ok"
    finally:
        node.stop()


def test_the_sequencer_lock_is_the_database_file(tmp_path: Path) -> None:
    """flock on tree.sqlite and SQLite's own (fcntl) locks do not see each other on Linux: a held
    sequencer lock blocks no writer, a writer's open transaction blocks no sequencer lock, and a
    health probe or a lease released leaves SQLite's locks of the same process in place."""
    from ledger.sqlite import SQLiteTreeStore

    path = tmp_path / "tree.sqlite"
    store = SQLiteTreeStore(path)
    holder = subprocess.Popen([sys.executable, "-c", "import sys, time\nfrom ledger.sqlite import SQLiteTreeStore\n"
                               "lease = SQLiteTreeStore(sys.argv[1]).sequencer_lock()\nprint('locked', flush=True)\n"
                               "time.sleep(600)", str(path)], cwd=ROOT, stdout=subprocess.PIPE)  # fmt: skip
    try:
        assert holder.stdout is not None and holder.stdout.readline() == b"locked\n"
        assert store.sequencer_status().alive
        writer = sqlite3.connect(str(path), isolation_level=None, timeout=1)
        writer.execute("BEGIN IMMEDIATE")  # a write lock, taken while another process holds the flock
        writer.execute("CREATE TABLE t (x)")
        writer.execute("COMMIT")
        writer.execute("BEGIN IMMEDIATE")
    finally:
        holder.kill()
        holder.wait()
        if holder.stdout is not None:
            holder.stdout.close()
    deadline = time.monotonic() + 10
    while store.sequencer_status().alive:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    lease = store.sequencer_lock()  # while the writer holds SQLite's write lock
    lease.release()
    store.sequencer_status()
    other = sqlite3.connect(str(path), isolation_level=None, timeout=0.2)
    with pytest.raises(sqlite3.OperationalError, match="locked"):
        other.execute("BEGIN IMMEDIATE")  # the writer's lock survived the probe and the lease
    writer.execute("ROLLBACK")
    writer.close()
    other.close()
    store.close()


@pytest.mark.slow
def test_healthz_is_degraded_while_a_stopped_sequencer_seals_nothing(tmp_path: Path) -> None:
    """A SIGSTOPped sequencer still holds the lock: /healthz says 503 once an event has waited longer
    than SIFA_SEAL_LAG_SECONDS with no new checkpoint, and 200 again once it seals on."""
    data = _node_with_waiting_event(tmp_path)
    node = Serve(data, SIFA_SEAL_LAG_SECONDS="2")
    try:
        node.sealing()
        sequencer = node.sequencer()
        os.kill(sequencer, signal.SIGSTOP)
        try:
            with open_node(Settings(data_dir=data)) as opened:
                opened.dossiers.open_dossier(case_number_text="（2026）京0105民初9号", case_type="民事", parties=[],
                                             **ACT)  # fmt: skip
            with httpx2.Client(base_url=node.url, timeout=10) as http:
                assert http.get("/healthz").status_code == 200  # within the bound
                time.sleep(2.5)
                r = http.get("/healthz")
                assert r.status_code == 503, r.text
                body = r.json()
                assert body["status"] == "degraded" and body["events_waiting"] == 1
                assert any("SIFA_SEAL_LAG_SECONDS" in p for p in body["problems"]), body
        finally:
            os.kill(sequencer, signal.SIGCONT)
        assert node.sealing()["status"] == "ok"
    finally:
        node.stop()


@pytest.mark.slow
def test_a_crash_looping_sequencer_is_dead_not_starting(tmp_path: Path) -> None:
    """The start-up grace counts from the node's start: a sequencer dying over and over long after it
    is never "starting" again, and /healthz answers 503 every time until the node gives up."""
    from api.health import STARTING

    data = _node_with_waiting_event(tmp_path)
    began = time.monotonic()
    node = Serve(data, log=tmp_path / "serve.log")
    try:
        node.sealing()
        time.sleep(max(0.0, STARTING + 1 - (time.monotonic() - began)))
        (data / "log.key").rename(tmp_path / "log.key")  # every restart now dies at once
        os.kill(node.sequencer(), signal.SIGKILL)
        seen: list[tuple[int, str]] = []
        with httpx2.Client(base_url=node.url, timeout=10) as http:
            while node.proc.poll() is None:
                try:
                    r = http.get("/healthz")
                except httpx2.TransportError:
                    break  # the node gave up and stopped
                seen.append((r.status_code, r.json()["sequencer"]))
                time.sleep(0.1)
        assert len(seen) > 20 and [s for s in seen[5:] if s != (503, "dead")] == [], seen
    finally:
        node.stop()


def test_the_restart_backoff_is_the_documented_one() -> None:
    """docs/operations.md names the waits before each restart and how many restarts there are."""
    docs = (ROOT / "docs" / "operations.md").read_text()
    waits = [lifecycle.restart_delay(n) for n in range(1, lifecycle.RESTARTS + 1)]
    named = ", ".join(f"{w:g}" for w in waits[:-1]) + f" and {waits[-1]:g} s"
    assert lifecycle.RESTARTS == 5 and "five times in a row" in docs and f"(after {named})" in docs, named
