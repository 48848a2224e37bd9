"""A lean asyncio WebSocket and HTTP/1.1 keep-alive client, cheap enough not to be the bottleneck.

Callbacks instead of coroutines: a reply is handled inside data_received and the next request
written from there, so one request costs the client a few microseconds of Python. Client frames
are masked with the all-zero key (legal framing, and the server still runs its unmasking code).
"""
from __future__ import annotations

import asyncio
import base64
import os
import struct
from typing import Callable

MASK_BIT = 0x80
ZERO_MASK = b"\x00\x00\x00\x00"
OP_CONT, OP_TEXT, OP_BINARY, OP_CLOSE, OP_PING, OP_PONG = 0, 1, 2, 8, 9, 10


class HandshakeError(Exception):
    """The server answered the upgrade with something other than 101."""

    def __init__(self, status: int, body: bytes) -> None:
        super().__init__(f"HTTP {status}: {body[:200]!r}")
        self.status = status


def client_frame(payload: bytes, opcode: int = OP_TEXT) -> bytes:
    """One final, masked client frame (zero mask key: the payload bytes stay as they are)."""
    size = len(payload)
    if size < 126:
        head = struct.pack("!BB", 0x80 | opcode, MASK_BIT | size)
    elif size < 65536:
        head = struct.pack("!BBH", 0x80 | opcode, MASK_BIT | 126, size)
    else:
        head = struct.pack("!BBQ", 0x80 | opcode, MASK_BIT | 127, size)
    return head + ZERO_MASK + payload


def upgrade_request(host: str, port: int, path: str) -> bytes:
    key = base64.b64encode(os.urandom(16)).decode()
    return (f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n").encode()


def _status_of(head: bytes) -> int:
    try:
        return int(head.split(b" ", 2)[1])
    except (IndexError, ValueError):
        return 0


class WebSocket(asyncio.Protocol):
    """One client socket; `on_message(bytes)` is called for every text or binary message."""

    def __init__(self, on_message: Callable[[bytes], None] | None = None) -> None:
        self.on_message = on_message or (lambda data: None)
        self.transport: asyncio.Transport | None = None
        self.opened: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.closed: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._buffer = bytearray()
        self._fragments = bytearray()
        self._upgraded = False
        self._request = b""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        transport.write(self._request)  # type: ignore[attr-defined]

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.opened.done():
            self.opened.set_exception(ConnectionError("closed during the handshake"))
        if not self.closed.done():
            self.closed.set_result(None)

    def send(self, frame: bytes) -> None:
        """Send a frame made by client_frame()."""
        self.transport.write(frame)  # type: ignore[union-attr]

    def close(self) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(client_frame(struct.pack("!H", 1000), OP_CLOSE))
            self.transport.close()

    def data_received(self, data: bytes) -> None:
        self._buffer += data
        if not self._upgraded and not self._handshake():
            return
        self._frames()

    def _handshake(self) -> bool:
        end = self._buffer.find(b"\r\n\r\n")
        if end < 0:
            return False
        status = _status_of(bytes(self._buffer[:end]))
        if status != 101:
            self.opened.set_exception(HandshakeError(status, bytes(self._buffer[end + 4:])))
            self.transport.close()  # type: ignore[union-attr]
            return False
        if self.opened.done():  # the caller gave up waiting (connect's timeout, a fan-out budget)
            self.transport.close()  # type: ignore[union-attr]
            return False
        del self._buffer[:end + 4]
        self._upgraded = True
        self.opened.set_result(None)
        return True

    def _frames(self) -> None:
        buffer = self._buffer
        while len(buffer) >= 2:
            first, second = buffer[0], buffer[1]
            size, offset = second & 0x7F, 2
            if size == 126:
                if len(buffer) < 4:
                    return
                size, offset = struct.unpack_from("!H", buffer, 2)[0], 4
            elif size == 127:
                if len(buffer) < 10:
                    return
                size, offset = struct.unpack_from("!Q", buffer, 2)[0], 10
            if second & MASK_BIT:  # servers never mask, but be liberal
                offset += 4
            if len(buffer) < offset + size:
                return
            payload = bytes(buffer[offset:offset + size])
            del buffer[:offset + size]
            self._frame(first & 0x80, first & 0x0F, payload)

    def _frame(self, final: int, opcode: int, payload: bytes) -> None:
        if opcode in (OP_TEXT, OP_BINARY, OP_CONT):
            if not final or self._fragments:
                self._fragments += payload
                if not final:
                    return
                payload, self._fragments = bytes(self._fragments), bytearray()
            self.on_message(payload)
        elif opcode == OP_PING:
            self.send(client_frame(payload, OP_PONG))
        elif opcode == OP_CLOSE:
            self.close()


async def connect(host: str, port: int, path: str,
                  on_message: Callable[[bytes], None] | None = None, timeout: float = 10.0) -> WebSocket:
    """Open and upgrade one socket; raises HandshakeError (e.g. 401) or OSError."""
    loop = asyncio.get_running_loop()

    def factory() -> WebSocket:
        protocol = WebSocket(on_message)
        protocol._request = upgrade_request(host, port, path)
        return protocol

    _, protocol = await asyncio.wait_for(loop.create_connection(factory, host, port), timeout)
    try:
        await asyncio.wait_for(protocol.opened, timeout)
    except BaseException:  # timed out or abandoned: close it, so no late 101 lands on a cancelled future
        protocol.transport.close()
        raise
    return protocol


class HttpClient(asyncio.Protocol):
    """HTTP/1.1 with keep-alive, one request at a time; `on_response(status, body)` per reply."""

    def __init__(self, on_response: Callable[[int, bytes], None]) -> None:
        self.on_response = on_response
        self.transport: asyncio.Transport | None = None
        self.closed: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._buffer = bytearray()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.closed.done():
            self.closed.set_result(None)

    def send(self, request: bytes) -> None:
        self.transport.write(request)  # type: ignore[union-attr]

    def data_received(self, data: bytes) -> None:
        self._buffer += data
        while True:
            end = self._buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            length = _content_length(bytes(self._buffer[:end]))
            if len(self._buffer) < end + 4 + length:
                return
            status = _status_of(bytes(self._buffer[:end]))
            body = bytes(self._buffer[end + 4:end + 4 + length])
            del self._buffer[:end + 4 + length]
            self.on_response(status, body)


def _content_length(head: bytes) -> int:
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return int(value)
        if name.strip().lower() == b"transfer-encoding":
            raise ValueError("chunked responses are not supported by the bench client")
    return 0


def get_request(host: str, port: int, path: str, token: str) -> bytes:
    return (f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nAuthorization: Token {token}\r\n"
            "Accept: application/json\r\n\r\n").encode()
