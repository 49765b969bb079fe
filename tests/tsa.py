"""A real RFC 3161 timestamp authority on 127.0.0.1 for the tests: OpenSSL's ``openssl ts -reply``
responder behind a small HTTP wrapper (RFC 3161 §3.4: POST application/timestamp-query).

``TestTSA.start(dir)`` makes a CA and a TSA certificate (real keys, ``cryptography``), writes the
responder's configuration, and serves until ``stop()``. ``down()``/``up()`` make it answer 503.
"""

from __future__ import annotations

import datetime as dt
import subprocess
import tempfile
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

CONFIG = """\
[ tsa ]
default_tsa = tsa_config1
[ tsa_config1 ]
dir = {dir}
serial = $dir/serial
crypto_device = builtin
signer_cert = $dir/tsa.pem
certs = $dir/chain.pem
signer_key = $dir/tsa.key
signer_digest = sha256
default_policy = 1.2.156.1.3161.1
digests = sha256, sha384, sha512
accuracy = secs:1
ordering = yes
tsa_name = yes
ess_cert_id_chain = no
ess_cert_id_alg = sha256
"""


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COUNTRY_NAME, "CN"), x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _pem(cert: x509.Certificate) -> str:
    return cert.public_bytes(serialization.Encoding.PEM).decode()


def make_ca(cn: str = "测试时间戳根 Test TSA Root") -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder().subject_name(_name(cn)).issuer_name(_name(cn)).public_key(key.public_key())
        .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=True, path_length=1), critical=True)
        .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )  # fmt: skip
    return cert, key


def make_tsa_cert(ca: x509.Certificate, ca_key: ec.EllipticCurvePrivateKey, cn: str = "测试时间戳服务 Test TSA",
                  days: int = 3650) -> tuple[x509.Certificate, rsa.RSAPrivateKey]:  # fmt: skip
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder().subject_name(_name(cn)).issuer_name(ca.subject).public_key(key.public_key())
        .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.TIME_STAMPING]), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )  # fmt: skip
    return cert, key


@dataclass
class TestTSA:
    """One running TSA: its URL, its CA's and its own certificate (PEM)."""

    __test__ = False  # not a pytest class

    dir: Path
    server: ThreadingHTTPServer
    ca_pem: str
    tsa_pem: str
    requests: int = 0
    available: bool = True
    rewrite: Callable[[bytes], bytes] | None = None  # a confused TSA: it stamps the query this returns
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/tsa"

    @classmethod
    def start(cls, directory: Path) -> TestTSA:
        directory.mkdir(parents=True, exist_ok=True)
        ca, ca_key = make_ca()
        cert, key = make_tsa_cert(ca, ca_key)
        (directory / "tsa.pem").write_text(_pem(cert))
        (directory / "chain.pem").write_text(_pem(ca))
        pkcs8 = serialization.PrivateFormat.PKCS8
        (directory / "tsa.key").write_bytes(
            key.private_bytes(serialization.Encoding.PEM, pkcs8, serialization.NoEncryption())
        )
        (directory / "serial").write_text("01\n")
        (directory / "tsa.cnf").write_text(CONFIG.format(dir=directory))
        holder: dict[str, TestTSA] = {}

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                tsa = holder["tsa"]
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                if not tsa.available or self.headers.get("Content-Type") != "application/timestamp-query":
                    self.send_response(503 if not tsa.available else 415)
                    self.end_headers()
                    return
                answer = tsa.reply(body if tsa.rewrite is None else tsa.rewrite(body))
                self.send_response(200)
                self.send_header("Content-Type", "application/timestamp-reply")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        tsa = cls(directory, server, _pem(ca), _pem(cert))
        holder["tsa"] = tsa
        threading.Thread(target=server.serve_forever, name="test-tsa", daemon=True).start()
        return tsa

    def reply(self, query: bytes) -> bytes:
        """``openssl ts -reply`` for one query (one at a time: it keeps its serial in a file)."""
        with self._lock, tempfile.TemporaryDirectory() as tmp:
            (Path(tmp) / "q.der").write_bytes(query)
            subprocess.run(["openssl", "ts", "-reply", "-config", str(self.dir / "tsa.cnf"), "-queryfile",
                            str(Path(tmp) / "q.der"), "-out", str(Path(tmp) / "r.der")],
                           check=True, capture_output=True, timeout=30)  # fmt: skip
            self.requests += 1
            return (Path(tmp) / "r.der").read_bytes()

    def openssl_verify(self, token: bytes, data: bytes) -> subprocess.CompletedProcess[bytes]:
        """``openssl ts -verify`` of a token (DER) over ``data``, against this TSA's CA."""
        with tempfile.TemporaryDirectory() as tmp:
            (Path(tmp) / "t.der").write_bytes(token)
            (Path(tmp) / "data").write_bytes(data)
            (Path(tmp) / "ca.pem").write_text(self.ca_pem)
            return subprocess.run(["openssl", "ts", "-verify", "-token_in", "-in", str(Path(tmp) / "t.der"),
                                   "-data", str(Path(tmp) / "data"), "-CAfile", str(Path(tmp) / "ca.pem"),
                                   "-untrusted", str(self.dir / "tsa.pem")],
                                  capture_output=True, timeout=30)  # fmt: skip

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
