"""scripts/install --root: an idempotent staged install whose unit systemd-analyze accepts."""
from __future__ import annotations

import os
import shutil
import stat
import subprocess
from pathlib import Path

import pytest

from server.config import PROJECT_DIR, load_config

INSTALL = PROJECT_DIR / "scripts" / "install"
UNIT = "etc/systemd/system/dashboard-server.service"


def install(root: Path) -> str:
    result = subprocess.run([str(INSTALL), "--root", str(root), "--no-venv"], capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_install_twice_keeps_the_admins_files(tmp_path: Path) -> None:
    root = tmp_path / "root"
    first = install(root)
    assert "wrote" in first and "config.toml.new" not in first
    config, env = root / "etc/dashboard-server/config.toml", root / "etc/dashboard-server/env"
    assert stat.S_IMODE(env.stat().st_mode) == 0o600
    assert (root / UNIT).read_text() == (PROJECT_DIR / "scripts/dashboard-server.service").read_text()
    assert sorted(p.name for p in (root / "opt/dashboard-server/sql").glob("*.sql")) == \
        sorted(p.name for p in (PROJECT_DIR / "sql").glob("*.sql"))
    # The shipped config is a valid one, and says where the state lives.
    assert load_config(config, environ={}).data_dir == Path("/var/lib/dashboard-server")

    assert install(root) == f"install: staged under {root}\n"  # nothing to say the second time
    assert not (root / "etc/dashboard-server/config.toml.new").exists()

    config.write_text('port = 9000\n')
    env.write_text("DASHBOARD_DATABASE_URL=postgresql://dash:secret@db/dashboard\n")
    again = install(root)
    assert config.read_text() == "port = 9000\n" and "secret" in env.read_text()
    assert "config.toml.new" in again
    assert (root / "etc/dashboard-server/config.toml.new").read_text() == \
        (PROJECT_DIR / "scripts/config.toml").read_text()


def test_install_refuses_no_venv_on_the_real_root() -> None:
    result = subprocess.run([str(INSTALL), "--no-venv"], capture_output=True, text=True, timeout=30)
    assert result.returncode == 2 and "--no-venv only goes with --root" in result.stderr


def test_systemd_accepts_the_staged_unit(tmp_path: Path) -> None:
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not installed here")
    root = tmp_path / "root"
    install(root)
    # verify checks that ExecStart exists on the real /: point it at a staged stand-in instead.
    program = root / "opt/dashboard-server/venv/bin/dashboard-server"
    program.parent.mkdir(parents=True)
    program.write_text("#!/bin/sh\n")
    program.chmod(0o755)
    unit = tmp_path / "dashboard-server.service"
    unit.write_text((root / UNIT).read_text().replace("/opt/dashboard-server/venv", str(program.parents[1])))
    result = subprocess.run([analyze, "verify", "--man=no", str(unit)], capture_output=True, text=True, timeout=60,
                            env={**os.environ, "SYSTEMD_LOG_LEVEL": "warning"})
    # verify exits 0 even for unknown keys or bad values; it warns about them, so any output fails.
    assert (result.returncode, result.stdout, result.stderr) == (0, "", "")
    text = (root / UNIT).read_text()
    for line in ("Type=notify", "WatchdogSec=30", "User=dashboard-server", "NoNewPrivileges=yes",
                 "ProtectSystem=strict", "PrivateTmp=yes", "Restart=on-failure", "KillMode=mixed",
                 "EnvironmentFile=-/etc/dashboard-server/env", "StateDirectory=dashboard-server",
                 "ExecStart=/opt/dashboard-server/venv/bin/dashboard-server --config "
                 "/etc/dashboard-server/config.toml serve"):
        assert f"\n{line}\n" in text, line
