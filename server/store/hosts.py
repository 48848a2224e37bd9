"""Which host of a multi-host database URL connections go to, and finding the one that accepts after a failover.

libpq tries the hosts of `postgresql://u@h1:p1,h2:p2/db?target_session_attrs=read-write` in turn,
on a new socket for each (a host that refuses, or that target_session_attrs rejects: a standby).
aiopg watches only the socket libpq opened first, so a connection that moves on to the next host is
never seen again: asyncio's epoll fails with ENOENT, uvloop waits until the timeout. That is why the
server never found a promoted standby. So here every connection names one address, as psycopg 3
does; when connecting to it fails, `relocate` tries the URL's addresses in turn, each with the URL's
own target_session_attrs, and the first that accepts becomes the one. A URL with one host is left
exactly as it is (libpq's own handling, one socket).
"""
from __future__ import annotations

import asyncio
import ipaddress
import logging
import socket
from typing import Awaitable, Callable, Mapping

log = logging.getLogger(__name__)

Attempt = Mapping[str, str]  # libpq parameters naming one address: host, port, hostaddr
Probe = Callable[[Attempt], Awaitable[None]]  # connects with them; raises when it cannot


def _split(value: str | None, count: int) -> list[str]:
    """libpq's comma lists: one value per host, or a single value for every host."""
    values = (value or "").split(",")
    return values * count if len(values) == 1 else values


class Hosts:
    """The address connections go to now (`current`), from libpq parameters parsed from the URL."""

    def __init__(self, params: Mapping[str, str]) -> None:
        names = (params.get("host") or "").split(",")
        ports = _split(params.get("port"), len(names))
        addresses = _split(params.get("hostaddr"), len(names))
        self._listed = [{"host": name, "port": port, "hostaddr": address}
                        for name, port, address in zip(names, ports, addresses)]
        self.several = len(self._listed) > 1
        self.current: Attempt = self._listed[0]
        self._position = 0       # the entry of _listed that current comes from
        self.searches = 0        # completed: read before connecting, given to relocate() if that fails
        self._lock = asyncio.Lock()
        self.refusals: list[str] = []  # why each address was passed over in the last search

    def names(self) -> str:
        return ", ".join(f"{entry['host']}:{entry['port']}" for entry in self._listed)

    async def locate(self, probe: Probe) -> bool:
        """The first address, in the URL's order, that accepts (at start: no host is known to fail)."""
        async with self._lock:
            return await self._search(probe, 0, announce=False)

    async def relocate(self, searches: int, probe: Probe) -> bool:
        """After a connect started when `searches` searches were done failed: whether to connect once
        more, to `current` (another search finished since, or this one found an address that accepts)."""
        if not self.several:
            return False
        async with self._lock:  # one search at a time; those who waited retry on its result
            if searches != self.searches:
                return True
            # The failed host last: one that does not answer at all then costs nothing the first time.
            return await self._search(probe, self._position + 1, announce=True)

    async def _search(self, probe: Probe, start: int, announce: bool) -> bool:
        self.refusals = []
        try:
            for offset in range(len(self._listed)):
                position = (start + offset) % len(self._listed)
                for attempt in await self._addresses(self._listed[position]):
                    try:
                        await probe(attempt)
                    except Exception as exc:  # refused, unreachable, read-only, timed out: the next one
                        reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
                        self.refusals.append(f"{attempt['host']}:{attempt['port']}: {reason}")
                        continue
                    if announce and attempt != self.current:
                        log.warning("database: connections go to %s:%s now", attempt["host"], attempt["port"])
                    self.current, self._position = attempt, position
                    return True
            return False
        finally:
            self.searches += 1

    @staticmethod
    async def _addresses(entry: Attempt) -> list[Attempt]:
        """One attempt per address: libpq would try a name's addresses on one socket each."""
        host = entry["host"]
        if entry["hostaddr"] or not host or host.startswith("/") or _is_address(host):
            return [entry]
        try:
            found = await asyncio.get_running_loop().getaddrinfo(host, entry["port"] or 5432,
                                                                 type=socket.SOCK_STREAM)
        except OSError:  # libpq will fail to resolve it too, and say so
            return [entry]
        addresses = dict.fromkeys(str(info[4][0]) for info in found)  # in order, once each
        return [{**entry, "hostaddr": address} for address in addresses]


def _is_address(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True
