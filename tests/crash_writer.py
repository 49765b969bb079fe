"""A writer the crash test kills with SIGKILL: appends fixed batches forever.

Usage: python -m tests.crash_writer sqlite:PATH|postgres:DSN BATCH
Leaf i is always ``leaf-<i>`` so the parent can recompute every root.
"""

from __future__ import annotations

import sys

from ledger.log import MerkleLog
from ledger.store import TreeStore


def open_store(spec: str) -> TreeStore:
    kind, _, where = spec.partition(":")
    if kind == "sqlite":
        from ledger.sqlite import SQLiteTreeStore

        return SQLiteTreeStore(where)
    from ledger.postgres import PostgresTreeStore

    return PostgresTreeStore(where)


def leaf(i: int) -> bytes:
    return f"leaf-{i}".encode()


def main() -> None:
    log = MerkleLog(open_store(sys.argv[1]))
    batch = int(sys.argv[2])
    print("ready", flush=True)
    while True:
        state = log.store.state()
        log.append([leaf(i) for i in range(state.size, state.size + batch)], cursor=str(state.size + batch), base=state)


if __name__ == "__main__":
    main()
