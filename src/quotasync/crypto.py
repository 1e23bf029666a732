"""Secrets at rest: Salesforce tokens and client secrets are stored encrypted (Fernet), ingest
tokens are stored as hashes. The key comes from `QUOTASYNC_SECRET_KEY` or is generated once into
the data dir with mode 0600."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken

from quotasync import private_files
from quotasync.errors import QuotasyncError

KEY_FILE = "secret.key"


class SecretError(QuotasyncError):
    """A stored secret cannot be read with this key."""


def load_key(data_dir: Path, configured: str | None = None) -> bytes:
    if configured:
        return configured.encode()
    path = data_dir / KEY_FILE
    if not path.exists():
        private_files.directory(data_dir)
        # Created with 0600 from the start, so the key is never readable by others, even briefly.
        private_files.write(path, Fernet.generate_key(), exclusive=True)
    return path.read_bytes().strip()


class Vault:
    def __init__(self, key: bytes) -> None:
        self._fernet = Fernet(key)
        self._key = key

    def seal(self, plain: str) -> str:
        return self._fernet.encrypt(plain.encode()).decode()

    def derive(self, purpose: str) -> bytes:
        """A key for one purpose (signing session cookies, say), derived from the vault's key so
        there is one secret to keep, and a cookie forged with one purpose's key fails another's."""
        return hmac.new(self._key, purpose.encode(), hashlib.sha256).digest()

    def open(self, sealed: str) -> str:
        try:
            return self._fernet.decrypt(sealed.encode()).decode()
        except InvalidToken:
            raise SecretError(
                "a stored secret does not match QUOTASYNC_SECRET_KEY (or the data dir's key)"
            ) from None


def new_token(prefix: str) -> str:
    return f"{prefix}_{secrets.token_urlsafe(32)}"


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def token_matches(token: str, stored_hash: str) -> bool:
    return hmac.compare_digest(token_hash(token), stored_hash)
