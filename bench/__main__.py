"""``python -m bench all|NAME [options]`` and ``python -m bench compare BASE [NAME ...]``: every benchmark
behind one command."""

from __future__ import annotations

import importlib
import sys

BENCHMARKS = [
    "ledger",
    "storage",
    "dossier",
    "api",
    "verify",
    "transfer",
    "load",
    "scale",
    "audit",
    "gm",
    "drill",
    "operate",
]
TOOLS = ["compare"]  # not a benchmark of its own: runs others (bench/compare.py)


def main(argv: list[str]) -> int:
    if not argv or argv[0] not in [*BENCHMARKS, *TOOLS, "all"]:
        print(f"usage: python -m bench {{all|{'|'.join([*BENCHMARKS, *TOOLS])}}} [options]", file=sys.stderr)
        return 2
    names = BENCHMARKS if argv[0] == "all" else [argv[0]]
    for name in names:
        module = importlib.import_module(f"bench.{name}")
        code = int(module.main(argv[1:] if argv[0] != "all" else []))
        if code:
            return code
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
