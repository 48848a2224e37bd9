"""Password hashes: ours (scrypt) and Django's pbkdf2_sha256, checked against hashes Django made."""
from __future__ import annotations

import pytest

from server.accounts.passwords import check_password, hash_password, needs_upgrade


def test_a_real_django_5_2_hash_with_its_default_1_000_000_rounds() -> None:
    # PBKDF2PasswordHasher().encode("bench-pass", "Qy9ZKcJ8cJvLl3b1dZ7GxA") in Django 5.2.19.
    stored = "pbkdf2_sha256$1000000$Qy9ZKcJ8cJvLl3b1dZ7GxA$gmFz8tFTRzw0Wl98oYQGpvGcNWaP5Mnd6yCaHTVOjio="
    assert check_password("bench-pass", stored)
    assert needs_upgrade(stored)


def test_ours_round_trip_and_need_no_upgrade() -> None:
    stored = hash_password("s3cret pass")
    assert stored.startswith("scrypt$16384$8$1$") and not needs_upgrade(stored)
    assert check_password("s3cret pass", stored) and not check_password("s3cret pass ", stored)


@pytest.mark.parametrize("stored", [
    "!", "!unusable", "", "garbage", "scrypt$1$2$3",
    "scrypt$16384$c2FsdHNhbHQ$8$1$aGFzaA==",  # Django's own scrypt layout: refused, never a crash
    "pbkdf2_sha256$abc$salt$hash", "pbkdf2_sha256$0$salt$hash", "pbkdf2_sha256$99999999999$salt$hash",
    "argon2$argon2id$v=19$m=102400,t=2,p=8$c2FsdA$aGFzaA",
])
def test_unusable_or_unknown_hashes_never_match(stored: str) -> None:
    assert not check_password("anything", stored)
