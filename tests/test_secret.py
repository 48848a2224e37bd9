"""The server secret: from configuration, or generated once into the data directory with mode 0600."""
from __future__ import annotations

import base64
import stat
from pathlib import Path

import pytest

from server.accounts.secret import Sealer, SecretError, load_secret
from server.config import Config, load_config


def test_generated_once_into_the_data_directory_with_mode_0600(tmp_path: Path) -> None:
    config = Config(data_dir=tmp_path / "var")
    secret = load_secret(config)
    key_file = tmp_path / "var" / "session.key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert base64.b64decode(key_file.read_text()) == secret and len(secret) == 32
    assert load_secret(config) == secret  # kept, not regenerated
    assert sorted(path.name for path in key_file.parent.iterdir()) == ["session.key"]  # no temporary left


def test_configuration_wins_and_is_never_shown(tmp_path: Path) -> None:
    key = base64.b64encode(b"k" * 32).decode()
    config = load_config(environ={"DASHBOARD_SESSION_KEY": key, "DASHBOARD_DATA_DIR": str(tmp_path)})
    assert load_secret(config) == b"k" * 32 and not (tmp_path / "session.key").exists()
    assert key not in repr(config)
    short = base64.b64encode(b"short").decode()
    with pytest.raises(SecretError) as refusal:
        load_secret(Config(session_key=short))
    assert str(refusal.value) == "DASHBOARD_SESSION_KEY must encode 32 bytes, not 5" and short not in str(refusal.value)


def test_sealed_tokens_open_only_under_the_same_secret() -> None:
    sealed = Sealer(b"a" * 32).seal("9944b09199c62bcf9418ad846dd0e4bbdfc6ee4b")
    assert Sealer(b"a" * 32).unseal(sealed) == "9944b09199c62bcf9418ad846dd0e4bbdfc6ee4b"
    assert Sealer(b"b" * 32).unseal(sealed) is None and Sealer(b"a" * 32).unseal(None) is None
