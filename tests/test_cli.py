"""The dashboard-server command line, run as a real process against a real database."""
from __future__ import annotations

import re
import signal
import subprocess
from typing import Iterator

import aiohttp
import psycopg2
import pytest

from tests.conftest import TEST_SECRET, Socket, ok
from tests.pg import cloned_database
from tests.processes import ServerProcess, free_port, server_command, server_environment

ALL_MIGRATIONS = ("0001_users, 0002_patients, 0003_roles, 0004_changes, 0005_vitals, 0006_accounts, 0007_validation, "
                  "0008_news2_kinds, 0009_idempotency, 0010_listener_marks")


@pytest.fixture
def empty_url(pg_server: str) -> Iterator[str]:
    with cloned_database(pg_server, "template0") as url:
        yield url


def cli_env(url: str, env: dict[str, str] | None = None) -> dict[str, str]:
    # A fixed secret, so that no command writes a session.key file into the checkout.
    return server_environment(url, {"DASHBOARD_SESSION_KEY": TEST_SECRET, **(env or {})})


def run(url: str, *args: str, stdin: str = "", env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """One command (not `serve`: tests.processes.ServerProcess starts the server), to its end; url "" is
    the embedded database of DASHBOARD_DATA_DIR (in env)."""
    return subprocess.run(server_command(*args), input=stdin, capture_output=True, text=True,
                          env=cli_env(url, env), timeout=120)


def query(url: str, sql: str) -> list[tuple]:
    with psycopg2.connect(url) as connection, connection.cursor() as cursor:
        cursor.execute(sql)
        rows = cursor.fetchall()
    connection.close()
    return rows


def one_line_error(result: subprocess.CompletedProcess[str], text: str) -> None:
    assert result.returncode == 1, result
    assert result.stderr.count("\n") == 1 and result.stderr.startswith("dashboard-server: "), result.stderr
    assert text in result.stderr
    assert result.stdout == ""


def test_migrate_applies_in_order_once(empty_url: str) -> None:
    first = run(empty_url, "migrate")
    assert first.returncode == 0 and first.stdout == f"applied {ALL_MIGRATIONS}\n"
    again = run(empty_url, "migrate")
    assert again.returncode == 0 and again.stdout == "database is up to date\n"
    assert query(empty_url, "SELECT version, name FROM schema_migrations ORDER BY version") == [
        (1, "users"), (2, "patients"), (3, "roles"), (4, "changes"), (5, "vitals"), (6, "accounts"), (7, "validation"),
        (8, "news2_kinds"), (9, "idempotency"), (10, "listener_marks")]


def test_two_migrations_at_once_are_serialized(empty_url: str) -> None:
    env = cli_env(empty_url)
    processes = [subprocess.Popen(server_command("migrate"), env=env, text=True,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE) for _ in range(3)]
    outputs = sorted(process.communicate(timeout=60)[0] for process in processes)
    assert [process.returncode for process in processes] == [0, 0, 0]
    assert outputs == [f"applied {ALL_MIGRATIONS}\n", "database is up to date\n", "database is up to date\n"]


def test_users_and_tokens(database_url: str) -> None:
    created = run(database_url, "createuser", "sister.mary", "--password-stdin", stdin="s3cret pass\n")
    assert created.returncode == 0, created.stderr
    one_line_error(run(database_url, "createuser", "sister.mary", "--password-stdin", stdin="other pass\n"),
                   "already exists")
    one_line_error(run(database_url, "createuser", "bad name!", stdin=""), "username")
    one_line_error(run(database_url, "createuser", "blank", "--password-stdin", stdin="\n"), "blank")
    first, second = run(database_url, "token", "sister.mary"), run(database_url, "token", "sister.mary")
    assert re.fullmatch(r"[0-9a-f]{40}\n", first.stdout) and re.fullmatch(r"[0-9a-f]{40}\n", second.stdout)
    assert first.stdout != second.stdout and first.stderr == ""
    one_line_error(run(database_url, "token", "nobody"), "no user 'nobody'")
    # Only a slow salted hash and a digest are stored; the old token is revoked.
    (password,), = query(database_url, "SELECT password FROM users WHERE username = 'sister.mary'")
    assert password.startswith("scrypt$") and "s3cret" not in password
    digests = query(database_url, "SELECT encode(digest, 'hex') FROM tokens")
    assert len(digests) == 1 and second.stdout.strip() not in digests[0][0]


def test_a_user_without_a_password(database_url: str) -> None:
    assert run(database_url, "createuser", "kiosk").returncode == 0  # stdin is not a terminal
    assert query(database_url, "SELECT password FROM users") == [("!",)]


def test_unreachable_database(tmp_path) -> None:
    url = f"postgresql://postgres@127.0.0.1:{free_port()}/nothing"  # a port nothing listens on
    for args in (("migrate",), ("token", "x"), ("createuser", "x"), ("serve", "--port", "1")):
        one_line_error(run(url, *args), "database unreachable")


def test_serve_refuses_an_unmigrated_database(empty_url: str) -> None:
    one_line_error(run(empty_url, "serve", "--port", "1"), "run 'dashboard-server migrate'")


async def test_serve_answers_and_shuts_down_with_1001(database_url: str) -> None:
    token = run(database_url, "createuser", "n") and run(database_url, "token", "n").stdout.strip()
    server = await ServerProcess.start(database_url)
    try:
        first = await server.next_line(r"^", timeout=30)  # the very first line it writes
        assert "serving ws://127.0.0.1:" in first.string, server.log
        async with aiohttp.ClientSession() as session:
            await server.wait_serving(session)
            ws = await session.ws_connect(f"{server.http}/ws/?token={token}")
            assert await Socket(ws).request("list") == ok([], "list")
            server.process.send_signal(signal.SIGTERM)
            closing = await ws.receive(timeout=10)
            assert closing.type == aiohttp.WSMsgType.CLOSE and ws.close_code == 1001
            await ws.close()
        assert await server.exited(15) == 0
        assert token not in server.log and '"GET /ws/"' in server.log
    finally:
        await server.kill()


def test_roles_passwd_deactivate_and_users(database_url: str) -> None:
    assert run(database_url, "createuser", "reader", "--role", "viewer", "--password-stdin", stdin="page one of the chart\n").stderr == (
        "created user reader (viewer)\n")
    assert run(database_url, "createuser", "writer").stderr == "created user writer (editor)\n"  # the default
    refused = run(database_url, "createuser", "x", "--role", "admin")
    assert refused.returncode == 2 and "invalid choice: 'admin'" in refused.stderr
    run(database_url, "token", "writer")
    (before,), = query(database_url, "SELECT password FROM users WHERE username = 'reader'")
    changed = run(database_url, "passwd", "reader", "--password-stdin", stdin="page two of the chart\n")
    assert changed.returncode == 0 and changed.stderr == "password changed for reader; its login sessions ended\n"
    (after,), = query(database_url, "SELECT password FROM users WHERE username = 'reader'")
    assert after.startswith("scrypt$") and after != before
    one_line_error(run(database_url, "passwd", "nobody", "--password-stdin", stdin="long enough\n"),
                   "no user 'nobody'")
    off = run(database_url, "deactivate", "writer")
    assert off.returncode == 0 and off.stderr == (
        "deactivated writer: token revoked, sessions ended, open sockets close at once\n")
    one_line_error(run(database_url, "deactivate", "nobody"), "no user 'nobody'")
    listing = run(database_url, "users")
    assert listing.returncode == 0
    assert [line.split("\t")[:5] for line in listing.stdout.splitlines()] == [
        ["username", "role", "active", "password", "token"],
        ["reader", "viewer", "yes", "yes", "no"],
        ["writer", "editor", "no", "no", "no"]]


def test_the_password_policy_says_what_is_wrong(database_url: str) -> None:
    for password, messages in [
        ("short", ["This password is too short. It must contain at least 8 characters."]),
        ("12345678", ["This password is too common.", "This password is entirely numeric."]),
        ("94817263", ["This password is entirely numeric."]),
        ("Hospital123", ["This password is too common."]),
        ("nurse.jo 2026", ["The password is too similar to the username."]),
    ]:
        result = run(database_url, "createuser", "nurse.jo", "--password-stdin", stdin=password + "\n")
        one_line_error(result, " ".join(messages))
        one_line_error(run(database_url, "passwd", "nurse.jo", "--password-stdin", stdin=password + "\n"),
                       messages[0])
    assert query(database_url, "SELECT count(*) FROM users") == [(0,)]  # nothing was created
    assert run(database_url, "createuser", "nurse.jo", "--password-stdin", stdin="night shift on 4b\n").returncode == 0


def test_role_reactivate_and_delete_without_sql(database_url: str) -> None:
    assert run(database_url, "createuser", "ed").returncode == 0
    (ed,), = query(database_url, "SELECT id FROM users WHERE username = 'ed'")
    assert run(database_url, "token", "ed").returncode == 0
    changed = run(database_url, "role", "ed", "viewer")
    assert changed.returncode == 0 and changed.stderr == (
        "ed is now a viewer; its open sockets close now and reconnect with it\n")
    one_line_error(run(database_url, "role", "nobody", "editor"), "no user 'nobody'")
    assert run(database_url, "role", "ed", "admin").returncode == 2  # argparse: invalid choice
    assert run(database_url, "deactivate", "ed").returncode == 0
    back = run(database_url, "reactivate", "ed")
    assert back.returncode == 0 and back.stderr.startswith("reactivated ed: it may log in again; its old token")
    one_line_error(run(database_url, "reactivate", "nobody"), "no user 'nobody'")
    assert [line.split("\t")[:5] for line in run(database_url, "users").stdout.splitlines()[1:]] == [
        ["ed", "viewer", "yes", "no", "no"]]  # active again; the token revoked by deactivate stays revoked

    # A change ed made, then ed deleted: the history still names ed.
    with psycopg2.connect(database_url) as connection, connection.cursor() as cursor:
        cursor.execute("SELECT set_config('dashboard.user_id', %s, true)", (str(ed),))
        cursor.execute("INSERT INTO patients (first_name, last_name, admission_date) "
                       "VALUES ('Ada', 'Lovelace', now()) RETURNING id")
        (patient,), = cursor.fetchall()
    connection.close()
    assert run(database_url, "token", "ed").returncode == 0
    one_line_error(run(database_url, "deleteuser", "ed"), "add --yes")
    deleted = run(database_url, "deleteuser", "ed", "--yes")
    assert deleted.returncode == 0 and deleted.stderr == (
        "deleted ed: its token and sessions are gone; history still names it\n")
    one_line_error(run(database_url, "deleteuser", "ed", "--yes"), "no user 'ed'")
    assert run(database_url, "users").stdout.splitlines()[1:] == []
    assert query(database_url, "SELECT count(*) FROM tokens") == [(0,)]
    history = run(database_url, "history", "patients", str(patient))
    assert history.returncode == 0 and re.fullmatch(r"\S+ ed create first_name=\"Ada\".*\n", history.stdout)
