"""``sifa serve --workers N``: N API processes on one port, one database, one blob store.

Each worker is a ``sifa serve`` process of its own (``--worker-of PID``) that binds the node's port
with ``SO_REUSEPORT``: the kernel spreads connections over them, and no worker depends on another.
The parent binds nothing; it keeps the workers running (``api.lifecycle.Supervisor``: a worker that
dies is restarted, with backoff), forwards a stop to them and exits 1 when one cannot be kept alive.
A worker stops soon after its parent dies (``die_with_parent``).

Every worker runs the node's sequencer child as a single ``sifa serve`` does; the log's lock lets
exactly one of them seal, the others wait to take over. Writes to one dossier from two workers meet
in the event store's optimistic concurrency: the later save conflicts, the dossier is read afresh
and the write run again, with a random wait and a bound (dossier/group_commit.py), so every
acknowledged write is recorded once. Several hosts are the same
thing without the shared port: each runs ``sifa serve`` (with or without ``--workers``) against the
same ``SIFA_DATABASE_URL`` and ``SIFA_S3_*``, behind a load balancer.
"""

from __future__ import annotations

import os
import socket
import sys
import threading
from collections.abc import Callable

from api.lifecycle import STOP_WAIT, StopFlag, Supervisor, die_with_parent
from api.node import NodeError
from api.settings import Settings


def reuse_port_socket(settings: Settings) -> socket.socket:
    """The node's listening socket, shared with the other workers (SO_REUSEPORT). Raises NodeError."""
    try:
        infos = socket.getaddrinfo(settings.host, settings.port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
        family, kind, proto, _, address = infos[0]
        sock = socket.socket(family, kind, proto)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind(address)  # not listening yet: uvicorn listens once the app has started, so the kernel
        # hands connections only to a worker that can answer them (a worker that fails to start resets none)
    except OSError as exc:
        raise NodeError(f"cannot listen on {settings.host}:{settings.port}: {exc.strerror}") from None
    sock.set_inheritable(False)
    return sock


def follow_parent(parent: int, stop_server: Callable[[], None], grace: float) -> None:
    """Stop this worker (as a SIGTERM would) once ``parent`` is gone; end it ``grace`` s later."""
    flag = StopFlag()
    die_with_parent(parent, flag, grace=grace)

    def watch() -> None:
        flag.wait()
        stop_server()

    threading.Thread(target=watch, name="sifa-worker-parent", daemon=True).start()


def run_workers(settings: Settings, workers: int, *, grace: float) -> int:
    """Keep ``workers`` API processes running until SIGTERM or SIGINT; 1 if one could not be kept."""
    from api.app import settings_env

    stop = StopFlag().on_signals()
    failed = threading.Event()

    def give_up() -> None:
        failed.set()
        stop.set()

    env = {**os.environ, **settings_env(settings)}
    command = [sys.executable, "-m", "api.cli", "serve", "--worker-of", str(os.getpid())]
    running = [Supervisor(command, env, name=f"API worker {n + 1}", on_give_up=give_up).start()
               for n in range(workers)]  # fmt: skip
    stop.wait()
    for worker in running:  # each answers what it has in flight and stops its sequencer
        worker.stop(timeout=grace + STOP_WAIT + 2)
    if failed.is_set():
        print("sifa serve: an API worker died and could not be restarted; the node stopped", file=sys.stderr)
        return 1
    return 0
