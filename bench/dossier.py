"""Dossier events written and sealed end to end vs the same application without sealing.

    python -m bench dossier [--seconds 3] [--backends sqlite,postgres]

"Bare" is the same eventsourcing application (same backend, same encrypted
events, same commands) with no sealer: the difference is what sealing costs.
"One per command": each command loads the dossier, records one event and saves.
"Batched": 50 events recorded on a dossier, then one save. The sifa figures run
the sequencer as its own process (how `sifa serve` runs it) or on a second
thread of the writer's process (SIFA_SEQUENCER=thread), and stop the clock
when the last event is sealed and its checkpoint signed. Each figure writes as many events as bare
writing does in ``--seconds`` (measured first; at least ``--events``): the
sequencer's last pass (up to one interval after the last event) then weighs
what it weighs on a busy node, not most of a run of a tenth of a second.
Goal: sealing costs <= 25% of bare throughput (ratio >= 0.75).
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from bench.common import machine, median, now, table
from tests.servers import PostgresCluster

ACT = {"actor": "clerk:bench", "role": "clerk"}
PARTY = {"role": "原告", "name": "赵六"}


def workload(stack, n: int, batched: bool) -> float:  # type: ignore[no-untyped-def]
    app = stack.app
    t = time.perf_counter()
    made = 0
    case = 0
    while made < n:
        case += 1
        d = app.open_dossier(case_number_text=f"（2026）京0105民初{case}号", case_type="民事", parties=[PARTY], **ACT)
        made += 1
        if batched:
            agg = app.get(d)
            for k in range(min(49, n - made)):
                agg.submit_evidence(evidence_id=f"e{k}", sha256=hashlib.sha256(b"%d" % k).hexdigest(), size=k,
                                    name=f"证据{k}.pdf", submitter=PARTY, description="", **ACT)  # fmt: skip
                made += 1
            app._save(agg)
        else:
            for k in range(min(49, n - made)):
                app.submit_evidence(d, sha256=hashlib.sha256(b"%d" % k).hexdigest(), size=k, name=f"证据{k}.pdf",
                                    submitter=PARTY, description="", **ACT)  # fmt: skip
                made += 1
    return time.perf_counter() - t


INTERVAL = float(
    os.environ.get("SIFA_BENCH_SEAL_INTERVAL", "0.05")
)  # the node's default SIFA_SEAL_INTERVAL_SECONDS: the sequencer waits this long after a pass


def measure(spec_for, n: int, batched: bool, seal: str) -> float:  # type: ignore[no-untyped-def]
    """Events/s; ``seal`` is "" (bare), "thread" (sealer thread) or "process" (sequencer process),
    each sealing as the node's sequencer does: a pass, then a wait of INTERVAL."""
    from tests.dossier_fixtures import make_stack

    spec, root = spec_for()
    stack = make_stack(spec, root)
    stop = threading.Event()
    sealer = threading.Thread(target=stack.sealer.run, args=(stop, INTERVAL), daemon=True)
    child = None
    if seal == "process":  # started (imports done, stores open) before the clock starts
        child = subprocess.Popen([sys.executable, "-m", "bench.dossier", "--seal-child", spec, str(root), str(n)],
                                 stdout=subprocess.PIPE)  # fmt: skip
        assert child.stdout is not None and child.stdout.readline() == b"ready\n"
    t = time.perf_counter()
    if seal == "thread":
        sealer.start()
    workload(stack, n, batched)
    if seal == "thread":
        stack.sealer.wait_sealed(timeout=600)
        stop.set()
        sealer.join()
    elif child is not None:
        child.wait(timeout=600)
    elapsed = time.perf_counter() - t
    assert not seal or stack.log.size == n
    stack.close()
    return n / elapsed


def seal_child(spec: str, root: Path, n: int) -> None:
    """The sequencer as its own process: seal until ``n`` leaves."""
    from api.node import settle_heap
    from api.settings import Settings
    from tests.dossier_fixtures import make_stack

    stack = make_stack(spec, root)
    stack.sealer.batch = Settings.model_fields["seal_batch"].default  # the node's SIFA_SEAL_BATCH
    stop = threading.Event()
    settle_heap()  # as `sifa seal` does once started
    seal = stack.sealer.seal

    def seal_then_check(limit: int | None = None) -> int:
        # Checked after each pass, not polled: a poll every few ms was a query the sequencer
        # never makes on a node, and on PostgreSQL it cost more than sealing.
        sealed = seal(limit)
        if stack.log.store.state().size >= n:
            stop.set()
        return sealed

    stack.sealer.seal = seal_then_check  # type: ignore[method-assign]
    print("ready", flush=True)
    stack.sealer.run(stop, INTERVAL)
    stack.close()


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--seal-child"]:
        seal_child(argv[1], Path(argv[2]), int(argv[3]))
        return 0
    p = argparse.ArgumentParser(prog="python -m bench dossier")
    p.add_argument("--events", type=int, default=3000, help="events per figure, at least")
    p.add_argument("--seconds", type=float, default=3.0, help="of bare writing per figure, at least")
    p.add_argument("--backends", default="sqlite,postgres")
    p.add_argument("--repeat", type=int, default=3, help="runs per figure; the median is shown")
    args = p.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="sifa-bench-"))
    rows = []
    counter = iter(range(10**6))
    cluster = None
    try:
        for backend in args.backends.split(","):
            if backend == "postgres":
                cluster = PostgresCluster().start()

            def spec_for(backend: str = backend, cluster: PostgresCluster | None = cluster) -> tuple[str, Path]:
                root = work / f"run{next(counter)}"
                root.mkdir()
                if backend == "sqlite":
                    return "sqlite", root
                assert cluster is not None
                name = root.name
                cluster.create_database(name)
                return f"postgres:127.0.0.1:{cluster.port}:{name}", root

            for batched in (False, True):
                # Interleaved (bare, thread, process, bare, …): the host's speed drifts, and a block of
                # bare runs followed by a block of sealed ones would measure the drift too.
                runs: dict[str, list[float]] = {"": [], "thread": [], "process": []}
                n = max(args.events, int(measure(spec_for, args.events, batched, seal="") * args.seconds))
                for _ in range(args.repeat):
                    for how in runs:
                        runs[how].append(measure(spec_for, n, batched, seal=how))
                bare = median(runs[""])
                mode = "batched (50/save)" if batched else "one per command"
                for how in ("thread", "process"):
                    sealed = median(runs[how])
                    rows.append((f"{backend}, {mode}, sealer {how} (events/s, {n:,} events)", f"{sealed:,.0f}",
                                 f"{bare:,.0f}", f"{sealed / bare:.2f}"))  # fmt: skip
            if cluster is not None:
                cluster.stop()
                cluster = None
    finally:
        if cluster is not None:
            cluster.stop()
        shutil.rmtree(work, ignore_errors=True)
    print(table("Dossier events, written and sealed (bench/dossier.py)", rows))
    print(f"\nsifa = written + sealed + checkpoint signed; baseline = the same application without sealing; "
          f"each run as many events as {args.seconds:g} s of bare writing (at least {args.events:,}), median "
          f"of {args.repeat} runs. Goal: ratio >= 0.75."
          f"\n\nMachine: {machine()}; {now()}.")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
