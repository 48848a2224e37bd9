"""Which host of a multi-host URL connections go to: the order of a search, one search at a time (no database)."""
from __future__ import annotations

import asyncio

import psycopg2
import psycopg2.extensions

from server.store.db import one_address
from server.store.hosts import Attempt, Hosts

URL = "postgresql://dash:secret@127.0.0.1:5432,127.0.0.2:5433,127.0.0.3:5434/dashboard?target_session_attrs=read-write"


class Probes:
    """A probe that accepts only the hosts in `accepting`, and remembers what it was asked."""

    def __init__(self, *accepting: str) -> None:
        self.accepting = set(accepting)
        self.asked: list[str] = []

    async def __call__(self, attempt: Attempt) -> None:
        self.asked.append(attempt["host"])
        await asyncio.sleep(0)
        if attempt["host"] not in self.accepting:
            raise psycopg2.OperationalError("session is read-only\n")


def hosts(url: str = URL) -> Hosts:
    return Hosts(psycopg2.extensions.parse_dsn(url))


async def test_at_start_the_first_host_in_the_url_order_that_accepts() -> None:
    found, probe = hosts(), Probes("127.0.0.2", "127.0.0.3")
    assert await found.locate(probe) and found.current["host"] == "127.0.0.2"
    assert probe.asked == ["127.0.0.1", "127.0.0.2"]
    assert found.refusals == ["127.0.0.1:5432: session is read-only"]


async def test_after_a_failure_the_others_first_and_the_failed_one_last() -> None:
    found = hosts()
    await found.locate(Probes("127.0.0.1"))
    probe = Probes("127.0.0.1")
    assert await found.relocate(found.searches, probe) and found.current["host"] == "127.0.0.1"
    assert probe.asked == ["127.0.0.2", "127.0.0.3", "127.0.0.1"]
    assert not await found.relocate(found.searches, Probes())
    assert len(found.refusals) == 3


async def test_one_search_at_a_time_and_those_who_waited_connect_again_without_searching() -> None:
    found = hosts()
    await found.locate(Probes("127.0.0.1"))
    probe, searches = Probes("127.0.0.3"), found.searches
    answers = await asyncio.gather(*(found.relocate(searches, probe) for _ in range(5)))
    assert answers == [True] * 5 and found.current["host"] == "127.0.0.3"
    assert probe.asked == ["127.0.0.2", "127.0.0.3"]


async def test_a_url_with_one_host_is_left_to_libpq() -> None:
    single = hosts("postgresql://postgres@/dashboard?host=/tmp/pg&port=5432")
    assert not single.several and not await single.relocate(single.searches, Probes())


def test_a_connection_names_one_address_of_the_url() -> None:
    url = "postgresql://dash:p%40ss@db1,db2:5433/dashboard?target_session_attrs=read-write"
    first = hosts(url).current
    assert psycopg2.extensions.parse_dsn(one_address(url, first)) == {
        "user": "dash", "password": "p@ss", "dbname": "dashboard", "host": "db1", "port": "", "hostaddr": "",
        "target_session_attrs": "read-write"}
    assert psycopg2.extensions.parse_dsn(one_address(url, {**first, "host": "db2", "port": "5433",
                                                           "hostaddr": "10.0.0.2"}))["hostaddr"] == "10.0.0.2"
