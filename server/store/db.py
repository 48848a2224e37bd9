"""The only module that touches the driver: aiopg pool, sessions, transactions, error translation."""
from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import re
from typing import Any, AsyncIterator, Iterator, Mapping

import aiopg
import psycopg2
import psycopg2.errors

from server.errors import ApiError, BadRequest, CheckViolation, Conflict, ReferenceViolation, Unavailable
from server.store.batching import KeyedLookups, Row
from server.store.hosts import Attempt, Hosts

log = logging.getLogger(__name__)
ADDRESS = re.compile(r" ?0x[0-9a-f]+")

DriverError = psycopg2.Error  # for a command that reports any refusal of the database as text

# Errors that mean "the database is not there (or not answering)".
UNAVAILABLE = (
    psycopg2.OperationalError,
    psycopg2.InterfaceError,
    asyncio.TimeoutError,
    ConnectionError,
)


# A connect that failed (uvloop: RuntimeError from a closed watcher): with several hosts, look for another.
CONNECT_FAILURES = (psycopg2.Error, OSError, RuntimeError)


class DatabaseUnavailable(Exception):
    """open_database could not connect at all; str() is a one-line reason."""


def translate(exc: BaseException, connecting: bool = False) -> ApiError | None:
    """Map a driver error to the server's own error; None means unexpected (a 500).

    While connecting, every failure means the database is not there and nothing was sent: under
    uvloop a socket that was refused can also come back as RuntimeError("unable to perform
    operation on <UVPoll closed=True>") from the loop."""
    if connecting and isinstance(exc, (psycopg2.Error, OSError, RuntimeError, asyncio.TimeoutError)):
        return Unavailable()
    if isinstance(exc, psycopg2.errors.UniqueViolation):
        return Conflict(["A record with these values already exists."])
    if isinstance(exc, (psycopg2.errors.AdminShutdown, psycopg2.errors.CannotConnectNow)):
        return Unavailable()
    if isinstance(exc, psycopg2.errors.ForeignKeyViolation):
        return ReferenceViolation(exc.diag.table_name, exc.diag.constraint_name)
    if isinstance(exc, psycopg2.errors.CheckViolation):
        return CheckViolation(exc.diag.table_name, exc.diag.constraint_name)
    if isinstance(exc, (psycopg2.IntegrityError, psycopg2.DataError)):
        return BadRequest([{"non_field_errors": ["Invalid data."]}])
    if isinstance(exc, UNAVAILABLE):
        return Unavailable()
    return None


class OutageLog:
    """One warning per cause of an outage, not one per request: each reason is told the first time
    it is seen, and how many failures there were when the database answers again."""

    def __init__(self) -> None:
        self.reasons: set[str] = set()
        self.failures = 0

    def failed(self, exc: BaseException) -> None:
        self.failures += 1
        # Without addresses: uvloop names the handle it found closed (<UVPoll closed=True 0x7f...>).
        reason = ADDRESS.sub("", (str(exc).strip().splitlines() or [type(exc).__name__])[0])
        if reason not in self.reasons:
            self.reasons.add(reason)
            log.warning("database unavailable: %s", reason)

    def answered(self) -> None:
        """The database answered: the outage, if there was one, is over."""
        if self.failures:
            log.warning("database available again, after %d failed attempts", self.failures)
        self.reasons.clear()
        self.failures = 0


@contextlib.contextmanager
def translated(outages: OutageLog, connecting: bool = False) -> Iterator[None]:
    """The one place driver errors become the server's own (an outage is logged here, once a
    cause); an unexpected one is raised as it is."""
    try:
        yield
    except (psycopg2.Error, asyncio.TimeoutError, ConnectionError, OSError, RuntimeError) as exc:
        mapped = translate(exc, connecting)
        if mapped is None:
            raise
        if isinstance(mapped, Unavailable):
            outages.failed(exc)
        raise mapped from exc


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


class Listening(Session):
    """A session on a connection that LISTENs: also waits for notifications."""

    def __init__(self, connection: aiopg.Connection, cursor: aiopg.Cursor, queries: Mapping[str, str],
                 outages: OutageLog) -> None:
        super().__init__(cursor, queries)
        self._connection = connection
        self._outages = outages

    async def notified(self) -> list[tuple[str, str]]:
        """Wait for the next notification, then take every queued one: (channel, payload) each."""
        with translated(self._outages):
            notes = [await self._connection.notifies.get()]
            while not self._connection.notifies.empty():
                notes.append(self._connection.notifies.get_nowait())
        return [(note.channel, note.payload) for note in notes]


class Database:
    """A pool of connections and the loaded queries; sessions translate driver errors."""

    def __init__(self, pool: aiopg.Pool, queries: Mapping[str, str], timeout: float, url: str = "",
                 hosts: Hosts | None = None) -> None:
        self._pool = pool
        self.queries = queries
        self._timeout = timeout
        self._waiting = 0  # requests queued for a connection (aiopg does not count them publicly)
        self._url = url
        self._hosts = hosts or Hosts(psycopg2.extensions.parse_dsn(url))
        self.outages = OutageLog()
        self.lookups = KeyedLookups(self.fetch_all)  # concurrent retrieves share a query (batching.py)

    @contextlib.asynccontextmanager
    async def session(self) -> AsyncIterator[Session]:
        self._waiting += 1
        try:
            with translated(self.outages, connecting=True):
                async with asyncio.timeout(self._timeout):
                    searches = self._hosts.searches
                    try:
                        connection = await self._pool.acquire()
                    except CONNECT_FAILURES:
                        if not await self._relocated(searches):
                            raise
                        connection = await self._pool.acquire()
        finally:
            self._waiting -= 1
        if self.outages.failures:
            self.outages.answered()
        try:
            with translated(self.outages):
                try:
                    async with connection.cursor() as cursor:
                        yield Session(cursor, self.queries)
                except (asyncio.TimeoutError, ConnectionError):
                    connection.close()  # it may be mid-query; never hand it out again
                    raise
        finally:
            await self._pool.release(connection)

    @contextlib.asynccontextmanager
    async def listen(self, listen_query: str, application_name: str) -> AsyncIterator[Listening]:
        """A dedicated connection (never pooled: LISTEN belongs to a session) that has run
        `listen_query`; queries and notifications on it. Driver errors become Unavailable."""
        with translated(self.outages, connecting=True):
            async with asyncio.timeout(self._timeout):
                searches = self._hosts.searches
                try:
                    connection = await self._connect(application_name)
                except CONNECT_FAILURES:
                    if not await self._relocated(searches):
                        raise
                    connection = await self._connect(application_name)
        try:
            with translated(self.outages):
                # No cursor context: closing the connection closes it, and a cursor close that fails
                # on a dead connection must not replace the error (or a cancellation) in flight.
                listening = Listening(connection, await connection.cursor(), self.queries, self.outages)
                await listening.execute(listen_query)
                yield listening
        finally:
            connection.close()

    async def _connect(self, application_name: str) -> aiopg.Connection:
        return await aiopg.connect(current_dsn(self._url, self._hosts), timeout=self._timeout,
                                   options="-c TimeZone=UTC", application_name=application_name,
                                   connection_factory=new_connection)

    async def _relocated(self, searches: int) -> bool:
        """After a connect failed: whether to connect once more, because the URL names several hosts
        and one accepts now (after a failover: the promoted standby; server/store/hosts.py)."""
        return await self._hosts.relocate(searches, functools.partial(probe, self._url, self._timeout))

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


def current_dsn(url: str, hosts: Hosts) -> str:
    """The URL, naming only the address connections go to now (the URL itself for a single host)."""
    return one_address(url, hosts.current) if hosts.several else url


def one_address(dsn: str, attempt: Attempt) -> str:
    # Every key, empty ones too: libpq reads an empty port or hostaddr as its default, and the
    # URL's comma lists must not survive next to one host.
    return psycopg2.extensions.make_dsn(dsn, **attempt)


def new_connection(dsn: str, async_: int) -> psycopg2.extensions.connection:
    """psycopg2's connection_factory for every connection made here: libpq has just opened its socket,
    so whatever the event loop still watches under that number belongs to a closed one. uvloop keeps
    a closed watcher for the socket of a refused connect, which aiopg would trip over with the next
    socket given that number (RuntimeError: unable to perform operation on <UVPoll closed=True>)."""
    connection = psycopg2.extensions.connection(dsn, async_)
    loop = asyncio.get_running_loop()
    loop.remove_reader(connection.fileno())
    loop.remove_writer(connection.fileno())
    return connection


async def probe(url: str, timeout: float, attempt: Attempt) -> None:
    """Connect to one address of the URL (its target_session_attrs applies), then close; raises if refused."""
    connection = await aiopg.connect(one_address(url, attempt), timeout=max(1.0, timeout / 2),
                                     connect_timeout=max(1, int(timeout / 2)), connection_factory=new_connection)
    connection.close()


def first_line(exc: BaseException) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__


async def open_database(url: str, queries: Mapping[str, str], *, minsize: int = 1,
                        maxsize: int = 20, timeout: float = 5.0) -> Database:
    """Connect a pool; raises DatabaseUnavailable with a one-line reason on failure."""
    hosts = Hosts(psycopg2.extensions.parse_dsn(url))
    try:
        if hosts.several and not await hosts.locate(functools.partial(probe, url, timeout)):
            raise DatabaseUnavailable(f"database unreachable: no host of {hosts.names()} accepted: "
                                      f"{'; '.join(hosts.refusals)}")
        pool = await aiopg.create_pool(
            url, minsize=minsize, maxsize=maxsize, timeout=timeout,
            connect_timeout=max(2, int(timeout)), options="-c TimeZone=UTC",
            # Each new pooled connection goes to the address that accepted last (server/store/hosts.py).
            connection_factory=lambda dsn, async_: new_connection(current_dsn(dsn, hosts), async_),
        )
    except (psycopg2.Error, OSError, asyncio.TimeoutError) as exc:
        raise DatabaseUnavailable(f"database unreachable: {first_line(exc)}") from None
    return Database(pool, queries, timeout, url, hosts)
