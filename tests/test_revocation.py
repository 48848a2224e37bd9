"""Instant revocation (issue 13): a changed credential closes the affected sockets of every server at once.

Two `serve` processes on one database, with the periodic re-check of open sockets set to an hour, so
only the notification the change sends when it commits can close a socket within the second allowed.
"""
from __future__ import annotations

import asyncio
import contextlib
from typing import AsyncIterator

import aiohttp
from aiohttp import WSMsgType

from tests.conftest import Socket, ok
from tests.processes import ServerProcess
from tests.test_cli import run

SAFETY_NET_OFF = {"DASHBOARD_CREDENTIAL_CHECK_SECONDS": "3600"}
PASSWORD = "Correct-Horse-Battery-9"


@contextlib.asynccontextmanager
async def two_servers(database_url: str, session: aiohttp.ClientSession) -> AsyncIterator[list[ServerProcess]]:
    servers = [await ServerProcess.start(database_url, "--workers", "1", env=SAFETY_NET_OFF) for _ in range(2)]
    try:
        for server in servers:
            await server.wait_serving(session)
        yield servers
        for server in servers:
            assert await server.stop() == 0, server.log
    finally:
        for server in servers:
            await server.kill()


async def cli(database_url: str, *args: str, stdin: str = "") -> str:
    """A command as an operator runs it, to its end (its change has committed when it returns)."""
    result = await asyncio.to_thread(run, database_url, *args, stdin=stdin)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


async def user_with_token(database_url: str, name: str) -> str:
    await cli(database_url, "createuser", name, "--password-stdin", stdin=PASSWORD + "\n")
    return await cli(database_url, "token", name)


async def sockets(session: aiohttp.ClientSession, servers: list[ServerProcess], **auth: str) -> list[Socket]:
    """One socket on each server, answering a request (so it is open and counted before anything changes)."""
    opened = []
    for server in servers:
        query = f"?token={auth['token']}" if "token" in auth else ""
        headers = {"Cookie": f"dashboard_session={auth['cookie']}"} if "cookie" in auth else None
        ws = Socket(await session.ws_connect(f"{server.http}/ws/{query}", headers=headers))
        assert await ws.request("list") == ok([], "list")
        opened.append(ws)
    return opened


async def closed_within_a_second(ws: Socket) -> None:
    message = await ws.ws.receive(timeout=1)
    assert (message.type, message.data, message.extra) == (WSMsgType.CLOSE, 4401, "Credentials revoked"), message


async def still_open(ws: Socket) -> None:
    assert await ws.request("list", request_id="still") == ok([], "list", request_id="still")


async def test_token_role_passwd_deactivate_deleteuser_close_sockets_on_every_server(database_url: str) -> None:
    commands = {"tok": ("token", "tok"), "rol": ("role", "rol", "viewer"), "dea": ("deactivate", "dea"),
                "del": ("deleteuser", "del", "--yes")}
    tokens = {name: await user_with_token(database_url, name) for name in [*commands, "pas", "bystander"]}
    async with aiohttp.ClientSession() as session, two_servers(database_url, session) as servers:
        logins = []
        for server in servers:  # a login session on each server
            async with session.post(f"{server.http}/api/auth/login/",
                                    json={"username": "pas", "password": PASSWORD}) as response:
                assert response.status == 200, await response.text()
                logins.append(response.cookies["dashboard_session"].value)
        by_cookie = [(await sockets(session, [server], cookie=cookie))[0] for server, cookie in zip(servers, logins)]
        by_token = {name: await sockets(session, servers, token=token) for name, token in tokens.items()}
        for name, command in commands.items():
            await cli(database_url, *command)
            for ws in by_token[name]:
                await closed_within_a_second(ws)
        # passwd ends the user's login sessions (on both servers); its token sockets stay.
        await cli(database_url, "passwd", "pas", "--password-stdin", stdin="Another-Horse-Battery-7\n")
        for ws in by_cookie:
            await closed_within_a_second(ws)
        for ws in [*by_token["pas"], *by_token["bystander"]]:
            await still_open(ws)
            await ws.ws.close()


async def test_logout_closes_that_sessions_sockets_only(database_url: str) -> None:
    token = await user_with_token(database_url, "ward")
    async with aiohttp.ClientSession() as session, two_servers(database_url, session) as servers:
        cookies = []
        for _ in range(2):  # two logins: two sessions of one user
            async with session.post(f"{servers[0].http}/api/auth/login/",
                                    json={"username": "ward", "password": PASSWORD}) as response:
                assert response.status == 200, await response.text()
                cookies.append(response.cookies["dashboard_session"].value)
        ended, kept = await sockets(session, servers, cookie=cookies[0]), await sockets(session, servers, cookie=cookies[1])
        by_token = await sockets(session, servers, token=token)
        async with session.post(f"{servers[0].http}/api/auth/logout/",
                                headers={"Cookie": f"dashboard_session={cookies[0]}"}) as response:
            assert response.status == 204
        for ws in ended:
            await closed_within_a_second(ws)
        for ws in [*kept, *by_token]:
            await still_open(ws)
            await ws.ws.close()
