"""Trusted time beside the sequencer: RFC 3161 tokens for the log's checkpoints (docs/time.md).

Runs in its own thread, like witnessing: sealing never waits for a TSA. Each round takes the
latest checkpoint; if the log has grown past the last stamped size, it asks the TSAs of
``SIFA_TSA_URLS`` in turn until one grants a token for it, and keeps that token (at most one per
checkpoint; a round every ``SIFA_TSA_INTERVAL_SECONDS``, so at least one token per interval while
the log grows and a TSA answers). A TSA that is down or answers badly is logged and skipped.
"""

from __future__ import annotations

import logging
import ssl
from collections.abc import Sequence

from dossier.sealer import Stop
from ledger.deadline import post
from ledger.errors import LedgerError
from ledger.log import MerkleLog
from ledger.note import Note
from ledger.timestamp import request, token_from_response

log = logging.getLogger("sifa.tsa")
MAX_ANSWER = 64 << 10


class Stamping:
    def __init__(self, merkle: MerkleLog, urls: Sequence[str], *, timeout: float = 10.0,
                 tls: ssl.SSLContext | None = None) -> None:  # fmt: skip
        self.log, self.urls, self.timeout, self.tls = merkle, list(urls), timeout, tls

    def round(self) -> int | None:
        """Stamp the latest checkpoint if it is new; return the size stamped (None: nothing stamped)."""
        kept = self.log.store.checkpoint()
        if kept is None:
            return None
        size, text = kept
        done = self.log.store.timestamps(newest_first=True, limit=1)
        if size == 0 or (done and done[0][0] >= size):
            return None
        body = Note.from_text(text).text
        for url in self.urls:
            query, nonce = request(body)
            try:
                token = token_from_response(self._post(url, query), nonce, body)
            except (OSError, LedgerError) as exc:
                log.warning("TSA %s gave no token for size %d: %s", url, size, exc)
                continue
            self.log.store.save_timestamp(size, token)
            return size
        return None

    def _post(self, url: str, query: bytes) -> bytes:
        """The TSA's answer, within ``timeout`` seconds in all (a TSA that drips its answer is given
        up on, and the next one asked). Raises OSError."""
        try:
            status, kind, answer = post(url, query, {"Content-Type": "application/timestamp-query"},
                                        timeout=self.timeout, max_bytes=MAX_ANSWER, context=self.tls)  # fmt: skip
        except ValueError as exc:
            raise OSError(str(exc)) from exc
        if status != 200:
            raise OSError(f"HTTP {status}")
        if kind != "application/timestamp-reply":
            raise OSError(f"answered {kind or 'no content type'}, not application/timestamp-reply")
        return answer

    def run(self, stop: Stop, interval: float) -> None:
        """A round now and then every ``interval`` seconds, until ``stop`` is set."""
        while not stop.is_set():
            try:
                self.round()
            except Exception:
                log.exception("timestamping round failed; trying again in %.1f s", interval)
            if stop.wait(interval):
                return
