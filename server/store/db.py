"""The only module that touches the driver: aiopg pool, sessions, transactions, error translation."""
from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import re
import select
from typing import Any, AsyncIterator, Iterator, Mapping, NoReturn

import aiopg
import psycopg2
import psycopg2.errors

from server.errors import (ApiError, BadRequest, CheckViolation, Conflict, IdempotencyKeyTaken, OutcomeUnknown,
                           ReferenceViolation, Unavailable)
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


# What a write's statement may meet instead of its answer.
LOST = (psycopg2.Error, asyncio.TimeoutError, ConnectionError, OSError, RuntimeError)


def outcome_unknown(exc: BaseException) -> bool:
    """Whether a write that failed with `exc` after its statement was handed to the driver may
    still commit. Not when the connection was closed already (InterfaceError: nothing was sent),
    nor when the database refused the statement with an error code (it was rolled back); an
    operator's shutdown (57P..) ends a backend whatever it was doing, a commit included."""
    if isinstance(exc, psycopg2.InterfaceError):
        return False
    if isinstance(exc, psycopg2.Error) and exc.pgcode and not exc.pgcode.startswith("57P"):
        return False
    return isinstance(exc, LOST)


class DatabaseUnavailable(Exception):
    """open_database could not connect at all; str() is a one-line reason."""


def translate(exc: BaseException, connecting: bool = False) -> ApiError | None:
    """Map a driver error to the server's own error; None means unexpected (a 500).

    While connecting, every failure means the database is not there and nothing was sent: under
    uvloop a socket that was refused can also come back as RuntimeError("unable to perform
    operation on <UVPoll closed=True>") from the loop."""
    if connecting and isinstance(exc, (psycopg2.Error, OSError, RuntimeError, asyncio.TimeoutError)):
        return Unavailable()
    if isinstance(exc, psycopg2.errors.UniqueViolation) and exc.diag.constraint_name == "idempotency_keys_pkey":
        return IdempotencyKeyTaken()
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

    __slots__ = ("_connection", "_cursor", "_database", "_queries", "_in_transaction")  # one per request

    def __init__(self, connection: aiopg.Connection, cursor: aiopg.Cursor, database: Database) -> None:
        self._connection = connection
        self._cursor = cursor
        self._database = database
        self._queries = database.queries
        self._in_transaction = False

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

    async def write(self, name: str, params: Mapping[str, Any], acting_user: int | None,
                    record: str | None = None) -> Row | None:
        """A write that records who made it: the trigger on the table reads dashboard.user_id.

        The setting and the write go in one simple-protocol Query, which PostgreSQL runs as one
        implicit transaction (or inside the open one): no extra round trip, and the setting is
        gone when the transaction ends. fetchone() reads the write's RETURNING row. Outside a
        transaction, a statement sent and not answered is OutcomeUnknown (inside, the COMMIT is).
        `record` names a query that follows the write as `WITH created AS (<write>) <record>`, in
        the same statement (writes.record_key: an idempotency key).
        """
        write = self._queries[name]
        if record is not None:
            write = f"WITH created AS ({write.rstrip().rstrip(';')})\n{self._queries[record]}"
        text = f"{self._queries['changes.acting_user']}\n{write}"
        user = "" if acting_user is None else str(acting_user)
        pid = self._connection.raw.get_backend_pid()  # local, no round trip: whom to cancel if need be
        if not self._in_transaction:
            self._check_idle()
        answered = False
        try:
            await self._cursor.execute(text, {**params, "dashboard_acting_user": user})
            answered = True
            # The answer is in; but psycopg2 refuses to read it once the connection has closed
            # (a FATAL right after it, in a fast shutdown): committed, and the row is lost.
            row = await self._cursor.fetchone()
        except LOST as exc:
            if self._in_transaction or not (answered or outcome_unknown(exc)):
                raise
            self._lost(pid, exc)
        return None if row is None else dict(zip(self._column_names(), row))

    def _check_idle(self) -> None:
        """Before a write: an idle connection has nothing to read unless the database ended it (a
        FATAL such as pg_terminate_backend's, or EOF) and the loop has not noticed yet. Then the
        write is not sent (503, nothing written) rather than sent into it (504, outcome unknown).
        One poll of the socket; the input is read only when there is some."""
        raw = self._connection.raw
        poller = select.poll()  # not select(): a server with thousands of sockets has descriptors past 1,024
        poller.register(raw.fileno(), select.POLLIN)
        if not poller.poll(0):
            return
        try:
            raw.poll()
        except psycopg2.Error:
            pass
        if raw.closed:
            self._connection.close()
            raise psycopg2.InterfaceError("the database ended this connection while it was idle")

    def _lost(self, pid: int, exc: BaseException) -> NoReturn:
        """A write's answer did not come: never reuse the connection, cancel the statement if it
        still runs, and say that the outcome is unknown."""
        self._connection.close()
        self._database.lost_write(pid, exc)
        raise OutcomeUnknown() from exc

    async def execute_script(self, text: str) -> None:
        """Run SQL text with no parameters (a migration file)."""
        await self._cursor.execute(text)

    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator[Session]:
        """aiopg connections are autocommit; this groups statements into one transaction. Until
        its COMMIT is sent nothing can be written; a COMMIT sent and not answered is OutcomeUnknown."""
        pid, committing = self._connection.raw.get_backend_pid(), False
        self._in_transaction = True
        try:
            async with self._cursor.begin():
                yield self
                self._in_transaction, committing = False, True  # leaving the block sends COMMIT
        except LOST as exc:
            if committing and outcome_unknown(exc):
                self._lost(pid, exc)
            raise
        finally:
            self._in_transaction = False

    def _column_names(self) -> list[str]:
        return [column.name for column in self._cursor.description]


class Listening(Session):
    """A session on a connection that LISTENs: also waits for notifications."""

    __slots__ = ("_outages",)

    def __init__(self, connection: aiopg.Connection, cursor: aiopg.Cursor, database: Database) -> None:
        super().__init__(connection, cursor, database)
        self._outages = database.outages

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
                 hosts: Hosts | None = None, idempotency_retain: float = 24 * 3600.0) -> None:
        self._pool = pool
        self.idempotency_retain = idempotency_retain  # seconds a create's idempotency key is kept
        self._cancels: set[asyncio.Task[None]] = set()
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
                        yield Session(connection, cursor, self)
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
                listening = Listening(connection, await connection.cursor(), self)
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

    async def write(self, name: str, params: Mapping[str, Any], acting_user: int | None,
                    record: str | None = None) -> Row | None:
        async with self.session() as session:
            return await session.write(name, params, acting_user, record)

    def lost_write(self, pid: int, exc: BaseException) -> None:
        """A write on backend `pid` was not answered: log the cause once, and cancel the statement in
        the background (the request answers now). The cancel works where the database answers (a
        statement waiting for a lock); a frozen one gets it, if ever, once it thaws."""
        self.outages.failed(exc)
        task = asyncio.get_running_loop().create_task(self._cancel(pid))
        self._cancels.add(task)
        task.add_done_callback(self._cancels.discard)

    async def _cancel(self, pid: int) -> None:
        try:
            if await self.fetch_one("writes.cancel", {"pid": pid}):
                log.warning("cancelled the unanswered write of database backend %d", pid)
        except ApiError:
            pass  # the database does not answer: the outage is logged already

    def pool_stats(self) -> tuple[int, int, int]:
        """(in use, idle, waiting) connections of the pool, for the metrics."""
        idle = self._pool.freesize
        return self._pool.size - idle, idle, self._waiting

    async def close(self) -> None:
        for task in list(self._cancels):
            task.cancel()
        await asyncio.gather(*self._cancels, return_exceptions=True)
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
                        maxsize: int = 20, timeout: float = 5.0,
                        idempotency_retain: float = 24 * 3600.0) -> Database:
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
    return Database(pool, queries, timeout, url, hosts, idempotency_retain)
