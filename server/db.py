"""The only module that touches the driver: connection pool, sessions, transactions, error mapping."""
from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
from typing import Any, AsyncIterator, Mapping, NamedTuple

import aiopg
import psycopg2
import psycopg2.errors

from server.batching import KeyedLookups
from server.errors import ApiError, BadRequest, Conflict, Unavailable

log = logging.getLogger(__name__)

Row = dict[str, Any]

# Driver errors that mean "the database is not there (or not answering)".
UNAVAILABLE = (
    psycopg2.OperationalError,
    psycopg2.InterfaceError,
    asyncio.TimeoutError,
    ConnectionError,
)
# What a query can raise that the session translates (anything else is a bug: a 500).
DRIVER_ERRORS = (psycopg2.Error, asyncio.TimeoutError, ConnectionError)


class DatabaseUnavailable(Exception):
    """Raised to CLI commands when the database cannot be reached at all."""


def translate(exc: BaseException) -> ApiError | None:
    """Map a driver error to the server's own error; None means unexpected (a 500)."""
    if isinstance(exc, psycopg2.errors.UniqueViolation):
        return Conflict(["A record with these values already exists."])
    if isinstance(exc, (psycopg2.errors.AdminShutdown, psycopg2.errors.CannotConnectNow)):
        return Unavailable()
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


class Lease(NamedTuple):
    """A pooled connection and the one cursor it keeps for its whole life."""

    connection: aiopg.Connection
    cursor: aiopg.Cursor


class Pool:
    """Connections handed out without a lock, a task or a timer when one is idle (the hot path).

    aiopg's own pool takes a Condition, starts a task on every release and arms a timeout on
    every acquire; per request that cost more CPU than the query (docs/benchmarks.md).
    """

    def __init__(self, url: str, maxsize: int, timeout: float) -> None:
        self._url, self._maxsize, self._timeout = url, maxsize, timeout
        self._idle: collections.deque[Lease] = collections.deque()
        self._waiters: collections.deque[asyncio.Future[Lease | None]] = collections.deque()
        self._size = 0  # open or opening
        self._closing = False

    async def _connect(self) -> Lease:
        connection = await aiopg.connect(self._url, timeout=self._timeout, enable_hstore=False,
                                         connect_timeout=max(2, int(self._timeout)), options="-c TimeZone=UTC")
        return Lease(connection, await connection.cursor())

    async def fill(self, count: int) -> None:
        for _ in range(count):
            self._size += 1
            try:
                self._idle.append(await self._connect())
            except BaseException:
                self._size -= 1
                raise

    async def acquire(self) -> Lease:
        while True:
            while self._idle:
                lease = self._idle.pop()  # the most recently used: its backend is the warmest
                if not lease.connection.closed:
                    return lease
                self._size -= 1
            if self._closing:
                raise psycopg2.InterfaceError("the pool is closed")
            if self._size < self._maxsize:
                return await self._open_one()
            lease = await self._wait()
            if lease is not None:
                return lease

    async def _open_one(self) -> Lease:
        self._size += 1
        try:
            async with asyncio.timeout(self._timeout):
                return await self._connect()
        except BaseException:
            self._size -= 1
            self._wake(None)
            raise

    async def _wait(self) -> Lease | None:
        waiter: asyncio.Future[Lease | None] = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        try:
            async with asyncio.timeout(self._timeout):
                return await waiter
        except BaseException:
            if waiter.done() and not waiter.cancelled() and waiter.result() is not None:
                self.release(waiter.result())  # handed over just as we gave up: pass it on
            waiter.cancel()
            raise

    def _wake(self, lease: Lease | None) -> bool:
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(lease)
                return True
        return False

    def release(self, lease: Lease) -> None:
        connection = lease.connection
        if connection.closed or self._closing or \
                connection.raw.get_transaction_status() != psycopg2.extensions.TRANSACTION_STATUS_IDLE:
            connection.close()
            self._size -= 1
            self._wake(None)  # a waiter may open a new one in its place
        elif not self._wake(lease):
            self._idle.append(lease)

    async def close(self) -> None:
        self._closing = True
        while self._idle:
            self._idle.pop().connection.close()
        while self._wake(None):
            pass


class Database:
    """A pool of connections and the loaded queries; sessions translate driver errors."""

    def __init__(self, pool: Pool, queries: Mapping[str, str]) -> None:
        self._pool = pool
        self.queries = queries
        self.lookups = KeyedLookups(self)

    async def _acquire(self) -> Lease:
        try:
            return await self._pool.acquire()
        except UNAVAILABLE + (psycopg2.Error,) as exc:
            log.warning("database unavailable: %s", str(exc).strip() or type(exc).__name__)
            raise Unavailable() from exc

    @staticmethod
    def _failed(exc: BaseException, lease: Lease) -> ApiError:
        """The server's error for a driver error (re-raised as is when unexpected)."""
        if not isinstance(exc, psycopg2.Error):
            lease.connection.close()  # it may be mid-query; never hand it out again
        mapped = translate(exc)
        if mapped is None:
            raise exc
        if isinstance(mapped, Unavailable):
            log.warning("database unavailable: %s", str(exc).strip() or type(exc).__name__)
        return mapped

    @contextlib.asynccontextmanager
    async def session(self) -> AsyncIterator[Session]:
        lease = await self._acquire()
        try:
            yield Session(lease.cursor, self.queries)
        except DRIVER_ERRORS as exc:
            raise self._failed(exc, lease) from exc
        finally:
            self._pool.release(lease)

    # fetch_one and fetch_all serve every read: no context manager, one acquire, one release.
    async def fetch_one(self, name: str, params: Mapping[str, Any] | None = None, **fragments: str) -> Row | None:
        lease = await self._acquire()
        try:
            return await Session(lease.cursor, self.queries).fetch_one(name, params, **fragments)
        except DRIVER_ERRORS as exc:
            raise self._failed(exc, lease) from exc
        finally:
            self._pool.release(lease)

    async def fetch_all(self, name: str, params: Mapping[str, Any] | None = None, **fragments: str) -> list[Row]:
        lease = await self._acquire()
        try:
            return await Session(lease.cursor, self.queries).fetch_all(name, params, **fragments)
        except DRIVER_ERRORS as exc:
            raise self._failed(exc, lease) from exc
        finally:
            self._pool.release(lease)

    async def close(self) -> None:
        await self._pool.close()


async def open_database(url: str, queries: Mapping[str, str], *, minsize: int = 1,
                        maxsize: int = 20, timeout: float = 5.0) -> Database:
    """Connect a pool; raises DatabaseUnavailable with a one-line reason on failure."""
    pool = Pool(url, maxsize, timeout)
    try:
        async with asyncio.timeout(timeout + 1):
            await pool.fill(minsize)
    except (psycopg2.Error, OSError, asyncio.TimeoutError) as exc:
        await pool.close()
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise DatabaseUnavailable(f"database unreachable: {reason}") from None
    return Database(pool, queries)
