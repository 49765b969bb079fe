"""SM2 signed-note keys (国密): SM2 with SM3 and the GM/T 0009 default distinguishing ID.

    SPEC: GB/T 32918.2-2016 (SM2 signatures), GB/T 32905-2016 (SM3), GM/T 0009-2012 §10
    ("1234567812345678" as the default user ID), c2sp.org/signed-note (type 0xff)

    signature type = 0xff || DER(OID 1.2.156.10197.1.501 "SM2-with-SM3")   (ledger.note.SM2_SM3)
    public key     = 04 || x || y                      (65 bytes, GB/T 32918.1 uncompressed form)
    private key    = d                                 (32 bytes, big-endian, 1 <= d <= n - 2)
    signature      = r || s                            (64 bytes, big-endian, 1 <= r, s <= n - 1)
    key ID         = SHA-256(name || 0x0A || signature type || public key)[:4]

Signing and verifying go through GmSSL (``gmssl_pyx``, the ``gm`` extra), imported
when a key is made, so ``import ledger`` works without it; a key made without it
raises MalformedNoteError naming the extra. The curve arithmetic here is only the
checks a key string needs (the point is on the curve) and deriving the public key
of a private key string; docs/gm.md has the choices.
"""

from __future__ import annotations

import base64
import secrets
from dataclasses import dataclass, field
from functools import cache
from types import ModuleType
from typing import Final

from ledger.errors import MalformedNoteError
from ledger.hashing import sm3_function
from ledger.note import SM2_SM3, format_key, key_id, parse_key, valid_key_name

# SPEC: GB/T 32918.5-2017 recommended curve parameters (sm2p256v1).
P: Final = 0xFFFFFFFE_FFFFFFFF_FFFFFFFF_FFFFFFFF_FFFFFFFF_00000000_FFFFFFFF_FFFFFFFF
A: Final = P - 3
B: Final = 0x28E9FA9E_9D9F5E34_4D5A9E4B_CF6509A7_F39789F5_15AB8F92_DDBCBD41_4D940E93
N: Final = 0xFFFFFFFE_FFFFFFFF_FFFFFFFF_FFFFFFFF_7203DF6B_21C6052B_53BBF409_39D54123
GX: Final = 0x32C4AE2C_1F198119_5F990446_6A39C994_8FE30BBF_F2660BE1_715A4589_334C74C7
GY: Final = 0xBC3736A2_F4F6779C_59BDCEE3_6B692153_D0A9877C_C62A4740_02DF32E5_2139F0A0

# SPEC: GM/T 0009-2012 §10 "用户身份标识 ID 的默认值 … 1234567812345678"; fixed by the signature type.
DEFAULT_ID: Final = b"1234567812345678"
SIGNATURE_SIZE: Final = 64
# SubjectPublicKeyInfo{ {id-ecPublicKey, sm2p256v1 1.2.156.10197.1.301}, BIT STRING 04||x||y }
_SPKI_PREFIX: Final = bytes.fromhex("3059301306072a8648ce3d020106082a811ccf5501822d034200")
_CURVE: Final = b"".join(v.to_bytes(32, "big") for v in (A, B, GX, GY))


@cache
def _gmssl() -> ModuleType:
    try:
        import gmssl_pyx
    except ImportError as exc:
        raise MalformedNoteError("SM2 keys need the gm extra: pip install 'sifa[gm]'") from exc
    module: ModuleType = gmssl_pyx
    return module


def on_curve(x: int, y: int) -> bool:
    """Whether (x, y) is a point of sm2p256v1 (GB/T 32918.1 §6.2, public key validation)."""
    return 0 <= x < P and 0 <= y < P and (y * y - (x * x * x + A * x + B)) % P == 0


def z_a(public_key: bytes, ident: bytes = DEFAULT_ID) -> bytes:
    """Z_A = SM3(ENTL_A || ID_A || a || b || x_G || y_G || x_A || y_A), GB/T 32918.2 §5.5; per key, not per message."""
    return sm3_function()((len(ident) * 8).to_bytes(2, "big") + ident + _CURVE + public_key[1:])


def _add(p1: tuple[int, int] | None, p2: tuple[int, int] | None) -> tuple[int, int] | None:
    if p1 is None:
        return p2
    if p2 is None:
        return p1
    (x1, y1), (x2, y2) = p1, p2
    if x1 == x2 and (y1 + y2) % P == 0:
        return None
    # the tangent when doubling, else the chord through both points
    num, den = (3 * x1 * x1 + A, 2 * y1) if p1 == p2 else (y2 - y1, x2 - x1)
    slope = num * pow(den, -1, P) % P
    x3 = (slope * slope - x1 - x2) % P
    return x3, (slope * (x1 - x3) - y1) % P


def public_key_of(d: int) -> bytes:
    """The uncompressed public key [d]G of a private scalar; only when a key is loaded, not per signature."""
    acc: tuple[int, int] | None = None
    for bit in bin(d)[2:]:
        acc = _add(acc, acc)
        if bit == "1":
            acc = _add(acc, (GX, GY))
    if acc is None:  # d is a multiple of n: refused by the caller's range check already
        raise MalformedNoteError("an SM2 private key must lie in [1, n-2]")
    return b"\x04" + acc[0].to_bytes(32, "big") + acc[1].to_bytes(32, "big")


def _der_int(value: bytes) -> bytes:
    value = value.lstrip(b"\x00") or b"\x00"
    if value[0] & 0x80:
        value = b"\x00" + value
    return b"\x02" + bytes([len(value)]) + value


def der_signature(raw: bytes) -> bytes:
    """The GM/T 0009 ``SM2Signature ::= SEQUENCE { r INTEGER, s INTEGER }`` of a raw r||s (what OpenSSL speaks)."""
    body = _der_int(raw[:32]) + _der_int(raw[32:])
    return b"\x30" + bytes([len(body)]) + body


def raw_signature(der: bytes) -> bytes:
    """r||s of a DER SM2Signature; raises MalformedNoteError for anything but that exact shape."""
    fields: list[bytes] = []
    if len(der) < 2 or der[0] != 0x30 or der[1] != len(der) - 2:
        raise MalformedNoteError("an SM2 signature in DER is SEQUENCE { r INTEGER, s INTEGER }")
    pos = 2
    while pos < len(der) and len(fields) < 2:
        if der[pos] != 0x02 or pos + 2 > len(der):
            raise MalformedNoteError("an SM2 signature in DER holds two INTEGERs")
        size = der[pos + 1]
        value = der[pos + 2 : pos + 2 + size]
        if not 1 <= size <= 33 or len(value) != size or value != _der_int(value)[2:]:
            raise MalformedNoteError("an SM2 signature in DER holds two minimal positive INTEGERs")
        fields.append(value.lstrip(b"\x00").rjust(32, b"\x00"))
        pos += 2 + size
    if len(fields) != 2 or pos != len(der):
        raise MalformedNoteError("an SM2 signature in DER is SEQUENCE { r INTEGER, s INTEGER }")
    return fields[0] + fields[1]


@dataclass(frozen=True, slots=True)
class SM2Verifier:
    """A named SM2 public key, as a C2SP verifier key string of type 0xff||SM2-with-SM3 describes it."""

    name: str
    public_key: bytes
    _z: bytes = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not valid_key_name(self.name):
            raise MalformedNoteError(f"invalid key name {self.name!r}")
        pk = self.public_key
        if len(pk) != 65 or pk[0] != 4:
            raise MalformedNoteError("an SM2 public key is 04||x||y, 65 bytes")
        if not on_curve(int.from_bytes(pk[1:33], "big"), int.from_bytes(pk[33:], "big")):
            raise MalformedNoteError("the SM2 public key is not a point of the curve")
        _gmssl()
        object.__setattr__(self, "_z", z_a(pk))

    def digest(self, message: bytes) -> bytes:
        """e = SM3(Z_A || M), what an SM2 signature of this key over ``message`` signs (GB/T 32918.2 §6.1 A1-A2)."""
        return sm3_function()(self._z + message)

    @property
    def key_id(self) -> bytes:
        return key_id(self.name, SM2_SM3, self.public_key)

    def vkey(self) -> str:
        """The verifier key string ``name+hexid+base64(0xff||OID||04||x||y)``."""
        return format_key(self.name, self.key_id, SM2_SM3, self.public_key)

    @classmethod
    def from_vkey(cls, vkey: str) -> SM2Verifier:
        """Parse a verifier key string. Raises MalformedNoteError."""
        name, hex_id, key = parse_key(vkey, SM2_SM3, "verifier key")
        verifier = cls(name, key)
        if hex_id != verifier.key_id.hex():
            raise MalformedNoteError(f"verifier key {name}: key ID {hex_id} does not match the key")
        return verifier

    def public_key_pem(self) -> str:
        """The key as a PEM SubjectPublicKeyInfo, for ``openssl`` and other tools."""
        body = base64.encodebytes(_SPKI_PREFIX + self.public_key).decode().replace("\n", "")
        lines = [body[i : i + 64] for i in range(0, len(body), 64)]
        return "-----BEGIN PUBLIC KEY-----\n" + "\n".join(lines) + "\n-----END PUBLIC KEY-----\n"

    def verify(self, message: bytes, signature: bytes) -> bool:
        if len(signature) != SIGNATURE_SIZE:
            return False
        r, s = int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:], "big")
        # SPEC: GB/T 32918.2 §7.1 B1-B2 "检验 r′ ∈ [1, n-1] … s′ ∈ [1, n-1]"
        if not (1 <= r < N and 1 <= s < N):
            return False
        return bool(_gmssl().sm2_verify_sm3_digest(self.public_key[1:], self.digest(message), der_signature(signature)))


class SM2Signer:
    """A named SM2 signing key; signs with SM3 and the default distinguishing ID (GmSSL)."""

    def __init__(self, name: str, private_key: bytes) -> None:
        d = int.from_bytes(private_key, "big")
        # SPEC: GB/T 32918.1 §6.1 "d ∈ [1, n-2]"
        if len(private_key) != 32 or not 1 <= d <= N - 2:
            raise MalformedNoteError("an SM2 private key is 32 bytes in [1, n-2]")
        self._d = private_key
        self.verifier = SM2Verifier(name, public_key_of(d))
        self.name = name
        self.key_id = self.verifier.key_id

    @classmethod
    def generate(cls, name: str) -> SM2Signer:
        return cls(name, (secrets.randbelow(N - 2) + 1).to_bytes(32, "big"))

    def skey(self) -> str:
        """The private key string ``PRIVATE+KEY+name+hexid+base64(0xff||OID||d)``."""
        return format_key(self.name, self.key_id, SM2_SM3, self._d, private=True)

    @classmethod
    def from_skey(cls, skey: str) -> SM2Signer:
        """Parse a private key string. Raises MalformedNoteError."""
        name, hex_id, d = parse_key(skey, SM2_SM3, "private key", private=True)
        signer = cls(name, d)
        if hex_id != signer.key_id.hex():
            raise MalformedNoteError("private key: key ID does not match the key")
        return signer

    def sign(self, message: bytes) -> bytes:
        """r||s over ``message`` (SM2 signatures are randomised: two calls give two valid signatures)."""
        # GmSSL's whole-message call takes ~8x longer than its digest call; Z_A is the verifier's, computed once.
        der = _gmssl().sm2_sign_sm3_digest(self._d, self.verifier.digest(message))
        return raw_signature(bytes(der))
