"""Signed node-to-node requests (api/peers.py): what the signature binds, replays, recipients, URLs."""

from __future__ import annotations

import hashlib
import time
from pathlib import Path

import pytest

from api.peers import (
    BadRequestSignatureError,
    ExpiredRequestError,
    InsecurePeerUrlError,
    MisaddressedRequestError,
    NonceStore,
    PeerGate,
    PeerUnavailableError,
    ReplayedRequestError,
    UnknownPeerError,
    UnsignedRequestError,
    check_url,
    court_of,
    send,
    sign_request,
)
from ledger.note import Ed25519Signer
from ledger.trust import Trust

MID = Ed25519Signer("sifa.court/1101-0200", bytes(range(3, 35)))
LOW, HIGH = "sifa.court/1101-0105", "sifa.court/1100-0000"  # the court asked, and a third one
PATH = "/v1/peer/dossiers/6454039c-0791-518e-bc56-316fcd078efb/package"
EMPTY = hashlib.sha256(b"").hexdigest()


def _headers(to: str = LOW, **kw: object) -> dict[str, str]:
    return {k.lower(): v for k, v in sign_request(MID, "GET", PATH, to=to, **kw).items()}  # type: ignore[arg-type]


def _gate(**kw: object) -> PeerGate:
    return PeerGate(Trust([MID.verifier]), LOW, **kw)  # type: ignore[arg-type]


def test_a_signed_request_names_its_court() -> None:
    caller = _gate().check("GET", PATH, EMPTY, _headers())
    assert (caller.role, caller.court, caller.id) == ("court", "1101-0200", "sifa.court/1101-0200")


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [("POST", PATH, b""), ("GET", PATH.replace("6454", "7454"), b""), ("GET", PATH + "?x=1", b""), ("GET", PATH, b"x")],
)
def test_the_signature_binds_method_path_and_body(method: str, path: str, body: bytes) -> None:
    with pytest.raises(BadRequestSignatureError):
        _gate().check(method, path, hashlib.sha256(body).hexdigest(), _headers())


def test_refusals() -> None:
    gate = _gate(window=300)
    with pytest.raises(UnsignedRequestError):
        gate.check("GET", PATH, EMPTY, {})
    with pytest.raises(UnknownPeerError):
        PeerGate(None, LOW).check("GET", PATH, EMPTY, _headers())
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
    _gate(nonces=first).check("GET", PATH, EMPTY, headers)
    with pytest.raises(ReplayedRequestError):
        _gate(nonces=first).check("GET", PATH, EMPTY, headers)
    first.close()
    again = NonceStore(tmp_path / "nonces.sqlite")  # the node restarted
    with pytest.raises(ReplayedRequestError):
        _gate(nonces=again).check("GET", PATH, EMPTY, headers)
    _gate(nonces=again).check("GET", PATH, EMPTY, _headers())  # a fresh one passes
    again.close()


def test_a_request_names_the_court_it_is_sent_to() -> None:
    """A request captured on its way to one court is refused by a third, even within its window."""
    headers = _headers(to=LOW)
    with pytest.raises(MisaddressedRequestError):
        PeerGate(Trust([MID.verifier]), HIGH).check("GET", PATH, EMPTY, headers)
    forged = {**headers, "sifa-to": HIGH}  # the recipient is signed: changing it breaks the signature
    with pytest.raises(BadRequestSignatureError):
        PeerGate(Trust([MID.verifier]), HIGH).check("GET", PATH, EMPTY, forged)
    unaddressed = {k: v for k, v in headers.items() if k != "sifa-to"}
    with pytest.raises(UnsignedRequestError):
        _gate().check("GET", PATH, EMPTY, unaddressed)
    _gate().check("GET", PATH, EMPTY, headers)  # where it was sent, it passes


@pytest.mark.parametrize("when", ["²", "1795420800²", "١٧٩٥٤٢٠٨٠٠", "+1795420800", " 1795420800", "9" * 13, "-1"])
def test_sifa_time_is_ascii_digits(when: str) -> None:
    """``"²".isdigit()`` is true and int() refuses it: that was a 500. Other Unicode digits, signs,
    spaces and overlong numbers are refused the same way."""
    headers = {**_headers(), "sifa-time": when}
    with pytest.raises(ExpiredRequestError, match="ASCII digits"):
        _gate().check("GET", PATH, EMPTY, headers)


@pytest.mark.parametrize(
    ("url", "allowed"),
    [
        ("https://sifa.court-1101-0105.example.cn", True),
        ("https://10.0.0.5:8260/sifa", True),
        ("http://127.0.0.1:8260", True),
        ("http://127.3.2.1", True),
        ("http://[::1]:8260", True),
        ("http://localhost:8260", True),
        ("http://sifa.court-1101-0105.example.cn", False),
        ("http://10.0.0.5:8260", False),
        ("http://[::ffff:10.0.0.5]", False),
        ("http://localhost.example.cn", False),
        ("ftp://127.0.0.1", False),
        ("https://", False),
        ("127.0.0.1:8260", False),
    ],
)
def test_peer_urls_are_https_except_on_loopback(url: str, allowed: bool) -> None:
    if allowed:
        check_url(url, "a peer's")
    else:
        with pytest.raises(InsecurePeerUrlError, match="must be https://"):
            check_url(url, "a peer's")


@pytest.mark.parametrize("url", ["http://127.0.0.1:99999", "http://127.0.0.1:abc", "http://127.0.0.1:1:5",
                                 "http://[::1", "http://127.0.0.1:0", "https://a.example.cn/ x"])  # fmt: skip
def test_a_url_that_cannot_be_called_is_refused_as_unavailable(url: str) -> None:
    """Attack F3: a bad port or bracket was a ValueError (500, a traceback) at use; now it is
    peer_unavailable, from the check and from a request."""
    with pytest.raises(PeerUnavailableError, match="not a URL"):
        check_url(url, "a peer's")
    with pytest.raises(PeerUnavailableError):
        send("GET", url, what="a peer")
