"""Signed node-to-node requests (api/peers.py): what the signature binds, and replays."""

from __future__ import annotations

import hashlib
import time
from pathlib import Path

import pytest

from api.peers import (
    BadRequestSignatureError,
    ExpiredRequestError,
    NonceStore,
    PeerGate,
    ReplayedRequestError,
    UnknownPeerError,
    UnsignedRequestError,
    court_of,
    sign_request,
)
from ledger.note import Ed25519Signer
from ledger.trust import Trust

MID = Ed25519Signer("sifa.court/1101-0200", bytes(range(3, 35)))
PATH = "/v1/peer/dossiers/6454039c-0791-518e-bc56-316fcd078efb/package"
EMPTY = hashlib.sha256(b"").hexdigest()


def _headers(**kw: object) -> dict[str, str]:
    return {k.lower(): v for k, v in sign_request(MID, "GET", PATH, **kw).items()}  # type: ignore[arg-type]


def test_a_signed_request_names_its_court() -> None:
    caller = PeerGate(Trust([MID.verifier])).check("GET", PATH, EMPTY, _headers())
    assert (caller.role, caller.court, caller.id) == ("court", "1101-0200", "sifa.court/1101-0200")


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [("POST", PATH, b""), ("GET", PATH.replace("6454", "7454"), b""), ("GET", PATH + "?x=1", b""), ("GET", PATH, b"x")],
)
def test_the_signature_binds_method_path_and_body(method: str, path: str, body: bytes) -> None:
    with pytest.raises(BadRequestSignatureError):
        PeerGate(Trust([MID.verifier])).check(method, path, hashlib.sha256(body).hexdigest(), _headers())


def test_refusals() -> None:
    gate = PeerGate(Trust([MID.verifier]), window=300)
    with pytest.raises(UnsignedRequestError):
        gate.check("GET", PATH, EMPTY, {})
    with pytest.raises(UnknownPeerError):
        PeerGate(None).check("GET", PATH, EMPTY, _headers())
    with pytest.raises(ExpiredRequestError):
        gate.check("GET", PATH, EMPTY, _headers(now=time.time() - 301))
    with pytest.raises(ExpiredRequestError):
        gate.check("GET", PATH, EMPTY, _headers(now=time.time() + 301))
    headers = _headers()
    headers["sifa-nonce"] = "0" * 32  # a nonce the signature does not cover
    with pytest.raises(BadRequestSignatureError):
        gate.check("GET", PATH, EMPTY, headers)
    with pytest.raises(UnknownPeerError):
        court_of("sifa.witness/1101-0200")


def test_a_replay_is_refused_even_after_a_restart(tmp_path: Path) -> None:
    headers = _headers()
    first = NonceStore(tmp_path / "nonces.sqlite")
    PeerGate(Trust([MID.verifier]), nonces=first).check("GET", PATH, EMPTY, headers)
    with pytest.raises(ReplayedRequestError):
        PeerGate(Trust([MID.verifier]), nonces=first).check("GET", PATH, EMPTY, headers)
    first.close()
    again = NonceStore(tmp_path / "nonces.sqlite")  # the node restarted
    with pytest.raises(ReplayedRequestError):
        PeerGate(Trust([MID.verifier]), nonces=again).check("GET", PATH, EMPTY, headers)
    PeerGate(Trust([MID.verifier]), nonces=again).check("GET", PATH, EMPTY, _headers())  # a fresh one passes
    again.close()
