"""A node-like writer the kill -9 test kills: records events while a sealer thread seals.

Usage: python -m tests.dossier_writer SPEC ROOT COUNT
Prints ``ack <dossier> <version>`` after each event is durably saved.
"""

from __future__ import annotations

import hashlib
import random
import sys
import threading
from pathlib import Path

from dossier.errors import DossierExistsError
from tests.dossier_fixtures import make_stack


def main() -> None:
    spec, root, count = sys.argv[1], Path(sys.argv[2]), int(sys.argv[3])
    stack = make_stack(spec, root)
    stop = threading.Event()
    sealer = threading.Thread(target=stack.sealer.run, args=(stop, 0.01), daemon=True)
    sealer.start()
    rng = random.Random()
    act = {"actor": "clerk:crash", "role": "clerk"}
    dossier = None
    print("ready", flush=True)
    for k in range(count):
        if dossier is None or k % 20 == 0:
            try:
                number = f"（2026）京0105民初{rng.randrange(10**6, 10**7)}号"
                dossier = stack.app.open_dossier(case_number_text=number, case_type="民事",
                                                 parties=[{"role": "原告", "name": "王五"}], **act)  # fmt: skip
            except DossierExistsError:
                continue
            version = 1
        else:
            version = stack.app.submit_evidence(
                dossier, sha256=hashlib.sha256(f"{dossier}/{k}".encode()).hexdigest(), size=k,
                name=f"证据{k}.pdf", submitter={"role": "原告", "name": "王五"}, description="", **act,
            )  # fmt: skip
        print(f"ack {dossier} {version}", flush=True)
    stop.set()
    sealer.join()
    stack.sealer.seal()
    stack.close()
    print("done", flush=True)


if __name__ == "__main__":
    main()
