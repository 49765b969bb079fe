"""Start/stop drill: a node started and stopped again and again under light load (issue 24).

    python -m bench drill [--cycles 100] [--seed N] [--backend sqlite|postgres]

Each cycle starts a node (``sifa serve`` and its sequencer child, a process group of their own),
waits until it seals on (``/healthz``: a sequencer holds the lock, nothing waits), puts light
write load on it, and at a random moment stops it: SIGTERM to ``sifa serve`` (most cycles),
SIGINT to the whole group (a terminal's Ctrl+C), or SIGKILL to ``sifa serve`` alone (its sequencer
must notice and stop by itself); one cycle in seven is stopped while it is still starting. Every
time, every process of the group must be gone within 5 s and no process may hold a file of the
data dir open; after a SIGTERM (an ordered stop) no stored event may be left unsealed. At the end
``sifa audit`` must be clean, with a leaf for every event.
``tests/test_lifecycle.py`` runs ten cycles; this runs the hundred of the issue.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx2

from bench.common import machine, median, now

GONE_WITHIN = 5.0  # seconds from the signal until no process of the node is left
SEALS_WITHIN = 60.0  # seconds from a start until it has sealed everything waiting
ACTIONS = [("SIGTERM", 6), ("SIGINT", 2), ("SIGKILL", 2)]


@dataclass
class Drill:
    cycles: int = 0
    actions: dict[str, int] = field(default_factory=dict)
    stop_seconds: list[float] = field(default_factory=list)
    seal_seconds: list[float] = field(default_factory=list)  # from a start until all is sealed
    exit_codes: dict[str, set[int]] = field(default_factory=dict)
    acked: int = 0
    failures: list[str] = field(default_factory=list)
    audit: dict[str, object] = field(default_factory=dict)


def _wait_sealed(url: str, deadline: float) -> bool:
    """Until /healthz says a sequencer seals and nothing waits (False if not by ``deadline``)."""
    with httpx2.Client(base_url=url, timeout=5) as http:
        while time.monotonic() < deadline:
            with contextlib.suppress(httpx2.TransportError, ValueError):
                body = http.get("/healthz").json()
                if body["sequencer"] == "sealing" and body["events_waiting"] == 0:
                    return True
            time.sleep(0.05)
    return False


@contextlib.contextmanager
def _environment(env: dict[str, str]) -> Iterator[None]:
    """``env`` in this process's environment for a while (commands run in-process read it)."""
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _unsealed(data: Path, env: dict[str, str]) -> int:
    """Stored events not yet sealed, read from the node's stores (the node is stopped)."""
    from api.composition import open_node
    from api.settings import Settings

    with _environment(env):
        settings = Settings(data_dir=data)
    with open_node(settings) as node:
        return (node.dossiers.recorder.max_notification_id() or 0) - int(node.tree.state().cursor or 0)


@contextlib.contextmanager
def _backend(kind: str) -> Iterator[dict[str, str]]:
    if kind == "sqlite":
        yield {}
        return
    from tests.servers import PostgresCluster

    cluster = PostgresCluster().start()
    try:
        yield {"SIFA_DATABASE_URL": cluster.create_database("drill")}
    finally:
        cluster.stop()


def run(root: Path, cycles: int, seed: int, env: dict[str, str] | None = None) -> Drill:
    """The drill on a new node under ``root``; ``env``: its backend settings (SIFA_DATABASE_URL)."""
    from api.cli import main as sifa
    from tests.nodes import ROOT, Serve, Writer, group, open_files
    from tests.servers import wait_for_port

    env = env or {}
    rng = random.Random(seed)
    drill = Drill()
    data = root / "node"
    out = io.StringIO()
    with _environment(env), contextlib.redirect_stdout(out), contextlib.redirect_stderr(io.StringIO()):
        assert sifa(["init", str(data), "--court", "1101-0105", "--name", "北京市朝阳区人民法院"]) == 0
    admin = out.getvalue().strip()
    token, dossiers = "", []
    settings = {**env, "SIFA_SEAL_INTERVAL_SECONDS": "0.01"}
    for cycle in range(cycles + 1):
        last = cycle == cycles  # one more start: it must seal everything, then stop cleanly
        early = not last and cycle > 0 and rng.random() < 1 / 7
        started = time.monotonic()
        node = Serve(data, wait=False, **settings)
        writer = None
        try:
            if early:
                time.sleep(rng.uniform(0.0, 1.5))
            else:
                wait_for_port(node.port, timeout=60)
                if not token:
                    token, dossiers = Writer.clerk(node.url, admin, clients=2)
                if not _wait_sealed(node.url, started + SEALS_WITHIN):
                    drill.failures.append(f"cycle {cycle}: did not seal on within {SEALS_WITHIN:.0f} s of its start")
                drill.seal_seconds.append(time.monotonic() - started)
                if not last:
                    writer = Writer(node.url, token, dossiers).__enter__()
                    time.sleep(rng.uniform(0.2, 1.5))
        finally:
            action = "SIGTERM" if last else rng.choices([a for a, _ in ACTIONS], [w for _, w in ACTIONS])[0]
            kind = f"{action}{' (starting)' if early else ''}"
            drill.actions[kind] = drill.actions.get(kind, 0) + 1
            pid = node.proc.pid
            signalled = time.monotonic()
            if action == "SIGINT":
                os.killpg(pid, signal.SIGINT)
            else:
                os.kill(pid, getattr(signal, action))
            with contextlib.suppress(subprocess.TimeoutExpired):
                node.proc.wait(timeout=GONE_WITHIN)
            while group(pid) and time.monotonic() - signalled < GONE_WITHIN + 1:
                time.sleep(0.01)
            took = time.monotonic() - signalled
            left = group(pid)
            drill.stop_seconds.append(took)
            drill.exit_codes.setdefault(kind, set()).add(node.proc.poll() if node.proc.poll() is not None else -999)
            if left or took > GONE_WITHIN:
                drill.failures.append(f"cycle {cycle} ({kind}): processes {left} still there after {took:.1f} s")
                for p in left:
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(p, signal.SIGKILL)
                node.stop()
            if writer is not None:
                writer.__exit__(None, None, None)
                drill.acked += writer.acked
            held = open_files(data)
            if held:
                drill.failures.append(f"cycle {cycle} ({kind}): files still open: {held}")
            elif kind == "SIGTERM" and not left:  # an ordered stop: its sequencer's last pass sealed everything
                waiting = _unsealed(data, env)
                if waiting:
                    drill.failures.append(f"cycle {cycle} (SIGTERM): {waiting} event(s) left unsealed by a clean stop")
        drill.cycles = cycle
    audit = subprocess.run([sys.executable, "-m", "api.cli", "audit", "--json", "--data-dir", str(data)], cwd=ROOT,
                           env={**os.environ, **env}, capture_output=True, text=True, timeout=600)  # fmt: skip
    try:
        drill.audit = json.loads(audit.stdout)
    except ValueError:
        drill.audit = {"clean": False, "error": audit.stderr[-2000:]}
    if audit.returncode or not drill.audit.get("clean"):
        drill.failures.append(f"sifa audit: {audit.stderr.strip()[-2000:]}")
    elif drill.audit["unsealed"] or drill.audit["events"] != drill.audit["leaves"]:
        drill.failures.append(f"after a clean stop: {drill.audit}")
    return drill


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench drill")
    p.add_argument("--cycles", type=int, default=100)
    p.add_argument("--seed", type=int, default=int(time.time()))
    p.add_argument("--backend", choices=["sqlite", "postgres"], default="sqlite")
    args = p.parse_args(sys.argv[1:] if argv is None else argv)
    root = Path(tempfile.mkdtemp(prefix="sifa-drill-"))
    t0 = time.monotonic()
    try:
        with _backend(args.backend) as env:
            drill = run(root, args.cycles, args.seed, env)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    print(f"## Start/stop drill — `python -m bench drill --cycles {args.cycles} --seed {args.seed} "
          f"--backend {args.backend}` ({now()})\n\n{machine()}\n")  # fmt: skip
    print(f"- cycles: {drill.cycles} in {time.monotonic() - t0:.0f} s; stops: "
          + ", ".join(f"{k} {v}" for k, v in sorted(drill.actions.items())))  # fmt: skip
    print(f"- every process gone after the signal: median {median(drill.stop_seconds):.2f} s, "
          f"max {max(drill.stop_seconds):.2f} s (limit {GONE_WITHIN:.0f} s)")  # fmt: skip
    print(f"- from a start until all is sealed: median {median(drill.seal_seconds):.2f} s, "
          f"max {max(drill.seal_seconds):.2f} s")  # fmt: skip
    print("- exit codes of sifa serve: " + ", ".join(f"{k} {sorted(v)}" for k, v in sorted(drill.exit_codes.items())))
    print(f"- acknowledged writes: {drill.acked}; audit: {json.dumps(drill.audit, ensure_ascii=False)[:300]}")
    for failure in drill.failures:
        print(f"FAILED: {failure}", file=sys.stderr)
    return 1 if drill.failures else 0


if __name__ == "__main__":
    sys.exit(main())
