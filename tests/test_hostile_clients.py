"""A hostile or broken client costs a bounded amount (issue 13), tried as an attacker would with a
viewer's token against a real `serve`: the worker's memory, its loop, and the socket's end."""
from __future__ import annotations

import asyncio
import base64
import os
import socket
import struct
from pathlib import Path

import aiohttp

from tests.live import sql
from tests.processes import ServerProcess, make_token, ws_request

PATIENTS = 3000           # an unpaginated list of them is ~0.6 MB of JSON
REQUESTS = 300            # before the budget, these held ~200 MB in the worker until it was closed
BUDGET = 1024 * 1024
DEADLINE_SECONDS = 3
# What else a list costs while it is built (rows, objects, its JSON) and what the allocator keeps.
SLACK = 24 * 1024 * 1024


def rss(pid: int) -> int:
    """The process's resident memory in bytes, as the kernel counts it."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError(f"no VmRSS for {pid}")


def masked_text_frame(text: str) -> bytes:
    """One client-to-server text frame (RFC 6455 §5.2, masked, under 126 bytes)."""
    payload = text.encode()
    assert len(payload) < 126
    mask = os.urandom(4)
    return bytes([0x81, 0x80 | len(payload)]) + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


async def non_reading_socket(port: int, token: str) -> socket.socket:
    """An upgraded /ws/ connection on a raw socket with a tiny receive buffer, which the test never reads."""
    loop = asyncio.get_running_loop()
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # before connecting: the window stays small
    sock.setblocking(False)
    await loop.sock_connect(sock, ("127.0.0.1", port))
    key = base64.b64encode(os.urandom(16)).decode()
    await loop.sock_sendall(sock, (f"GET /ws/?token={token} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
                                   f"Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
                                   "Sec-WebSocket-Version: 13\r\n\r\n").encode())
    head = b""
    while b"\r\n\r\n" not in head:  # the server sends nothing after its 101 until asked
        head += await asyncio.wait_for(loop.sock_recv(sock, 4096), 10)
    assert head.startswith(b"HTTP/1.1 101 "), head
    return sock


async def read_to_the_end(sock: socket.socket) -> bytes:
    """Everything the server left for this socket, until it closed or reset the connection."""
    loop, received = asyncio.get_running_loop(), b""
    try:
        while chunk := await loop.sock_recv(sock, 65536):
            received += chunk
    except ConnectionResetError:
        pass
    return received


async def test_a_client_that_asks_but_never_reads_costs_its_budget_and_is_dropped(database_url: str) -> None:
    sql(database_url, "INSERT INTO patients (first_name, last_name, admission_date) "
                      "SELECT 'Patient' || n, 'Hostile' || n, now() FROM generate_series(1, %s) AS n", (PATIENTS,))
    token = await make_token(database_url, "intruder")
    sql(database_url, "UPDATE users SET role = 'viewer' WHERE username = 'intruder'")
    server = await ServerProcess.start(database_url, "--workers", "1", env={
        "DASHBOARD_SOCKET_BUDGET_BYTES": str(BUDGET), "DASHBOARD_SEND_DEADLINE_SECONDS": str(DEADLINE_SECONDS)})
    try:
        async with aiohttp.ClientSession() as session:
            await server.wait_serving(session)
            async with session.ws_connect(f"{server.http}/ws/?token={token}") as ws:  # one read in full first:
                reply = await ws_request(ws, "list")  # the baseline includes what building one costs
                assert reply["response_status"] == 200 and len(reply["data"]) == PATIENTS
            baseline = peak = rss(server.process.pid)
            sock = await non_reading_socket(server.port, token)
            frames = b"".join(masked_text_frame(f'{{"stream":"patients","payload":{{"action":"list","request_id":{n}}}}}')
                              for n in range(REQUESTS))
            # It may never finish: the server stops reading a client it has stopped answering.
            sending = asyncio.create_task(asyncio.get_running_loop().sock_sendall(sock, frames))
            dropped = asyncio.create_task(server.next_line(r"closing a socket with \d+ bytes unsent: the client takes nothing",
                                                           timeout=DEADLINE_SECONDS + 30))
            health = 0
            while not dropped.done():  # meanwhile the loop answers, and the worker does not grow
                async with session.get(f"{server.http}/healthz") as answer:
                    assert answer.status == 200
                health += 1
                peak = max(peak, rss(server.process.pid))
                await asyncio.wait([dropped], timeout=0.1)
            await dropped
            assert health > 0
            assert peak - baseline <= BUDGET + SLACK, f"the worker grew by {(peak - baseline) / 2**20:.1f} MiB"
            # Dropped without waiting on its buffers: the connection ends (reset) while it is read only now.
            left = await asyncio.wait_for(read_to_the_end(sock), 10)
            assert len(left) < REQUESTS * 600_000
            await server.next_line(r"ws 2 closed: code 1008, aborted")
            sending.cancel()
            sock.close()
            # The server goes on serving everyone else.
            async with session.ws_connect(f"{server.http}/ws/?token={token}") as ws:
                assert (await ws_request(ws, "list", limit=1))["response_status"] == 200
        assert await server.stop() == 0
    finally:
        await server.kill()
