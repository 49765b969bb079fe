"""SM4-GCM (国密, GB/T 32907-2016 in GCM mode, RFC 8998) as an eventsourcing cipher: a GM node's events at rest.

    stored = nonce (12 bytes) || tag (16 bytes) || ciphertext      (eventsourcing's AESCipher layout)
    key    = base64 of 16 bytes (SM4 has one key size), CIPHER_KEY as for AESCipher

The node's environment names it with ``CIPHER_TOPIC = dossier.cipher:SM4Cipher`` (api/node.py,
``sifa init --crypto gm``); the cipher is OpenSSL's, through ``cryptography``.
"""

from __future__ import annotations

import os
from base64 import b64decode, b64encode
from typing import Final

from cryptography.exceptions import InvalidTag, UnsupportedAlgorithm
from cryptography.hazmat.primitives.ciphers import Cipher as _Cipher
from cryptography.hazmat.primitives.ciphers import algorithms, modes
from eventsourcing.persistence import Cipher
from eventsourcing.utils import Environment

TOPIC: Final = "dossier.cipher:SM4Cipher"
KEY_SIZE: Final = 16
NONCE_SIZE: Final = 12
TAG_SIZE: Final = 16


class SM4Cipher(Cipher):
    """eventsourcing cipher strategy: SM4 in GCM mode, 96-bit random nonce, 128-bit tag."""

    CIPHER_KEY = "CIPHER_KEY"

    @staticmethod
    def create_key(num_bytes: int = KEY_SIZE) -> str:
        """A new SM4 key, base64. Raises ValueError for a size other than 16 bytes."""
        if num_bytes != KEY_SIZE:
            raise ValueError(f"an SM4 key has {KEY_SIZE} bytes, not {num_bytes}")
        return b64encode(os.urandom(KEY_SIZE)).decode()

    def __init__(self, environment: Environment) -> None:
        cipher_key = environment.get(self.CIPHER_KEY)
        if not cipher_key:
            raise OSError(f"'{self.CIPHER_KEY}' not in env")
        key = b64decode(cipher_key.encode("utf8"))
        if len(key) != KEY_SIZE:
            raise ValueError(f"an SM4 key has {KEY_SIZE} bytes, not {len(key)}")
        self.key = key
        try:
            algorithms.SM4(key)
            _Cipher(algorithms.SM4(key), modes.GCM(bytes(NONCE_SIZE))).encryptor()
        except UnsupportedAlgorithm as exc:
            raise OSError("this OpenSSL has no SM4-GCM; a GM node cannot keep its events") from exc

    def encrypt(self, plaintext: bytes) -> bytes:
        nonce = os.urandom(NONCE_SIZE)
        enc = _Cipher(algorithms.SM4(self.key), modes.GCM(nonce)).encryptor()
        encrypted = enc.update(plaintext) + enc.finalize()
        return nonce + enc.tag + encrypted

    def decrypt(self, ciphertext: bytes) -> bytes:
        """The plaintext. Raises ValueError for a cut or changed ciphertext (as AESCipher does)."""
        if len(ciphertext) < NONCE_SIZE + TAG_SIZE:
            raise ValueError("Damaged cipher text: shorter than nonce and tag")
        nonce, tag, encrypted = ciphertext[:NONCE_SIZE], ciphertext[NONCE_SIZE:28], ciphertext[28:]
        dec = _Cipher(algorithms.SM4(self.key), modes.GCM(nonce, tag)).decryptor()
        try:
            return dec.update(encrypted) + dec.finalize()
        except InvalidTag as exc:
            raise ValueError("Cipher text is damaged: invalid tag") from exc
