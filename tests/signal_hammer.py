"""Signals hammered at a thread that waits on a stop object, the way the sequencer waits.

Usage: python -m tests.signal_hammer event|flag SECONDS
``event``: the handler calls ``threading.Event.set`` (what ``sifa seal`` did before issue 24);
``flag``: ``api.lifecycle.StopFlag``'s handler. Prints ``done`` if the main thread is never stuck.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import time

from api.lifecycle import StopFlag


def main() -> None:
    kind, seconds = sys.argv[1], float(sys.argv[2])
    stop: threading.Event | StopFlag
    if kind == "event":
        stop = threading.Event()
        event = stop
        signal.signal(signal.SIGUSR1, lambda *_: event.set())
    else:
        stop = StopFlag().on_signals([signal.SIGUSR1])
    deadline = time.monotonic() + seconds

    def sender() -> None:
        while time.monotonic() < deadline:
            os.kill(os.getpid(), signal.SIGUSR1)
            time.sleep(0.002)

    threading.Thread(target=sender, daemon=True).start()
    waits = 0
    while time.monotonic() < deadline:
        stop.wait(0.00001)
        if isinstance(stop, StopFlag):
            stop._set = False  # re-armed, so that each wait blocks in select() and the signals interrupt it
        waits += 1
    print(f"done {waits}", flush=True)


if __name__ == "__main__":
    main()
