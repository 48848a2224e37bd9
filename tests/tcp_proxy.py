"""A TCP front for a PostgreSQL the tests can take away: connections refused and the open ones cut, as when
a server on TCP stops (the embedded clusters listen on a Unix socket only)."""
from __future__ import annotations

import asyncio
import contextlib
from urllib.parse import parse_qs, urlsplit


class TcpProxy:
    def __init__(self, database_url: str) -> None:
        parts = urlsplit(database_url)
        query = parse_qs(parts.query)
        # The embedded cluster's Unix socket (?host=DIR&port=N), or a server on TCP (DASHBOARD_DATABASE_URL).
        self.socket_dir = query["host"][0] if "host" in query else None
        self.upstream = (parts.hostname or "127.0.0.1", int(query["port"][0]) if "port" in query else parts.port or 5432)
        self.user = parts.username or "postgres"
        self.database = parts.path.lstrip("/")
        self.server: asyncio.AbstractServer | None = None
        self.port = 0
        self.links: set[asyncio.StreamWriter] = set()

    @property
    def url(self) -> str:
        return f"postgresql://{self.user}@127.0.0.1:{self.port}/{self.database}"

    async def start(self) -> None:
        self.server = await asyncio.start_server(self._link, "127.0.0.1", self.port)
        self.port = self.server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        """Refuse new connections and cut the open ones."""
        assert self.server is not None
        self.server.close()
        for writer in list(self.links):
            writer.transport.abort()
        self.links.clear()
        await self.server.wait_closed()

    async def _link(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self.socket_dir is not None:
            up_reader, up_writer = await asyncio.open_unix_connection(f"{self.socket_dir}/.s.PGSQL.{self.upstream[1]}")
        else:
            up_reader, up_writer = await asyncio.open_connection(*self.upstream)
        self.links.update((writer, up_writer))
        await asyncio.gather(self._pipe(reader, up_writer), self._pipe(up_reader, writer))

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError, OSError):
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        writer.transport.abort()
        self.links.discard(writer)
