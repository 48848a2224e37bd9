"""The only module that touches the driver: aiopg pool, sessions, transactions, error mapping."""
from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from typing import Any, AsyncIterator, Iterator, Mapping

import aiopg
import psycopg2
import psycopg2.errors

from server.batching import KeyedLookups
from server.errors import ApiError, BadRequest, Conflict, ReferenceViolation, Unavailable

log = logging.getLogger(__name__)

Row = dict[str, Any]

# Driver errors that mean "the database is not there (or not answering)".
UNAVAILABLE = (
    psycopg2.OperationalError,
    psycopg2.InterfaceError,
    asyncio.TimeoutError,
    ConnectionError,
)


TABLE_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_$]*(\.[A-Za-z_][A-Za-z0-9_$]*)?")


def quote_table(name: str) -> str:
    """A table name (optionally schema-qualified) quoted for a {fragment}; refuses anything else."""
    if not TABLE_NAME.fullmatch(name):
        raise ValueError(f"not a table name: {name!r}")
    return ".".join(f'"{part}"' for part in name.split("."))


class DatabaseUnavailable(Exception):
    """Raised to CLI commands when the database cannot be reached at all."""


class QueryRefused(Exception):
    """For CLI commands: a statement the database refused; str() is the first line of its reason."""


@contextlib.contextmanager
def refusals_as_messages() -> Iterator[None]:
    """Turn any driver error (or its mapped ApiError) inside the block into QueryRefused."""
    try:
        yield
    except (psycopg2.Error, ApiError) as exc:
        cause = exc.__cause__ if isinstance(exc, ApiError) and exc.__cause__ else exc
        lines = str(cause).strip().splitlines()
        raise QueryRefused(lines[0] if lines else type(cause).__name__) from exc


def translate(exc: BaseException) -> ApiError | None:
    """Map a driver error to the server's own error; None means unexpected (a 500)."""
    if isinstance(exc, psycopg2.errors.UniqueViolation):
        return Conflict(["A record with these values already exists."])
    if isinstance(exc, (psycopg2.errors.AdminShutdown, psycopg2.errors.CannotConnectNow)):
        return Unavailable()
    if isinstance(exc, psycopg2.errors.ForeignKeyViolation):
        return ReferenceViolation(exc.diag.table_name, exc.diag.constraint_name)
    if isinstance(exc, (psycopg2.IntegrityError, psycopg2.DataError)):
        return BadRequest([{"non_field_errors": ["Invalid data."]}])
    if isinstance(exc, UNAVAILABLE):
        return Unavailable()
    return None


class Session:
    """One pooled connection: named queries, with explicit transactions when needed."""

    def __init__(self, cursor: aiopg.Cursor, queries: Mapping[str, str]) -> None:
        self._cursor = cursor
        self._queries = queries

    async def _run(self, name: str, params: Mapping[str, Any] | None, fragments: Mapping[str, str]) -> None:
        text = self._queries[name]
        if fragments:
            text = text.format(**fragments)
        await self._cursor.execute(text, params)

    async def fetch_one(self, name: str, params: Mapping[str, Any] | None = None, **fragments: str) -> Row | None:
        await self._run(name, params, fragments)
        row = await self._cursor.fetchone()
        return None if row is None else dict(zip(self._column_names(), row))

    async def fetch_all(self, name: str, params: Mapping[str, Any] | None = None, **fragments: str) -> list[Row]:
        await self._run(name, params, fragments)
        names = self._column_names()
        return [dict(zip(names, row)) for row in await self._cursor.fetchall()]

    async def execute(self, name: str, params: Mapping[str, Any] | None = None, **fragments: str) -> int:
        await self._run(name, params, fragments)
        return self._cursor.rowcount

    async def write(self, name: str, params: Mapping[str, Any], acting_user: int | None) -> Row | None:
        """A write that records who made it: the trigger on the table reads dashboard.user_id.

        The setting and the write go in one simple-protocol Query, which PostgreSQL runs as one
        implicit transaction (or inside the open one): no extra round trip, and the setting is
        gone when the transaction ends. fetchone() reads the write's RETURNING row.
        """
        text = f"{self._queries['changes.acting_user']}\n{self._queries[name]}"
        user = "" if acting_user is None else str(acting_user)
        await self._cursor.execute(text, {**params, "dashboard_acting_user": user})
        row = await self._cursor.fetchone()
        return None if row is None else dict(zip(self._column_names(), row))

    async def execute_script(self, text: str) -> None:
        """Run SQL text with no parameters (a migration file)."""
        await self._cursor.execute(text)

    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator[Session]:
        """aiopg connections are autocommit; this groups statements into one transaction."""
        async with self._cursor.begin():
            yield self

    def _column_names(self) -> list[str]:
        return [column.name for column in self._cursor.description]


def _mapped(exc: BaseException) -> BaseException:
    """The server's error for a driver error (the driver error itself when unexpected)."""
    mapped = translate(exc)
    if mapped is None:
        return exc
    if isinstance(mapped, Unavailable):
        log.warning("database unavailable: %s", str(exc).strip() or type(exc).__name__)
    return mapped


class Listening(Session):
    """A session on a connection that LISTENs: also waits for notifications."""

    def __init__(self, connection: aiopg.Connection, cursor: aiopg.Cursor, queries: Mapping[str, str]) -> None:
        super().__init__(cursor, queries)
        self._connection = connection

    async def notified(self) -> None:
        """Wait for the next notification, then take every queued one (they only say "look")."""
        try:
            await self._connection.notifies.get()
            while not self._connection.notifies.empty():
                await self._connection.notifies.get()
        except (psycopg2.Error, ConnectionError) as exc:
            log.warning("database unavailable: %s", str(exc).strip() or type(exc).__name__)
            raise Unavailable() from exc


class Database:
    """A pool of connections and the loaded queries; sessions translate driver errors."""

    def __init__(self, pool: aiopg.Pool, queries: Mapping[str, str], timeout: float, url: str = "") -> None:
        self._pool = pool
        self.queries = queries
        self._timeout = timeout
        self._waiting = 0  # requests queued for a connection (aiopg does not count them publicly)
        self._url = url
        self.lookups = KeyedLookups(self)  # server/batching.py: concurrent retrieves share a query

    @contextlib.asynccontextmanager
    async def session(self) -> AsyncIterator[Session]:
        self._waiting += 1
        try:
            async with asyncio.timeout(self._timeout):
                connection = await self._pool.acquire()
        except UNAVAILABLE + (psycopg2.Error,) as exc:
            log.warning("database unavailable: %s", str(exc).strip() or type(exc).__name__)
            raise Unavailable() from exc
        finally:
            self._waiting -= 1
        try:
            async with connection.cursor() as cursor:
                yield Session(cursor, self.queries)
        except (psycopg2.Error, asyncio.TimeoutError, ConnectionError) as exc:
            if not isinstance(exc, psycopg2.Error):
                connection.close()  # it may be mid-query; never hand it out again
            mapped = _mapped(exc)
            if mapped is exc:
                raise
            raise mapped from exc
        finally:
            await self._pool.release(connection)

    @contextlib.asynccontextmanager
    async def listen(self, listen_query: str, application_name: str) -> AsyncIterator[Listening]:
        """A dedicated connection (never pooled: LISTEN belongs to a session) that has run
        `listen_query`; queries and notifications on it. Driver errors become Unavailable."""
        try:
            async with asyncio.timeout(self._timeout):
                connection = await aiopg.connect(self._url, timeout=self._timeout, options="-c TimeZone=UTC",
                                                 application_name=application_name)
        except UNAVAILABLE + (psycopg2.Error,) as exc:
            log.warning("database unavailable: %s", str(exc).strip() or type(exc).__name__)
            raise Unavailable() from exc
        try:
            # No cursor context: closing the connection closes it, and a cursor close that fails
            # on a dead connection must not replace the error (or a cancellation) in flight.
            listening = Listening(connection, await connection.cursor(), self.queries)
            await listening.execute(listen_query)
            yield listening
        except (psycopg2.Error, asyncio.TimeoutError, ConnectionError) as exc:
            mapped = _mapped(exc)
            if mapped is exc:
                raise
            raise mapped from exc
        finally:
            connection.close()

    async def fetch_one(self, name: str, params: Mapping[str, Any] | None = None, **fragments: str) -> Row | None:
        async with self.session() as session:
            return await session.fetch_one(name, params, **fragments)

    async def fetch_all(self, name: str, params: Mapping[str, Any] | None = None, **fragments: str) -> list[Row]:
        async with self.session() as session:
            return await session.fetch_all(name, params, **fragments)

    async def execute(self, name: str, params: Mapping[str, Any] | None = None, **fragments: str) -> int:
        async with self.session() as session:
            return await session.execute(name, params, **fragments)

    async def write(self, name: str, params: Mapping[str, Any], acting_user: int | None) -> Row | None:
        async with self.session() as session:
            return await session.write(name, params, acting_user)

    def pool_stats(self) -> tuple[int, int, int]:
        """(in use, idle, waiting) connections of the pool, for the metrics."""
        idle = self._pool.freesize
        return self._pool.size - idle, idle, self._waiting

    async def close(self) -> None:
        self._pool.close()
        await self._pool.wait_closed()


async def open_database(url: str, queries: Mapping[str, str], *, minsize: int = 1,
                        maxsize: int = 20, timeout: float = 5.0) -> Database:
    """Connect a pool; raises DatabaseUnavailable with a one-line reason on failure."""
    try:
        pool = await aiopg.create_pool(
            url, minsize=minsize, maxsize=maxsize, timeout=timeout,
            connect_timeout=max(2, int(timeout)), options="-c TimeZone=UTC",
        )
    except (psycopg2.Error, OSError, asyncio.TimeoutError) as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise DatabaseUnavailable(f"database unreachable: {reason}") from None
    return Database(pool, queries, timeout, url)
