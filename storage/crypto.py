"""Credentials at rest: Fernet (cryptography) encryption of an account's secrets as JSON."""

from __future__ import annotations

import json
from typing import Any

from cryptography.fernet import Fernet, InvalidToken


class SecretBoxError(Exception):
    """The stored secret can't be read with this key (wrong HERALD_SECRET_KEY or damaged data)."""


class SecretBox:
    """Encrypts and decrypts credential dictionaries. Never logs or reprs what it holds."""

    def __init__(self, key: str | bytes) -> None:
        self._fernet = Fernet(key)

    def __repr__(self) -> str:
        return "SecretBox(<key hidden>)"

    @staticmethod
    def new_key() -> str:
        return Fernet.generate_key().decode()

    @staticmethod
    def is_valid_key(key: str) -> bool:
        try:
            Fernet(key)
        except (ValueError, TypeError):
            return False
        return True

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
