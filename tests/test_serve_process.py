"""`serve` as a real process: no secret in its logs, in-flight replies before the 1001 close, TLS."""
from __future__ import annotations

import asyncio
import contextlib
import datetime
import signal
import socket
import ssl
from pathlib import Path
from typing import AsyncIterator

import aiohttp
import psycopg2
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.conftest import Socket, ok
from tests.processes import ServerProcess, raw_request
from tests.test_cli import run

PASSWORD = "correct horse battery staple"


class Served:
    """A running `python -m server serve` (tests.processes.ServerProcess), its URLs, what it printed."""

    def __init__(self, server: ServerProcess, scheme: str) -> None:
        self.server, self.port, self.scheme = server, server.port, scheme

    def url(self, path: str) -> str:
        return f"{self.scheme}://127.0.0.1:{self.port}{path}"

    async def stop(self) -> tuple[int, str]:
        """SIGTERM; the exit status and everything it printed (stdout and stderr)."""
        status = await self.server.stop(signal.SIGTERM)
        return status, self.server.log


@contextlib.asynccontextmanager
async def serving(database_url: str, *args: str, **env: str) -> AsyncIterator[Served]:
    server = await ServerProcess.start(database_url, *args, env=env)
    served = Served(server, "https" if "--certfile" in args else "http")
    try:
        if served.scheme == "http":
            async with aiohttp.ClientSession() as session:
                await server.wait_serving(session)
        else:  # /readyz is asked over plain http: over TLS, until the port listens (bounded)
            await until(lambda: listening(server.port) or server.process.returncode is not None, tries=600)
            assert server.process.returncode is None, server.log
        yield served
    finally:
        await server.kill()


def user_with_token(database_url: str, name: str = "nurse") -> str:
    assert run(database_url, "createuser", name, "--password-stdin", stdin=PASSWORD + "\n").returncode == 0
    return run(database_url, "token", name).stdout.strip()


async def test_no_token_and_no_password_ever_reaches_the_logs(database_url: str) -> None:
    token = user_with_token(database_url)
    bad_token = "0123456789abcdef0123456789abcdef01234567"
    async with serving(database_url, DASHBOARD_REQUEST_BURST="3", DASHBOARD_REQUESTS_PER_SECOND="0.01") as served, \
            aiohttp.ClientSession() as http:
        async with http.ws_connect(served.url(f"/ws/?token={token}")) as ws:
            replies = [await Socket(ws).request("list", request_id=n) for n in range(5)]
            assert [reply["response_status"] for reply in replies] == [200, 200, 200, 429, 429]
        async with http.ws_connect(served.url("/ws/"), headers={"Authorization": f"Token {token}"}) as ws:
            assert await Socket(ws).request("list") == ok([], "list")
        for username, password in (("nurse", PASSWORD), ("nurse", "wrong " + PASSWORD), ("nobody", PASSWORD)):
            await http.post(served.url("/api/auth/login/"), json={"username": username, "password": password})
        got = await http.post(served.url("/api/auth/token/"), data={"username": "nurse", "password": PASSWORD})
        assert (await got.json()) == {"token": token}
        for headers in ({"Authorization": f"Token {bad_token}"}, {"Authorization": f"Bearer {token}x"}):
            assert (await http.get(served.url("/api/patients/"), headers=headers)).status == 401
        assert (await http.get(served.url(f"/api/patients/?token={bad_token}"))).status in (200, 401, 403)
        rename(database_url)  # then an unexpected fault: a 500, logged with its traceback
        assert (await http.get(served.url("/api/patients/"), headers={"Authorization": f"Token {token}"})).status == 500
        # aiohttp's own error logs quote the raw request: an overlong line, an overlong header.
        assert (await raw_request(served.port, f"GET /ws/?token={token}&pad={'x' * 9000} HTTP/1.1\r\n\r\n".encode())
                )[:10] in (b"HTTP/1.0 4", b"HTTP/1.1 4")
        header = f"GET /api/auth/me/ HTTP/1.1\r\nAuthorization: Token {token} {'x' * 9000}\r\n\r\n"
        assert (await raw_request(served.port, header.encode()))[:10] in (b"HTTP/1.0 4", b"HTTP/1.1 4")
        status, log = await served.stop()
    assert status == 0
    for secret in (token, bad_token, PASSWORD, token[:20]):
        assert secret not in log
    # The malformed requests ran aiohttp's error path (one line each), a 500 its traceback: the token redacted.
    assert "bad request from a client" in log and "Traceback" in log and "[redacted]" in log


def rename(database_url: str) -> None:
    connection = psycopg2.connect(database_url)
    with connection, connection.cursor() as cursor:
        cursor.execute("ALTER TABLE patients RENAME COLUMN last_name TO surname")
    connection.close()


async def test_sigterm_lets_the_request_in_flight_finish_then_closes_1001(database_url: str) -> None:
    token = user_with_token(database_url)
    async with serving(database_url) as served, aiohttp.ClientSession() as http:
        ws = await http.ws_connect(served.url(f"/ws/?token={token}"))
        blocker = psycopg2.connect(database_url)
        try:
            with blocker.cursor() as cursor:
                cursor.execute("LOCK TABLE patients IN ACCESS EXCLUSIVE MODE")  # the list will wait on it
            await Socket(ws).send({"stream": "patients", "payload": {"action": "list", "request_id": 1}})
            await until(lambda: waiting_on_lock(database_url))
            served.server.process.send_signal(signal.SIGTERM)
            await until(lambda: not listening(served.port))  # shutdown has begun
        finally:
            blocker.rollback()  # the query in flight goes on
            blocker.close()
        reply = await ws.receive(timeout=10)
        assert reply.json() == {"stream": "patients", "payload": ok([], "list")}
        closing = await ws.receive(timeout=10)
        assert closing.type == aiohttp.WSMsgType.CLOSE and ws.close_code == 1001
        await ws.close()
        assert await served.server.exited(10) == 0


async def until(condition, tries: int = 200) -> None:
    for _ in range(tries):  # a state we cannot await, polled (bounded)
        if await asyncio.to_thread(condition):
            return
        await asyncio.sleep(0.05)
    raise AssertionError("condition never held")


def waiting_on_lock(database_url: str) -> bool:
    connection = psycopg2.connect(database_url)
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                           "AND datname = current_database()")
            return cursor.fetchone()[0] > 0
    finally:
        connection.close()


def listening(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) == 0


def self_signed(directory: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1, made now: no key is ever committed."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.timezone.utc)
    certificate = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
                   .serial_number(x509.random_serial_number())
                   .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=1))
                   .add_extension(x509.SubjectAlternativeName([x509.IPAddress(__import__("ipaddress").ip_address("127.0.0.1"))]),
                                  critical=False)
                   .sign(key, hashes.SHA256()))
    certfile, keyfile = directory / "cert.pem", directory / "key.pem"
    certfile.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    keyfile.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                          serialization.NoEncryption()))
    return certfile, keyfile


async def test_tls_serves_wss_and_https(database_url: str, tmp_path: Path) -> None:
    token = user_with_token(database_url)
    certfile, keyfile = self_signed(tmp_path)
    trusting = ssl.create_default_context(cafile=str(certfile))
    async with serving(database_url, "--certfile", str(certfile), "--keyfile", str(keyfile)) as served, \
            aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=trusting)) as https:
        me = await https.get(served.url("/api/auth/me/"))
        assert (me.status, await me.json()) == (401, {"detail": "Authentication credentials were not provided."})
        async with https.ws_connect(f"wss://127.0.0.1:{served.port}/ws/?token={token}") as ws:
            assert await Socket(ws).request("list") == ok([], "list")
        with pytest.raises(aiohttp.ClientError):  # plain http on the TLS port gets nowhere
            await https.get(f"http://127.0.0.1:{served.port}/api/auth/me/")
        status, log = await served.stop()
    assert status == 0 and f"serving wss://127.0.0.1:{served.port}/ws/" in log
