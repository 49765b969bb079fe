"""The log side of witnessing: send each new checkpoint to the witnesses, keep their cosignatures.

Runs beside the sequencer (``sifa seal``), never in the way of appends: a witness that does not
answer is asked again next round. Each witness is asked with the size it last cosigned (learnt
from its 409 answer when not known) and a consistency proof from there (c2sp.org/tlog-witness).
"""

from __future__ import annotations

import logging
import ssl
import threading
from concurrent.futures import ThreadPoolExecutor

from api.peers import check_urls, send
from dossier.sealer import Stop
from ledger.cosignature import CosignatureVerifier, cosigners
from ledger.errors import LedgerError, SifaError
from ledger.log import MerkleLog
from ledger.note import Note, NoteSignature, add_signatures
from ledger.trust import Trust
from ledger.witness import add_checkpoint_request

log = logging.getLogger("sifa.witnessing")


class Witnessing:
    def __init__(self, merkle: MerkleLog, trust: Trust, *, timeout: float = 5.0,
                 tls: ssl.SSLContext | None = None) -> None:  # fmt: skip
        """Raises InsecurePeerUrlError for a witness URL that is not https:// (nor on loopback).
        ``tls``: how witnesses' certificates are checked (default: the system's store)."""
        check_urls(trust, "the witness")
        self.log, self.trust, self.timeout, self.tls = merkle, trust, timeout, tls
        self.known: dict[str, int] = {}  # witness name -> the size it last cosigned for this log
        self._lock = threading.Lock()  # one round at a time, so the note is merged in order

    def round(self) -> int:
        """Ask every witness that has not cosigned the latest checkpoint; return how many have."""
        with self._lock:
            kept = self.log.store.checkpoint()
            if kept is None:
                return 0
            size, text = kept
            note = Note.from_text(text)
            have = cosigners(note, self.trust.witnesses)
            ask = [w for w in self.trust.witnesses if w.name not in have and w.name in self.trust.urls]
            if not ask:
                return len(have)
            with ThreadPoolExecutor(len(ask)) as pool:
                got = [line for line in pool.map(lambda w: self._ask(w, note, size), ask) if line is not None]
            if got:
                current = self.log.store.checkpoint(size)
                base = Note.from_text(current[1]) if current else note
                merged = add_signatures(base, got)
                self.log.store.save_checkpoint(size, merged.to_text())
                return len(cosigners(merged, self.trust.witnesses))
            return len(have)

    def _ask(self, witness: CosignatureVerifier, note: Note, size: int) -> NoteSignature | None:
        old = self.known.get(witness.name, 0)
        for _ in range(2):  # the second time with the size the witness says it has
            if old > size:
                log.warning("witness %s has cosigned size %d, more than this log's %d", witness.name, old, size)
                return None
            proof = self.log.consistency_proof(old, size) if 0 < old < size else []
            status, answer, media = self._post(self.trust.urls[witness.name], add_checkpoint_request(old, proof, note))
            if status == 200:
                line = self._cosignature(witness, note, answer)
                if line is not None:
                    self.known[witness.name] = size
                return line
            if status == 409 and media.startswith("text/x.tlog.size") and answer.strip().isdigit():
                old = int(answer.strip())
                continue
            log.warning("witness %s refused size %d: %s %s", witness.name, size, status, answer.strip()[:200])
            return None
        return None

    def _cosignature(self, witness: CosignatureVerifier, note: Note, answer: str) -> NoteSignature | None:
        """The witness's own line in its answer, if it verifies over this checkpoint."""
        try:
            lines = Note.from_text(note.text + "\n" + answer).signatures
        except LedgerError:
            lines = ()
        for line in lines:
            ours = line.name == witness.name and line.key_id == witness.key_id
            if ours and witness.timestamp(note.text, line.signature) is not None:
                return line
        log.warning("witness %s answered with no valid cosignature", witness.name)
        return None

    def _post(self, url: str, body: bytes) -> tuple[int, str, str]:
        try:
            answer = send("POST", url.rstrip("/") + "/add-checkpoint", what="the witness", body=body,
                          headers={"Content-Type": "text/plain; charset=utf-8"}, tls=self.tls,
                          timeout=self.timeout)  # fmt: skip
        except SifaError as exc:  # unreachable, or its certificate does not verify: asked again next round
            return 0, exc.diagnostics(), ""
        try:
            return answer.status, answer.read(1 << 16).decode("utf-8", "replace"), answer.media_type
        except OSError as exc:
            return 0, str(exc), ""
        finally:
            answer.close()

    def run(self, stop: Stop, interval: float) -> None:
        """A round every ``interval`` seconds until ``stop`` is set (a ``StopFlag`` that signal
        handlers set, never a lock a handler could wait on); a round in flight ends first."""
        while not stop.wait(interval):
            try:
                self.round()
            except Exception:
                log.exception("witnessing round failed; trying again in %.1f s", interval)
