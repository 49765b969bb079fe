"""``sifa monitor``: follow a court's log; alarm on a fork, a rollback or a stalled log.

Each round fetches the log's latest signed checkpoint, checks its signature against the trust file
and, against the checkpoint kept from the round before, that the log only grew (an RFC 9162
consistency proof fetched from the log and checked here). On a fork the alarm carries both signed
checkpoints: the log's own signatures over two histories are the proof. A checkpoint signed by a
key the trust file does not pin is checked through the log's key history (docs/keys.md).
"""

from __future__ import annotations

import base64
import json
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ledger import boundedjson
from ledger.checkpoint import Checkpoint, open_checkpoint
from ledger.errors import MalformedError, VerificationError
from ledger.keys import KeyHistory, WindowedKey, check_window, verify_history, windowed
from ledger.note import Note
from ledger.proof import verify_consistency
from ledger.suite import hasher_for_log
from ledger.trust import Trust


class MonitorInputError(Exception):
    """The log cannot be read or the state file is damaged (not an alarm): exit 2."""


@dataclass
class Round:
    ok: bool
    alarm: str | None
    size: int
    detail: str
    evidence: dict[str, str]

    def to_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "alarm": self.alarm, "size": self.size, "detail": self.detail,
                "evidence": self.evidence}  # fmt: skip


def _get(url: str, timeout: float) -> bytes:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            data: bytes = response.read(1 << 20)
            return data
    except urllib.error.HTTPError as exc:
        raise MonitorInputError(f"{url}: HTTP {exc.code}") from exc
    except (OSError, ValueError) as exc:
        raise MonitorInputError(f"{url}: {exc}") from exc


def check(log_url: str, trust: Trust, state: Path, *, stall: float = 3600.0, timeout: float = 10.0,
          now: float | None = None) -> Round:  # fmt: skip
    """One round; the state file keeps the last good checkpoint between rounds."""
    now = time.time() if now is None else now
    base = log_url.rstrip("/")
    text = _get(f"{base}/v1/log/checkpoint", timeout).decode("utf-8", "replace")
    try:
        keys = _followed(base, trust, timeout)  # each key only for its window: a retired key's checkpoint alarms
        check_window(Note.from_text(text), keys)
        new, _ = open_checkpoint(text, keys)
    except MalformedError as exc:
        return Round(False, "bad_checkpoint", 0, exc.diagnostics(), {"later": text})
    except VerificationError as exc:
        return Round(False, "bad_signature", 0, exc.diagnostics(), {"later": text})
    kept = _load(state)
    if kept is None:
        _save(state, text, now, now)
        return Round(True, None, new.size, f"first checkpoint of {new.origin}: size {new.size}", {})
    old_text, changed_at = kept["checkpoint"], float(kept["changed_at"])
    old = Checkpoint.from_text(Note.from_text(old_text).text)
    both = {"earlier": old_text, "later": text}
    if old.origin != new.origin:
        return Round(False, "different_log", new.size, f"{old.origin} became {new.origin}", both)
    if new.size < old.size:
        return Round(False, "rolled_back", new.size, f"the log shrank from {old.size} to {new.size}", both)
    if new.size == old.size:
        if new.root_hash != old.root_hash:
            return Round(False, "fork", new.size, f"two different roots signed for size {new.size}", both)
        if now - changed_at > stall:
            return Round(False, "stalled", new.size, f"no new checkpoint for {now - changed_at:.0f} s", {})
        return Round(True, None, new.size, f"unchanged at size {new.size}", {})
    if old.size > 0:
        raw = _get(f"{base}/v1/log/proof/consistency?from={old.size}&to={new.size}", timeout)
        try:
            proof = [base64.b64decode(h, validate=True) for h in boundedjson.loads(raw)["proof"]]
        except (ValueError, KeyError, TypeError) as exc:
            raise MonitorInputError(f"the log's consistency proof is unreadable: {exc}") from exc
        try:
            hasher = hasher_for_log(new.origin, trust.logs)  # the suite the trusted key names (SM3 on a GM log)
            verify_consistency(hasher, old.size, new.size, old.root_hash, new.root_hash, proof)
        except VerificationError as exc:
            return Round(False, "fork", new.size, f"size {new.size} does not extend size {old.size}: "
                         f"{exc.diagnostics()}", both)  # fmt: skip
    _save(state, text, now, now)
    return Round(True, None, new.size, f"grew from {old.size} to {new.size}, consistently", {})


def _followed(base: str, trust: Trust, timeout: float) -> list[WindowedKey]:
    """The pinned keys followed through the log's key history (GET /v1/log/keys, docs/keys.md), each
    with its window; a node without the route: the pinned keys. Raises VerificationError (a history
    that does not verify: an alarm)."""
    try:
        with urllib.request.urlopen(f"{base}/v1/log/keys", timeout=timeout) as response:
            raw = response.read(1 << 22)
    except urllib.error.HTTPError as exc:
        if exc.code == 404:
            return [windowed(k) for k in trust.logs]
        raise MonitorInputError(f"{base}/v1/log/keys: HTTP {exc.code}") from exc
    except (OSError, ValueError) as exc:
        raise MonitorInputError(f"{base}/v1/log/keys: {exc}") from exc
    try:
        history = KeyHistory.from_dict(boundedjson.loads(raw))
    except (ValueError, MalformedError) as exc:
        raise MonitorInputError(f"the log's key history is unreadable: {exc}") from exc
    keys, _ = verify_history(list(trust.logs), history)  # type: ignore[arg-type]  # Ed25519 keys only
    return keys


def _load(state: Path) -> dict[str, Any] | None:
    try:
        doc: dict[str, Any] = boundedjson.load_path(state)
        Checkpoint.from_text(Note.from_text(doc["checkpoint"]).text)
        float(doc["changed_at"])
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, TypeError, MalformedError) as exc:
        raise MonitorInputError(f"state file {state} is damaged: {exc}") from exc
    return doc


def _save(state: Path, checkpoint: str, seen_at: float, changed_at: float) -> None:
    tmp = state.with_name(state.name + ".tmp")
    tmp.write_text(json.dumps({"checkpoint": checkpoint, "seen_at": seen_at, "changed_at": changed_at}),
                   encoding="utf-8")  # fmt: skip
    tmp.replace(state)
