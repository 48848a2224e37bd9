"""Password hashes: ours are salted scrypt; Django's pbkdf2_sha256 ones are verified, then upgraded."""
from __future__ import annotations

import base64
import binascii
import functools
import hashlib
import hmac
import secrets
from pathlib import Path

# scrypt: memory-hard and in the standard library; about 50 ms a hash here.
SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**14, 8, 1
UNUSABLE_PASSWORD = "!"
MAX_PBKDF2_ITERATIONS = 10_000_000  # far above Django's 1,000,000; refuses absurd stored counts
MIN_PASSWORD_LENGTH = 8  # Django's MinimumLengthValidator
COMMON_PASSWORDS = Path(__file__).with_name("common_passwords.txt")


def hash_password(password: str) -> str:
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=SCRYPT_N, r=SCRYPT_R, p=SCRYPT_P)
    encode = base64.b64encode
    return f"scrypt${SCRYPT_N}${SCRYPT_R}${SCRYPT_P}${encode(salt).decode()}${encode(digest).decode()}"


def _check_scrypt(password: str, n: str, r: str, p: str, salt: str, digest: str) -> bool:
    expected = base64.b64decode(digest, validate=True)
    candidate = hashlib.scrypt(password.encode(), salt=base64.b64decode(salt, validate=True),
                               n=int(n), r=int(r), p=int(p), dklen=len(expected))
    return hmac.compare_digest(candidate, expected)


def _check_django_pbkdf2(password: str, iterations: str, salt: str, digest: str) -> bool:
    """Django's PBKDF2PasswordHasher: pbkdf2_sha256$<iterations>$<salt>$<base64 of 32 bytes>."""
    if not 0 < int(iterations) <= MAX_PBKDF2_ITERATIONS:
        return False
    candidate = hashlib.pbkdf2_hmac("sha256", password.encode(), salt.encode(), int(iterations))
    return hmac.compare_digest(base64.b64encode(candidate), digest.encode())


def check_password(password: str, stored: str) -> bool:
    """True when the password matches the stored hash; False for anything unrecognised."""
    scheme, _, rest = stored.partition("$")
    parts = rest.split("$")
    try:
        if scheme == "scrypt" and len(parts) == 5:
            return _check_scrypt(password, *parts)
        if scheme == "pbkdf2_sha256" and len(parts) == 3:
            return _check_django_pbkdf2(password, *parts)
    except (ValueError, binascii.Error):  # e.g. Django's own scrypt format, or a damaged hash
        return False
    return False


def needs_upgrade(stored: str) -> bool:
    """An imported or older hash that the next successful login should replace."""
    return not stored.startswith(f"scrypt${SCRYPT_N}${SCRYPT_R}${SCRYPT_P}$")


def is_usable(stored: str) -> bool:
    return not stored.startswith(UNUSABLE_PASSWORD)


@functools.cache
def dummy_hash() -> str:
    """A real hash to check when the user does not exist, so that the answer takes as long
    as for a wrong password and does not tell which usernames exist."""
    return hash_password(secrets.token_urlsafe(16))


@functools.cache
def common_passwords() -> frozenset[str]:
    lines = COMMON_PASSWORDS.read_text().splitlines()
    return frozenset(line.strip().lower() for line in lines if line.strip() and not line.startswith("#"))


def password_problems(password: str, username: str) -> list[str]:
    """Django's four validators' messages, for a new password set by a command (imported hashes are kept)."""
    problems = []
    if len(password) < MIN_PASSWORD_LENGTH:
        problems.append(f"This password is too short. It must contain at least {MIN_PASSWORD_LENGTH} characters.")
    folded, name = password.casefold(), username.casefold()
    if name and (name in folded or folded in name and len(folded) >= 3):
        problems.append("The password is too similar to the username.")
    if password.strip().lower() in common_passwords():
        problems.append("This password is too common.")
    if password.isdigit():
        problems.append("This password is entirely numeric.")
    return problems
