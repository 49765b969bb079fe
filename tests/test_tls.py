"""Between courts over HTTPS: each ``sifa serve`` with a certificate from a throwaway CA the test makes.

Two courts transfer a dossier over HTTPS, each verifying the other against the CA bundle
(``SIFA_TLS_CA``); a court whose certificate comes from another CA is refused; plain-HTTP peer and
witness URLs off loopback, and TLS settings that cannot work, are refused at start in one line.
"""

from __future__ import annotations

import datetime
import functools
import hashlib
import ipaddress
import json
import ssl
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx2
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from api.cli import main as sifa
from tests.nodes import Serve, init, trust_entry
from tests.servers import free_port

LOW, MID, ROGUE = "1101-0105", "1101-0200", "1101-0106"
COURTS = [
    {"code": LOW, "name": "北京市朝阳区人民法院", "level": "基层", "parent": MID},
    {"code": ROGUE, "name": "北京市海淀区人民法院", "level": "基层", "parent": MID},
    {"code": MID, "name": "北京市第三中级人民法院", "level": "中级", "parent": None},
]
CASE = "（2026）京0105民初7001号"


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


class CA:
    """A throwaway certificate authority (ECDSA P-256) that issues server certificates."""

    def __init__(self, root: Path, name: str) -> None:
        self.root, self.key = root, ec.generate_private_key(ec.SECP256R1())
        now = datetime.datetime.now(datetime.UTC)
        self.cert = (
            x509.CertificateBuilder().subject_name(_name(name)).issuer_name(_name(name))
            .public_key(self.key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                         content_commitment=False, key_encipherment=False, data_encipherment=False,
                                         key_agreement=False, encipher_only=False, decipher_only=False), critical=True)
            .sign(self.key, hashes.SHA256())
        )  # fmt: skip
        self.bundle = root / f"{name}.pem"
        self.bundle.write_bytes(self.cert.public_bytes(serialization.Encoding.PEM))

    def issue(self, name: str) -> tuple[Path, Path]:
        """A server certificate for 127.0.0.1 and localhost: (certificate file, key file)."""
        key = ec.generate_private_key(ec.SECP256R1())
        now = datetime.datetime.now(datetime.UTC)
        cert = (
            x509.CertificateBuilder().subject_name(_name(name)).issuer_name(self.cert.subject)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost"),
                                                        x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                           critical=False)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .sign(self.key, hashes.SHA256())
        )  # fmt: skip
        cert_file, key_file = self.root / f"{name}.crt", self.root / f"{name}.key"
        cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                               serialization.NoEncryption()))  # fmt: skip
        key_file.chmod(0o600)
        return cert_file, key_file


@dataclass
class Court:
    code: str
    serve: Serve
    http: httpx2.Client
    clerk: dict[str, str]


@pytest.fixture(scope="module")
def courts(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Court]]:
    """Three courts over HTTPS: LOW and MID with certificates from the consortium's CA (which every
    node trusts), ROGUE with one from another CA."""
    root = tmp_path_factory.mktemp("tls")
    ca, other = CA(root, "consortium-ca"), CA(root, "other-ca")
    admins = {c["code"]: init(root / c["code"], c["code"], c["name"]) for c in COURTS}
    ports = {code: free_port() for code in admins}
    for code in admins:
        (root / code / "courts.json").write_text(json.dumps({"courts": COURTS}, ensure_ascii=False))
    entries = {code: {**trust_entry(root / code), "url": f"https://127.0.0.1:{ports[code]}"} for code in admins}
    client = ssl.create_default_context(cafile=str(ca.bundle))
    found: dict[str, Court] = {}
    try:
        for code in admins:
            peers = root / f"peers-{code}.json"
            peers.write_text(json.dumps({"logs": [e for c, e in entries.items() if c != code]}, ensure_ascii=False))
            cert, key = (other if code == ROGUE else ca).issue(code)
            serve = Serve(root / code, ports[code], SIFA_PEERS=str(peers), SIFA_TLS_CERT=str(cert),
                          SIFA_TLS_KEY=str(key), SIFA_TLS_CA=str(ca.bundle), SIFA_SEQUENCER="thread")  # fmt: skip
            http = httpx2.Client(base_url=f"https://127.0.0.1:{ports[code]}", verify=client, timeout=60)
            found[code] = Court(code, serve, http, {})
            if code != ROGUE:
                r = http.post("/v1/principals", json={"name": "书记员", "role": "clerk"},
                              headers={"Authorization": f"Bearer {admins[code]}"})  # fmt: skip
                assert r.status_code == 201, r.text
                found[code].clerk = {"Authorization": f"Bearer {r.json()['token']}"}
        yield found
    finally:
        for c in found.values():
            c.http.close()
            c.serve.stop()


def test_two_courts_transfer_a_dossier_over_https(courts: dict[str, Court]) -> None:
    low, mid = courts[LOW], courts[MID]
    r = low.http.post("/v1/dossiers", headers=low.clerk, json={"case_number": CASE, "case_type": "民事"})
    assert r.status_code == 201, r.text
    d = r.json()["dossier"]
    content = "起诉状：原告张三诉被告李四买卖合同纠纷。".encode() * 1000
    r = low.http.post(f"/v1/dossiers/{d}/documents", content=content,
                      headers={**low.clerk, "X-File-Name": "%E8%B5%B7%E8%AF%89%E7%8A%B6.txt",
                               "Content-Type": "text/plain"})  # fmt: skip
    assert r.status_code == 201, r.text
    r = low.http.post(f"/v1/dossiers/{d}/transfers", headers=low.clerk,
                      json={"to_court": MID, "kind": "上诉", "reason": "被告不服一审判决，提起上诉"})  # fmt: skip
    assert r.status_code == 200, r.text

    r = mid.http.post("/v1/retrievals", headers=mid.clerk, json={"from_court": LOW, "dossier": d})
    assert r.status_code == 201, r.text
    assert (r.json()["files"], r.json()["case_number"]) == (1, CASE)
    view = mid.http.get(f"/v1/dossiers/{d}", headers=mid.clerk).json()
    (doc,) = view["documents"].values()
    got = mid.http.get(f"/v1/dossiers/{d}/files/{doc['sha256']}", headers=mid.clerk).content
    assert hashlib.sha256(got).digest() == hashlib.sha256(content).digest()

    # Plain HTTP to an HTTPS node gets nothing.
    with pytest.raises(httpx2.HTTPError):
        httpx2.get(f"http://127.0.0.1:{low.serve.port}/healthz", timeout=5)


def test_a_court_with_a_certificate_from_another_ca_is_refused(courts: dict[str, Court]) -> None:
    mid = courts[MID]
    d = "6454039c-0791-518e-bc56-316fcd078efb"
    r = mid.http.post("/v1/retrievals", headers=mid.clerk, json={"from_court": ROGUE, "dossier": d})
    assert (r.status_code, r.json()["code"]) == (502, "peer_certificate_invalid"), r.text
    assert "SIFA_TLS_CA" in r.json()["message"]
    assert mid.http.get(f"/v1/dossiers/{d}", headers=mid.clerk).status_code == 404  # nothing imported


def _serve_refused(data: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
                   **env: str) -> str:  # fmt: skip
    """``sifa serve`` with ``env``: it must refuse at start (exit 2); its one line."""
    with monkeypatch.context() as m:
        for k, v in env.items():
            m.setenv(k, v)
        assert sifa(["serve", "--data-dir", str(data), "--port", str(free_port())]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1, err
    return err


def test_insecure_settings_are_refused_at_start(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                capsys: pytest.CaptureFixture[str]) -> None:  # fmt: skip
    data = tmp_path / "data"
    init(data, LOW, "北京市朝阳区人民法院")
    capsys.readouterr()
    refused = functools.partial(_serve_refused, data, monkeypatch, capsys)
    for name, url in (("peers", "http://10.0.0.5:8260"), ("witnesses", "http://sifa.witness.example.cn")):
        trust = tmp_path / f"{name}.json"
        entry = {"key": trust_entry(data, *(["--witness"] if name == "witnesses" else []))["key"], "url": url}
        trust.write_text(json.dumps({"logs": [entry]} if name == "peers" else {"witnesses": [entry], "quorum": 0}))
        line = refused(**{f"SIFA_{name.upper()}": str(trust)})
        assert url in line and "must be https://" in line
    assert "without SIFA_TLS_CERT" in refused(SIFA_TLS_KEY=str(tmp_path / "key.pem"))
    (tmp_path / "junk.pem").write_text("not a certificate")
    assert "does not load" in refused(SIFA_TLS_CERT=str(tmp_path / "junk.pem"))
    assert "does not load" in refused(SIFA_TLS_CA=str(tmp_path / "junk.pem"))
