"""Before it seals, a sequencer asks its witnesses whether its log is behind what it published.

A node restored from a backup holds a log behind the one it published: its witnesses have cosigned
a larger size. Sealing on would sign trees of sizes it signed before with other leaves — a fork,
which every witness and monitor would rightly report. So, before the sequencer takes its first
batch, it asks each witness: an add-checkpoint (c2sp.org/tlog-witness) with its newest checkpoint
and ``old`` set to that checkpoint's own size. A witness that has cosigned a larger size answers
409 with that size; one that has cosigned the same size with another root answers 409 ("not
consistent"). Either way the sequencer **refuses to seal**: it logs ``SEALING REFUSED`` at
ERROR, records the refusal as its stall (``/healthz`` is degraded, ``sifa audit`` names it), asks
again every GUARD_RETRY seconds, and seals only once no witness is ahead — or once an operator has
decided, with ``SIFA_SEAL_BEHIND_WITNESSES=true``, to fork knowingly (docs/administration.md).

A witness that does not answer tells nothing. After ``sifa restore --from`` (the data dir holds
``restored.json``) at least one witness must answer before sealing starts; the marker is removed
once one has and none is ahead. A node with no witnesses configured is not checked.
"""

from __future__ import annotations

import logging
import ssl
import urllib.error
import urllib.request
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from dossier.sealer import Stop
from ledger.checkpoint import Checkpoint
from ledger.log import MerkleLog
from ledger.note import Note
from ledger.store import Stall
from ledger.trust import Trust
from ledger.witness import SIZE_TYPE, add_checkpoint_request

log = logging.getLogger("sifa.forkguard")

GUARD_RETRY = 10.0  # seconds between asking the witnesses again while the log is behind them
RESTORED = "restored.json"  # written by `sifa restore --from`; removed once a witness has agreed
STALL_POSITION = "behind-witnesses"  # the Stall recorded while sealing is refused


@dataclass(frozen=True)
class Verdict:
    """What the witnesses said of this log's newest checkpoint."""

    size: int  # the log's size
    answered: frozenset[str]  # witnesses that answered
    ahead: dict[str, int]  # witness -> the larger size it has cosigned
    forked: frozenset[str]  # witnesses that cosigned this size with another root

    @property
    def behind(self) -> bool:
        return bool(self.ahead or self.forked)

    def reason(self) -> str:
        parts = [f"witness {w} has cosigned size {n}" for w, n in sorted(self.ahead.items())]
        parts += [f"witness {w} has cosigned size {self.size} with another root" for w in sorted(self.forked)]
        return (f"this log has {self.size} leaves but {'; '.join(parts)}: sealing now would sign a different tree of a "
                "size already published (a fork). Restore a newer backup, or decide to fork with "
                "SIFA_SEAL_BEHIND_WITNESSES=true (docs/administration.md)")  # fmt: skip


def ask(merkle: MerkleLog, trust: Trust, *, tls: ssl.SSLContext | None = None, timeout: float = 5.0) -> Verdict:
    """Ask every witness with a URL what it has cosigned of this log, relative to its newest checkpoint."""
    kept = merkle.store.checkpoint()
    if kept is None:
        return Verdict(0, frozenset(), {}, frozenset())
    size, text = kept
    note = Note.from_text(text)
    Checkpoint.from_text(note.text)  # the log's own checkpoint: a damaged one is an error, not a verdict
    answered: set[str] = set()
    ahead: dict[str, int] = {}
    forked: set[str] = set()
    for witness in trust.witnesses:
        url = trust.urls.get(witness.name)
        if url is None:
            continue
        status, body, media = _post(url, add_checkpoint_request(size, [], note), tls, timeout)
        if status == 0 or status >= 500:
            continue
        answered.add(witness.name)
        if status == 409 and media.startswith(SIZE_TYPE) and body.strip().isdigit():
            if int(body.strip()) > size:
                ahead[witness.name] = int(body.strip())
        elif status == 409:  # the same size, another root
            forked.add(witness.name)
    return Verdict(size, frozenset(answered), ahead, frozenset(forked))


def _post(url: str, body: bytes, tls: ssl.SSLContext | None, timeout: float) -> tuple[int, str, str]:
    request = urllib.request.Request(url.rstrip("/") + "/add-checkpoint", data=body, method="POST",
                                     headers={"Content-Type": "text/plain; charset=utf-8"})  # fmt: skip
    try:
        with urllib.request.urlopen(request, timeout=timeout, context=tls) as response:
            return response.status, response.read(1 << 16).decode("utf-8", "replace"), response.headers.get(
                "Content-Type", "")  # fmt: skip
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read(1 << 16).decode("utf-8", "replace"), exc.headers.get("Content-Type", "")
    except (OSError, ValueError):
        return 0, "", ""


def wait_until_safe(merkle: MerkleLog, trust: Trust, data_dir: Path, stop: Stop, *, allow_behind: bool = False,
                    tls: ssl.SSLContext | None = None, retry: float = GUARD_RETRY) -> bool:  # fmt: skip
    """Block while sealing would fork the published log; True when the sequencer may seal, False
    once ``stop`` is set first. Records (and clears) the refusal as the sequencer's stall."""
    restored = (data_dir / RESTORED).exists()
    refused = False
    while not stop.is_set():
        verdict = ask(merkle, trust, tls=tls)
        if verdict.behind and not allow_behind:
            if not refused:
                log.error("SEALING REFUSED: %s", verdict.reason())
                about: dict[str, str | int] = {"tree_size": verdict.size}
                about.update({f"witness {w}": n for w, n in verdict.ahead.items()})
                merkle.store.record_stall(Stall(STALL_POSITION, verdict.reason()[:500], about, _now()))
                refused = True
        elif restored and not verdict.answered and not allow_behind:
            if not refused:
                log.error("SEALING REFUSED: this node was restored from a backup and no witness answered; it seals "
                          "once one says the log is not behind what it published")  # fmt: skip
                merkle.store.record_stall(Stall(STALL_POSITION, "restored from a backup; no witness has answered yet",
                                                {"tree_size": verdict.size}, _now()))  # fmt: skip
                refused = True
        else:
            if verdict.behind:
                log.warning("sealing behind the witnesses, as the operator decided: %s", verdict.reason())
            if refused or _stalled_here(merkle):
                merkle.store.record_stall(None)
                log.warning("sealing goes on: the witnesses agree with this log")
            if restored:
                (data_dir / RESTORED).unlink(missing_ok=True)
            return True
        stop.wait(retry)
    return False


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _stalled_here(merkle: MerkleLog) -> bool:
    stall = merkle.store.sequencer_status().stall
    return stall is not None and stall.position == STALL_POSITION
