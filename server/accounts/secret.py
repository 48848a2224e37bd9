"""The server secret (from configuration, or generated once into <data dir>/session.key, 0600), the keys
derived from it, and the one digest of credentials."""
from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import secrets
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken

from server.config import Config

SECRET_BYTES = 32
KEY_FILE = "session.key"


class SecretError(ValueError):
    """The secret is malformed or cannot be stored; str() is one line, never the secret."""


def _decode(text: str, where: str) -> bytes:
    try:
        secret = base64.b64decode(text.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise SecretError(f"{where} is not base64") from None
    if len(secret) != SECRET_BYTES:
        raise SecretError(f"{where} must encode {SECRET_BYTES} bytes, not {len(secret)}")
    return secret


def _read_or_create(path: Path) -> bytes:
    """Create the key file atomically (never half-written, never two different keys)."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
        descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with os.fdopen(descriptor, "w") as handle:
                handle.write(base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode() + "\n")
            try:
                os.link(temporary, path)  # fails if another process got there first: use theirs
            except FileExistsError:
                pass
        finally:
            temporary.unlink(missing_ok=True)
    return _decode(path.read_text(), str(path))


def load_secret(config: Config) -> bytes:
    """DASHBOARD_SESSION_KEY (base64 of 32 bytes), else the data directory's key file."""
    if config.session_key:
        return _decode(config.session_key, "DASHBOARD_SESSION_KEY")
    path = config.data_dir.resolve() / KEY_FILE
    try:
        return _read_or_create(path)
    except OSError as exc:
        raise SecretError(f"cannot keep the server secret in {path}: {exc.strerror}; "
                          "set DASHBOARD_SESSION_KEY") from None


def digest(text: str) -> bytes:
    """SHA-256 of a credential (token, session key, throttle subject): what the database stores."""
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).digest()


def subkey(secret: bytes, purpose: str) -> bytes:
    """An independent 32-byte key per use, so no two uses ever share a key."""
    return hmac.new(secret, purpose.encode(), hashlib.sha256).digest()


class Sealer:
    """Encrypts token keys for storage, so the database alone reveals none."""

    def __init__(self, secret: bytes) -> None:
        self._fernet = Fernet(base64.urlsafe_b64encode(subkey(secret, "token-seal")))

    def seal(self, text: str) -> str:
        return self._fernet.encrypt(text.encode()).decode()

    def unseal(self, sealed: str | None) -> str | None:
        """The text, or None when it was sealed under another secret (or never)."""
        if not sealed:
            return None
        try:
            return self._fernet.decrypt(sealed.encode()).decode()
        except InvalidToken:
            return None
