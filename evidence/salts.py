"""Node-secret derivations (salts, the dossier reference) and the per-field commitment of ``sifa-leaf/2``."""

from __future__ import annotations

import functools
import hashlib
import hmac
import uuid
from collections.abc import Callable, Iterable, Mapping
from json.encoder import encode_basestring  # json.dumps(text, ensure_ascii=False), without its set-up
from typing import Any, Final

from evidence.canonical import canonical_json

COMMIT_DOMAIN: Final = b"sifa-commit/2\x00"
SALT_DOMAIN: Final = b"sifa-salt/2\x00"  # the event key's HMAC
STREAM_DOMAIN: Final = b"sifa-salts/2\x00"  # the SHAKE-256 stream cut into an event's salts
REF_DOMAIN: Final = b"sifa-dossier-ref/1\x00"
SALT_BYTES: Final = 16
REF_BYTES: Final = 16
MIN_SECRET_BYTES: Final = 32

Digest = Callable[[bytes], bytes]


def sha256(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


_DIGESTS: Final[Mapping[str, Digest]] = {"sha256": sha256}


def digest_named(name: str) -> Digest:
    """The commitment hash a log names (its receipts' ``log.hash``); raises ValueError for an unknown one."""
    try:
        return _DIGESTS[name]
    except KeyError:
        raise ValueError(f"no commitment hash named {name!r}") from None


@functools.lru_cache(maxsize=4096)  # a busy log's open dossiers: str(UUID) costs more than a hash
def _dossier_text(dossier: uuid.UUID | str) -> bytes:
    return str(dossier if isinstance(dossier, uuid.UUID) else uuid.UUID(dossier)).encode("ascii")


def _check_secret(secret: bytes) -> None:
    if len(secret) < MIN_SECRET_BYTES:
        raise ValueError(f"a node secret has at least {MIN_SECRET_BYTES} bytes")


def dossier_ref(secret: bytes, dossier: uuid.UUID | str) -> str:
    """A leaf's dossier reference: HMAC-SHA256(secret, "sifa-dossier-ref/1" 0x00 uuid)[:16], hex."""
    return _ref(secret, _dossier_text(dossier))


@functools.lru_cache(maxsize=4096)  # a busy log's open dossiers: one HMAC each, not one per event
def _ref(secret: bytes, dossier: bytes) -> str:
    _check_secret(secret)
    return hmac.digest(secret, REF_DOMAIN + dossier, "sha256")[:REF_BYTES].hex()


def event_key(secret: bytes, dossier: uuid.UUID | str, version: int) -> bytes:
    """One event's 32-byte key: HMAC-SHA256(secret, "sifa-salt/2" 0x00 uuid 0x00 version).

    HMAC (RFC 2104) written out over hashlib: the pads' hash states are computed once per node
    secret, an event then costs two hash copies (tests check it against ``hmac``)."""
    if type(version) is not int or version < 0:
        raise ValueError("version is a non-negative integer")
    inner_pad, outer_pad = _pads(secret)
    inner, outer = inner_pad.copy(), outer_pad.copy()
    inner.update(b"%s%s\x00%d" % (SALT_DOMAIN, _dossier_text(dossier), version))
    outer.update(inner.digest())
    return outer.digest()


def salt_stream(secret: bytes, dossier: uuid.UUID | str, version: int, count: int) -> bytes:
    """``count`` salts of one event, end to end: SHAKE-256("sifa-salts/2" 0x00 || event_key)[:16 * count].

    The k-th salt (from 0) is the salt of the k-th path of the leaf's ``commitments``, in the leaf's
    (RFC 8785) order: one keyed hash per event, not one per field (docs/privacy.md says why)."""
    return hashlib.shake_256(STREAM_DOMAIN + event_key(secret, dossier, version)).digest(SALT_BYTES * count)


def leaf_order(paths: Iterable[str]) -> list[str]:
    """Paths in the order a leaf's ``commitments`` lists them: RFC 8785 sorts keys by UTF-16 code
    units, which is code-point order unless a path has a character beyond U+FFFF."""
    out = sorted(paths)
    joined = "".join(out)
    if not joined.isascii() and max(map(ord, joined)) > 0xFFFF:
        out.sort(key=lambda p: p.encode("utf-16-be", "surrogatepass"))
    return out


def event_salts(secret: bytes, dossier: uuid.UUID | str, version: int, paths: Iterable[str]) -> dict[str, bytes]:
    """The 16-byte salt of each of one event's committed paths (all of them: a salt depends on its
    path's place among the event's paths), in the leaf's order."""
    order = leaf_order(paths)
    stream = salt_stream(secret, dossier, version, len(order))
    return {p: stream[k * SALT_BYTES : (k + 1) * SALT_BYTES] for k, p in enumerate(order)}


@functools.lru_cache(maxsize=8)
def _pads(secret: bytes) -> tuple[hashlib._Hash, hashlib._Hash]:
    """The hash states after K XOR ipad and K XOR opad: once per node secret, not once per event."""
    _check_secret(secret)
    # SPEC: RFC 2104 §2 "H(K XOR opad, H(K XOR ipad, text))", keys longer than B=64 bytes hashed first
    key = (hashlib.sha256(secret).digest() if len(secret) > 64 else secret).ljust(64, b"\x00")
    return hashlib.sha256(bytes(b ^ 0x36 for b in key)), hashlib.sha256(bytes(b ^ 0x5C for b in key))


def commitment(path: str, value: Any, salt: bytes, digest: Digest = sha256) -> str:
    """hex H("sifa-commit/2" 0x00 || salt || utf8(path) 0x00 || RFC8785(value)).

    The path is inside, so a disclosure cannot be moved to another field; canonical JSON holds no
    raw 0x00, so the input splits one way only. Raises ValueError for a salt that is not 16 bytes.
    """
    if len(salt) != SALT_BYTES:
        raise ValueError(f"a salt has {SALT_BYTES} bytes")
    # a text, the common case, skips canonical_json's walk
    data = encode_basestring(value).encode("utf-8") if type(value) is str else canonical_json(value)
    return digest(COMMIT_DOMAIN + salt + path.encode("utf-8") + b"\x00" + data).hex()
