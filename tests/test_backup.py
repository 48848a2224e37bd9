"""`backup FILE` while serving, `restore FILE` into a fresh data directory: the same patients, users and tokens."""
from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path
from typing import Iterator

import aiohttp
import pytest

from server.store import pginstall
from tests.conftest import ADA, TEST_SECRET
from tests.processes import ServerProcess, ws_request
from tests.test_cli import one_line_error, run

pytestmark = pytest.mark.embedded


@pytest.fixture
def fresh_data_dir() -> Iterator[Path]:
    """A data directory the embedded cluster's system user can traverse; its cluster removed afterwards."""
    path = Path(tempfile.mkdtemp(prefix="test-restore-"))
    path.chmod(0o755)
    yield path
    link = path / "pgdata"
    if link.is_symlink() and link.resolve().parent.parent == pginstall.SHARED_DIR:
        shutil.rmtree(link.resolve().parent, ignore_errors=True)
    shutil.rmtree(path, ignore_errors=True)


def embedded(data_dir: Path) -> dict[str, str]:
    return {"DASHBOARD_DATA_DIR": str(data_dir), "DASHBOARD_SESSION_KEY": TEST_SECRET}


async def patients(server: ServerProcess, token: str) -> list[dict]:
    async with aiohttp.ClientSession(headers={"Authorization": f"Token {token}"}) as session:
        async with session.get(f"{server.http}/api/patients/") as response:
            assert response.status == 200
            return await response.json()  # unpaginated: a plain list, as DRF without a paginator


async def test_backup_while_serving_then_restore_into_a_fresh_data_directory(
        database_url: str, tmp_path: Path, fresh_data_dir: Path) -> None:
    assert run(database_url, "createuser", "sister.mary", "--password-stdin", stdin="night shift on 4b\n").returncode == 0
    token = run(database_url, "token", "sister.mary").stdout.strip()
    source = await ServerProcess.start(database_url, "--workers", "1")
    try:
        async with aiohttp.ClientSession(headers={"Authorization": f"Token {token}"}) as session:
            await source.wait_serving(session)
            ws = await session.ws_connect(f"{source.http}/ws/?token={token}")
            assert (await ws_request(ws, "subscribe", request_id="all"))["response_status"] == 201
            for name in ("Ada", "Grace"):
                async with session.post(f"{source.http}/api/patients/", json={**ADA, "first_name": name}) as made:
                    assert made.status == 201
                cursor = json.loads((await ws.receive(timeout=10)).data)["payload"]["cursor"]
            await ws.close()
        served = await patients(source, token)
        file = tmp_path / "ward.dump"
        done = run(database_url, "backup", str(file))  # while it serves
        assert done.returncode == 0 and done.stderr.startswith(f"backed up the database to {file} ("), done.stderr
    finally:
        await source.kill()

    target = embedded(fresh_data_dir)
    restored = run("", "restore", str(file), env=target)
    assert restored.returncode == 0, restored.stderr
    assert restored.stderr == f"restored {file}; cursors issued before it expire (clients list again)\n"
    one_line_error(run("", "restore", str(file), env=target), "the database is not empty")
    one_line_error(run("", "restore", str(tmp_path / "missing.dump"), env=target), "no backup file")

    again = await ServerProcess.start("", "--workers", "1", env=target)
    try:
        async with aiohttp.ClientSession() as session:
            await again.wait_serving(session, timeout=90)
        assert await patients(again, token) == served  # the same rows, through the same token
        async with aiohttp.ClientSession() as session:
            ws = await session.ws_connect(f"{again.http}/ws/?token={token}")
            # A cursor from before the backup: the restored data may lack what its client has, so it is
            # refused (410 expired, or, from another cluster's transaction ids, 400): the client lists again.
            late = await ws_request(ws, "subscribe", request_id="late", since=cursor)
            assert (late["response_status"], late["errors"]) in [
                (410, ["Cursor expired, list again."]), (400, [{"since": ["Not a valid cursor."]}])], late
            await ws.close()
    finally:
        await again.kill()
    users = run("", "users", env=target)
    assert [line.split("\t")[:5] for line in users.stdout.splitlines()[1:]] == [
        ["sister.mary", "editor", "yes", "yes", "yes"]]
    history = run("", "history", "patients", str(served[0]["id"]), env=target)
    assert history.returncode == 0 and " sister.mary create " in history.stdout
