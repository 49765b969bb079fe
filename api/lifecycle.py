"""How a node's processes start, stop and restart: signals, a parent's death, a dying sequencer.

- ``StopFlag``: what a signal handler may set. A handler runs on the main thread between two
  bytecodes — possibly while that thread holds a lock, such as ``threading.Event``'s own, inside
  ``Event.wait`` — so it takes no lock: it sets a flag and writes a byte to a pipe, and waiters
  ``select`` on the pipe with their timeout (issue 24: a SIGTERM handler calling ``Event.set``
  deadlocked a sequencer for good).
- ``die_with_parent``: a child that outlives its node (killed with SIGKILL) stops within a second,
  whatever it is doing: the kernel sends it SIGTERM when the parent dies (``PR_SET_PDEATHSIG``), a
  watchdog thread sees the parent gone (a pidfd) and ends the process after a short grace, even in
  the middle of a transaction (the stores are atomic: it is rolled back).
- ``Supervisor``: ``sifa serve``'s sequencer child, restarted when it dies (bounded retries with
  backoff); when it cannot be kept alive the node is told, and ``sifa serve`` exits non-zero.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import select
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Sequence
from types import FrameType

log = logging.getLogger("sifa.lifecycle")

PR_SET_PDEATHSIG = 1  # <linux/prctl.h>
ORPHAN_GRACE = 0.5  # seconds an orphaned child has to finish what it does, before it is ended
RESTARTS = 5  # a sequencer is restarted this many times running (each death within STABLE); the next death gives up
STABLE = 60.0  # seconds a sequencer must have run for its death to count as a new first one
BACKOFF, BACKOFF_MAX = 0.5, 5.0  # seconds before a restart: doubled each time, up to the max (docs/operations.md)
STOP_WAIT = 3.0  # seconds a stopping sequencer has to finish its batch, before SIGKILL


class StopFlag:
    """A stop request that signal handlers may make: a flag and a self-pipe, no lock.

    Satisfies ``dossier.sealer.Stop`` (``is_set``, ``wait``), like ``threading.Event``. The pipe
    is never drained: once set, every ``wait`` returns at once, in every thread."""

    def __init__(self) -> None:
        self._read, self._write = os.pipe()
        os.set_blocking(self._write, False)
        self._set = False
        self.signal: int | None = None  # the signal that set it, if one did

    def set(self) -> None:
        self._set = True
        with contextlib.suppress(OSError):  # a full pipe: waiters are awake already
            os.write(self._write, b"\0")

    def is_set(self) -> bool:
        return self._set

    def wait(self, timeout: float | None = None) -> bool:
        """Block until set or ``timeout`` seconds passed; return whether it is set."""
        if not self._set:
            select.select([self._read], [], [], timeout)
        return self._set

    def on_signals(self, signals: Sequence[int] = (signal.SIGTERM, signal.SIGINT)) -> StopFlag:
        """Make these signals set the flag (call from the main thread)."""
        for sig in signals:
            signal.signal(sig, self._handle)
        return self

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        self.signal = signum  # a plain store and a pipe write: safe wherever the main thread was
        self.set()


def die_with_parent(parent: int, stop: StopFlag, grace: float = ORPHAN_GRACE) -> None:
    """End this process soon after ``parent`` is gone: ``stop`` at once, ``os._exit`` after ``grace``."""
    _pdeathsig(signal.SIGTERM)
    try:
        watch: int | None = os.pidfd_open(parent)
    except ProcessLookupError:
        os._exit(1)  # gone before we looked: never start sealing alone
    except OSError:  # no pidfds here (before Linux 5.3): look every tenth of a second
        watch = None
    if os.getppid() != parent:  # died before the death signal was asked for
        os._exit(1)

    def watchdog() -> None:
        if watch is not None:
            select.select([watch], [], [])  # readable once the process has exited
        else:
            while os.getppid() == parent:
                time.sleep(0.1)
        log.warning("the node (pid %d) is gone; this process stops", parent)
        stop.set()
        time.sleep(grace)
        os._exit(1)

    threading.Thread(target=watchdog, name="sifa-orphan-watchdog", daemon=True).start()


def _pdeathsig(sig: int) -> None:
    """Linux: the kernel sends ``sig`` when the thread that started this process exits."""
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, int(sig), 0, 0, 0)


def restart_delay(deaths: int) -> float:
    """Seconds before restarting a child that died ``deaths`` times in a row: 0.5, 1, 2, 4, 5."""
    return float(min(BACKOFF * 2.0 ** (deaths - 1), BACKOFF_MAX))


class Supervisor:
    """A child process kept running: restarted when it dies, given up after RESTARTS quick deaths.

    The child is started from the supervisor's own thread, which lives as long as the child is
    wanted (``PR_SET_PDEATHSIG`` follows the thread that started a process, not the process)."""

    def __init__(self, command: Sequence[str], env: dict[str, str], *, name: str = "sequencer",
                 on_give_up: Callable[[], None] = lambda: None) -> None:  # fmt: skip
        self.command, self.env, self.name, self.on_give_up = list(command), env, name, on_give_up
        self.failed = False  # given up: the node cannot run its sequencer
        self.started_at = 0.0  # time.monotonic() of the last start
        self.restarts = 0
        self._proc: subprocess.Popen[bytes] | None = None
        self._stopping = threading.Event()  # set by ``stop`` (a thread, never a signal handler)
        self._guard = threading.Lock()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._watch, name=f"sifa-{name}-supervisor", daemon=True)

    def start(self) -> Supervisor:
        self._thread.start()
        self._ready.wait(30)
        return self

    @property
    def running(self) -> bool:
        proc = self._proc
        return proc is not None and proc.returncode is None and not self.failed

    @property
    def pid(self) -> int | None:
        return None if self._proc is None else self._proc.pid

    def _watch(self) -> None:
        quick = 0  # deaths in a row, each within STABLE of its start
        while True:
            with self._guard:
                if self._stopping.is_set():
                    break
                try:
                    self._proc = subprocess.Popen(self.command, env=self.env)
                except OSError:
                    log.exception("cannot start the %s", self.name)
                    self._proc = None
                self.started_at = time.monotonic()
            self._ready.set()
            code = self._proc.wait() if self._proc is not None else -1
            if self._stopping.is_set():
                break
            quick = quick + 1 if time.monotonic() - self.started_at < STABLE else 1
            if quick > RESTARTS:
                log.critical("the %s died %d times in a row; the node stops (docs/operations.md)", self.name, quick)
                self.failed = True
                self.on_give_up()
                break
            delay = restart_delay(quick)
            log.error("the %s (pid %s) exited with %s; restarting it in %.1f s (%d of %d)", self.name, self.pid, code,
                      delay, quick, RESTARTS)  # fmt: skip
            self.restarts += 1
            if self._stopping.wait(delay):
                break
        self._ready.set()

    def stop(self, timeout: float = STOP_WAIT) -> None:
        """SIGTERM the child and wait ``timeout`` for it to finish its batch; then SIGKILL."""
        with self._guard:
            self._stopping.set()
            proc = self._proc
        if proc is not None and proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                log.warning("the %s did not stop within %.1f s; killing it", self.name, timeout)
                proc.kill()
                proc.wait()
        self._thread.join(timeout)
