"""Benchmarks of an earlier commit and of this tree, side by side in one run.

    python -m bench compare BASE [dossier api ...] [--rounds 1]

An issue's "re-run in the same run as the previous commit" means exactly this: the same host, the
same minutes, the same load. BASE (a commit, tag or branch) is checked out into a temporary git
worktree; each named benchmark then runs there and here in turn (base first, then this tree, then
again for each further round), each in its own Python process whose imports come from that tree.
Their tables are printed one after the other, labelled; nothing is averaged or hidden.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _run(tree: Path, name: str, extra: list[str]) -> str:
    env = {**os.environ, "PYTHONPATH": str(tree)}
    done = subprocess.run([sys.executable, "-m", "bench", name, *extra], cwd=tree, env=env, capture_output=True,
                          text=True)  # fmt: skip
    if done.returncode:
        return f"(failed, exit {done.returncode})\n{done.stdout}{done.stderr[-2000:]}"
    return done.stdout


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="python -m bench compare")
    p.add_argument("base", help="the earlier commit, e.g. HEAD~3 or main")
    p.add_argument("names", nargs="*", default=["dossier", "api"], help="benchmarks to run (default: dossier api)")
    p.add_argument("--rounds", type=int, default=1, help="base/this pairs per benchmark")
    args = p.parse_args(argv)
    rev = subprocess.run(["git", "rev-parse", "--short", args.base], cwd=ROOT, capture_output=True, text=True)
    if rev.returncode:
        print(f"bench compare: {args.base!r} is not a commit here", file=sys.stderr)
        return 2
    base = rev.stdout.strip()
    head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout
    with tempfile.TemporaryDirectory(prefix="sifa-bench-base-") as tmp:
        tree = Path(tmp) / "base"
        subprocess.run(["git", "worktree", "add", "--detach", str(tree), base], cwd=ROOT, check=True,
                       capture_output=True)  # fmt: skip
        try:
            for name in args.names:
                for n in range(1, args.rounds + 1):
                    for label, where in ((f"base {base}", tree), (f"this tree (HEAD {head.strip()})", ROOT)):
                        print(f"\n### {name}, round {n}: {label}\n", flush=True)
                        print(_run(where, name, []), flush=True)
        finally:
            subprocess.run(["git", "worktree", "remove", "--force", str(tree)], cwd=ROOT, capture_output=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
