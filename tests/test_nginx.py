"""The documented nginx site, run by a real nginx in front of a real server: TLS, WebSocket upgrade, /healthz."""
from __future__ import annotations

import asyncio
import logging
import os
import re
import shutil
import ssl
import subprocess
from pathlib import Path
from typing import Iterator

import aiohttp
import pytest
from aiohttp.test_utils import TestClient

from server.accounts.users import create_user
from server.config import PROJECT_DIR, Config, load_config
from server.web.keys import DB
from tests.conftest import TEST_SECRET, ok
from tests.processes import free_port, ws_request

SITE = PROJECT_DIR / "scripts" / "nginx" / "dashboard-server.conf"
DEPLOY = PROJECT_DIR / "docs" / "deploy.md"


@pytest.fixture
def config() -> Config:
    """The shipped config.toml's allowed_hosts and trusted_proxies: this nginx is the trusted proxy."""
    shipped = load_config(PROJECT_DIR / "scripts" / "config.toml", {})
    return Config(db_timeout_seconds=3.0, session_key=TEST_SECRET, allowed_hosts=shipped.allowed_hosts,
                  trusted_proxies=shipped.trusted_proxies)


def test_the_deploy_guide_shows_exactly_the_tested_site() -> None:
    blocks = re.findall(r"```nginx\n(.*?)```", DEPLOY.read_text(), re.DOTALL)
    assert blocks and blocks[0] == SITE.read_text()


def substitute(text: str, replacements: list[tuple[str, str]]) -> str:
    """Each pattern must be in the site config: if the file changes shape, this test says so."""
    for pattern, replacement in replacements:
        text, count = re.subn(pattern, replacement, text)
        assert count, f"{pattern!r} is no longer in {SITE}"
    return text


def self_signed(directory: Path) -> tuple[Path, Path]:
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj",
                    "/CN=dashboard.example.org", "-addext", "subjectAltName=IP:127.0.0.1",
                    "-keyout", str(key), "-out", str(cert)], check=True, capture_output=True, timeout=60)
    return cert, key


@pytest.fixture
def nginx(tmp_path: Path, client: TestClient) -> Iterator[dict[str, object]]:
    binary = shutil.which("nginx") or next((p for p in ("/usr/sbin/nginx",) if os.access(p, os.X_OK)), None)
    if binary is None:
        pytest.skip("nginx is not installed (CI installs nginx-light; locally: apt-get install nginx-light)")
    if shutil.which("openssl") is None:
        pytest.skip("openssl is not installed: no certificate for the TLS server block")
    cert, key = self_signed(tmp_path)
    http_port, tls_port = free_port(), free_port()
    site = substitute(SITE.read_text(), [
        (r"listen 80;", f"listen 127.0.0.1:{http_port};"),
        (r"listen 443 ssl;", f"listen 127.0.0.1:{tls_port} ssl;"),
        (r"\n *listen \[::\]:(80|443)[^;]*;", ""),  # no IPv6 in every container
        (r"server 127\.0\.0\.1:8080 ", f"server 127.0.0.1:{client.server.port} "),
        (r"/etc/ssl/certs/dashboard\.example\.org\.pem", str(cert)),
        (r"/etc/ssl/private/dashboard\.example\.org\.key", str(key)),
        (r"/var/log/nginx/dashboard-server\.access\.log", str(tmp_path / "access.log")),
    ])
    (tmp_path / "site.conf").write_text(site)
    temp_paths = "".join(f"    {kind}_temp_path {tmp_path}/{kind};\n"
                         for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
    (tmp_path / "nginx.conf").write_text(
        ("user root;\n" if os.geteuid() == 0 else "")  # workers must read this test's private tmp dir
        + f"daemon off;\nworker_processes 1;\npid {tmp_path}/nginx.pid;\nerror_log {tmp_path}/error.log;\n"
        + "events { worker_connections 64; }\n"
        + f"http {{\n{temp_paths}    include {tmp_path}/site.conf;\n}}\n")
    process = subprocess.Popen([binary, "-p", str(tmp_path), "-e", str(tmp_path / "error.log"),
                                "-c", str(tmp_path / "nginx.conf")], stderr=subprocess.PIPE, text=True)
    try:
        yield {"http": http_port, "tls": tls_port, "cert": cert, "log": tmp_path / "access.log",
               "process": process}
    finally:
        process.terminate()
        process.wait(10)
        if process.stderr is not None:
            process.stderr.close()


async def until_listening(port: int, process: subprocess.Popen) -> None:
    for _ in range(100):
        if process.poll() is not None:
            raise AssertionError(f"nginx exited: {process.stderr.read() if process.stderr else ''}")
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.close()
            return
        except OSError:
            await asyncio.sleep(0.05)
    raise AssertionError("nginx does not listen")


async def test_websocket_round_trip_through_nginx(nginx: dict, token: str) -> None:
    await until_listening(nginx["tls"], nginx["process"])
    https = f"https://127.0.0.1:{nginx['tls']}"
    tls = ssl.create_default_context(cafile=str(nginx["cert"]))
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=tls)) as session:
        async with session.get(f"{https}/healthz") as response:
            assert (response.status, await response.text()) == (200, "ok\n")
        async with session.get(f"{https}/metrics") as response:
            assert response.status == 404  # metrics stay on the box
        async with session.ws_connect(f"{https}/ws/?token={token}") as ws:
            assert await ws_request(ws, "list") == ok([], "list")
        async with session.ws_connect(f"{https}/ws/", headers={"Authorization": f"Token {token}"}) as ws:
            assert await ws_request(ws, "list", request_id="b") == ok([], "list", request_id="b")
        async with session.get(f"{https}/ws/?token=" + "0" * 40) as refused:
            assert refused.status == 401
        async with session.get(f"http://127.0.0.1:{nginx['http']}/ws/", allow_redirects=False) as plain:
            assert plain.status == 301 and plain.headers["Location"].startswith("https://")
    log = nginx["log"].read_text()
    assert '"GET /ws/ HTTP/1.1" 101' in log and token not in log  # nginx logs the path only, too


async def test_through_nginx_the_server_sees_the_client(nginx: dict, client: TestClient, caplog) -> None:
    """The client's address (the throttle's key, the logs) and its https (the Secure cookie) come
    from nginx's X-Forwarded-For/-Proto; a Host not in allowed_hosts is refused behind nginx too."""
    caplog.set_level(logging.INFO)
    await create_user(client.app[DB], "ward", "correct horse ")
    await until_listening(nginx["tls"], nginx["process"])
    https = f"https://127.0.0.1:{nginx['tls']}"
    tls = ssl.create_default_context(cafile=str(nginx["cert"]))
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=tls)) as session:
        # nginx appends its peer (this test, on the loopback: itself a trusted address, so the claim
        # before it stands, as a hop of a trusted proxy chain would): the server walks past both.
        async with session.post(f"{https}/api/auth/login/", json={"username": "ward", "password": "correct horse "},
                                headers={"X-Forwarded-For": "203.0.113.5"}) as response:
            assert response.status == 200 and "Secure" in response.headers["Set-Cookie"]
        async with session.get(f"{https}/healthz", headers={"Host": "evil.example"}) as response:
            assert (response.status, await response.json()) == (400, {"detail": "Bad Request (400)"})
    assert "login of user 'ward' from 203.0.113.5" in caplog.text
    assert ' 203.0.113.5 "POST /api/auth/login/" 200 ' in caplog.text  # the access log
