"""Credentials at rest: Fernet (cryptography) encryption of an account's secrets as JSON.

A SecretBox holds one key or several (`MultiFernet`): the first seals, every one opens, so a key can be
rotated: put the new key first, re-seal every credential with `rotate` (`python -m bot rotate-key`),
then drop the old key.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from collections.abc import Sequence
from typing import Any

from cryptography.fernet import Fernet, InvalidToken, MultiFernet


class SecretBoxError(Exception):
    """The stored secret can't be read with this key (wrong HERALD_SECRET_KEY or damaged data)."""


def split_keys(keys: str) -> list[str]:
    """'new,old' (or one key a line, as in the key file) → ['new', 'old']; the first one seals."""
    return [key for key in re.split(r"[\s,;]+", keys) if key]


class SecretBox:
    """Encrypts and decrypts credential dictionaries. Never logs or reprs what it holds."""

    def __init__(self, keys: str | bytes | Sequence[str]) -> None:
        if isinstance(keys, bytes):
            keys = keys.decode()
        found = split_keys(keys) if isinstance(keys, str) else list(keys)
        if not found:
            raise ValueError("no key given")
        self._fernet = MultiFernet([Fernet(key) for key in found])
        self._first = found[0].encode()
        self.key_count = len(found)

    def __repr__(self) -> str:
        return "SecretBox(<key hidden>)"

    @staticmethod
    def new_key() -> str:
        return Fernet.generate_key().decode()

    @staticmethod
    def is_valid_key(key: str) -> bool:
        """One Fernet key, or several separated by commas (the first seals, all open)."""
        found = split_keys(key)
        if not found:
            return False
        try:
            for one in found:
                Fernet(one)
        except (ValueError, TypeError):
            return False
        return True

    def derive(self, purpose: str) -> bytes:
        """A key of its own for `purpose` (signing review links), derived from the sealing key with HMAC-SHA256:
        the same on every worker and after a restart; a new one once the keys are rotated."""
        return hmac.new(self._first, b"herald:" + purpose.encode(), hashlib.sha256).digest()

    def seal(self, secrets: dict[str, Any]) -> bytes:
        return self._fernet.encrypt(json.dumps(secrets, sort_keys=True).encode())

    def open(self, token: bytes | None) -> dict[str, Any]:
        if not token:
            return {}
        try:
            return dict(json.loads(self._fernet.decrypt(token)))
        except InvalidToken as exc:
            raise SecretBoxError(
                "stored credentials can't be decrypted with this HERALD_SECRET_KEY"
            ) from exc

    def rotate(self, token: bytes) -> bytes:
        """The same secret sealed again with the first key (MultiFernet.rotate)."""
        try:
            return self._fernet.rotate(token)
        except InvalidToken as exc:
            raise SecretBoxError("stored credentials can't be decrypted with any key of HERALD_SECRET_KEY") from exc
