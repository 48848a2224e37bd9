"""Offline by design: scripts/run restarts installing nothing; a wheelhouse installs with no index at all."""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from server.config import PROJECT_DIR
from tests.conftest import TEST_SECRET
from tests.processes import ServerPopen

# What a checkout needs for `pip install -e .` and for scripts/run.
CHECKOUT = ("server", "schemas", "sql", "setup.cfg", "pyproject.toml", "README.md")


def fake_checkout(root: Path) -> Path:
    """scripts/run beside a .venv whose python refuses pip (a restart must not call it) and whose
    dashboard-server is this interpreter's; setup.cfg as installed, so nothing needs installing."""
    (root / "scripts").mkdir(parents=True)
    shutil.copy(PROJECT_DIR / "scripts/run", root / "scripts/run")
    shutil.copy(PROJECT_DIR / "setup.cfg", root / "setup.cfg")
    bin_dir = root / ".venv/bin"
    bin_dir.mkdir(parents=True)
    shutil.copy(PROJECT_DIR / "setup.cfg", root / ".venv/.installed-setup.cfg")
    (bin_dir / "python").write_text(
        f'#!/bin/sh\n[ "$1 $2" = "-m pip" ] && {{ echo "pip $*" >> "{root}/pip-calls"; exit 1; }}\n'
        f'exec {sys.executable} "$@"\n')
    (bin_dir / "dashboard-server").write_text(f'#!/bin/sh\nexec {sys.executable} -m server "$@"\n')
    for program in bin_dir.iterdir():
        program.chmod(0o755)
    return root / "scripts/run"


def test_run_passes_its_flags_and_prints_the_urls_it_serves(database_url: str, tmp_path: Path) -> None:
    script = fake_checkout(tmp_path / "checkout")
    env = {"DASHBOARD_SESSION_KEY": TEST_SECRET, "DASHBOARD_PORT": "8080", "DASHBOARD_FIRST_USER": "ward.admin"}
    server = ServerPopen.run_script(script, database_url, "--workers", "1", log_path=tmp_path / "run.log", env=env)
    try:
        server.wait_serving()
        first = server.log
        assert server.stop() == 0
        server.restart()
        server.wait_serving()
    finally:
        server.stop()
    port = server.port
    urls = re.findall(r"(?:https?|wss?)://[^\s\"/]+", server.log)
    assert urls and set(urls) == {f"http://127.0.0.1:{port}", f"ws://127.0.0.1:{port}"}, server.log
    assert f"The dashboard:  http://127.0.0.1:{port}/  (sign in as ward.admin)" in first
    assert f'wscat -c "ws://127.0.0.1:{port}/ws/?token=' in first
    assert f"curl -H \"Authorization: Token " in first and f"http://127.0.0.1:{port}/api/patients/" in first
    assert f"The dashboard: http://127.0.0.1:{port}/" in server.log[len(first):]  # the restart says it too
    assert not (tmp_path / "checkout/pip-calls").exists()  # neither start installed anything


def isolated_pip(**extra: str) -> dict[str, str]:
    """pip with none of this machine's configuration (its index, its find-links) and no index at all."""
    env = {key: value for key, value in os.environ.items() if not key.startswith(("PIP_", "VIRTUAL_ENV"))}
    return {**env, "PIP_CONFIG_FILE": os.devnull, "PIP_NO_INDEX": "1", "PIP_DISABLE_PIP_VERSION_CHECK": "1",
            **extra}


@pytest.mark.wheelhouse
def test_a_wheelhouse_installs_and_restarts_with_no_index(database_url: str, tmp_path: Path) -> None:
    wheels = tmp_path / "wheels"
    built = subprocess.run([str(PROJECT_DIR / "scripts/wheelhouse"), str(wheels)], capture_output=True,
                           text=True, timeout=600)
    assert built.returncode == 0, built.stderr
    names = {path.name.split("-")[0].lower() for path in wheels.glob("*.whl")}
    assert {"dashboard_server", "pgserver", "aiohttp", "setuptools"} <= names

    # A closed machine: a copy of the checkout, a fresh venv, pip told of no index and no wheels.
    checkout = tmp_path / "checkout"
    for name in CHECKOUT:
        source = PROJECT_DIR / name
        copy = shutil.copytree if source.is_dir() else shutil.copy
        copy(source, checkout / name, **({"ignore": shutil.ignore_patterns("__pycache__")} if source.is_dir() else {}))
    (checkout / "scripts").mkdir()
    shutil.copy(PROJECT_DIR / "scripts/run", checkout / "scripts/run")
    env = {"DASHBOARD_SESSION_KEY": TEST_SECRET, "PYTHON": sys.executable}
    first = ServerPopen.run_script(checkout / "scripts/run", database_url, "--workers", "1",
                                   log_path=tmp_path / "first.log", env={**isolated_pip(WHEELHOUSE=str(wheels)), **env})
    try:
        first.wait_serving(timeout=300)
    finally:
        assert first.stop() == 0, first.log
    stamp = (checkout / ".venv/.installed-setup.cfg").stat().st_mtime_ns
    # The restart: no wheelhouse and no index, so any install would fail.
    again = ServerPopen.run_script(checkout / "scripts/run", database_url, "--workers", "1",
                                   log_path=tmp_path / "again.log", env={**isolated_pip(), **env})
    try:
        again.wait_serving()
    finally:
        assert again.stop() == 0, again.log
    assert (checkout / ".venv/.installed-setup.cfg").stat().st_mtime_ns == stamp

    # scripts/install from the same wheelhouse (a staged root: the venv and pip, no system changes),
    # then again with no wheelhouse and no index: the installed version is the checkout's, nothing to do.
    root = tmp_path / "root"
    install = [str(PROJECT_DIR / "scripts/install"), "--root", str(root)]
    first_install = subprocess.run([*install, "--wheelhouse", str(wheels)], capture_output=True, text=True,
                                   timeout=600, env={**isolated_pip(), "PYTHON": sys.executable})
    assert first_install.returncode == 0, first_install.stderr
    assert f"installed dashboard-server from {wheels}" in first_install.stdout
    second_install = subprocess.run(install, capture_output=True, text=True, timeout=120,
                                    env={**isolated_pip(), "PYTHON": sys.executable})
    assert second_install.returncode == 0, second_install.stderr
    assert second_install.stdout == f"install: staged under {root}\n"  # no pip: nothing installed
    served = subprocess.run([str(root / "opt/dashboard-server/venv/bin/dashboard-server"), "--help"],
                            capture_output=True, text=True, timeout=60)
    assert served.returncode == 0 and "backup" in served.stdout
    helped = subprocess.run([str(checkout / ".venv/bin/dashboard-server"), "--help"], capture_output=True, text=True,
                            timeout=60)
    assert helped.returncode == 0 and "createuser" in helped.stdout
