"""The front door, before any work: the Host checked against allowed_hosts (Django's ALLOWED_HOSTS),
and the client's address and scheme taken from X-Forwarded-For/-Proto only from trusted_proxies."""
from __future__ import annotations

import ipaddress
import logging
import re

from aiohttp import web
from aiohttp.typedefs import Middleware

from server.config import Config, allowed_hosts, host_name, networks
from server.errors import BadRequest
from server.web.http import Handler, error_response

log = logging.getLogger(__name__)

# Django's host_validation_re: a name or a bracketed IPv6 address, then an optional port.
HOST_SHAPE = re.compile(r"([a-z0-9.-]+|\[[a-f0-9]*:[a-f0-9.:]+\])(:[0-9]+)?")
# The real client's address, set on a request relayed by a trusted proxy (the access log reads it:
# aiohttp logs the request it received, not the copy the handlers saw).
CLIENT = web.RequestKey("client", str)
Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class DisallowedHost(BadRequest):
    """A Host this server does not answer for: Django's 400 "Bad Request", before anything else."""

    def __init__(self) -> None:
        super().__init__(["Bad Request (400)"])


class HostRule:
    """ALLOWED_HOSTS matching: `*`, an exact name, or `.example.org` for it and its subdomains."""

    def __init__(self, patterns: tuple[str, ...]) -> None:
        self.anything = "*" in patterns
        self.exact = frozenset(pattern for pattern in patterns if not pattern.startswith("."))
        self.suffixes = tuple(pattern for pattern in patterns if pattern.startswith("."))

    def allows(self, host: str) -> bool:
        """Whether a Host header (port ignored, as Django does) is one of ours."""
        found = HOST_SHAPE.fullmatch(host.lower())
        if found is None:  # malformed (`evil; script-src *`): refused even with `*`, as Django does
            return False
        domain = found.group(1).removesuffix(".")
        return (self.anything or domain in self.exact
                or any(domain.endswith(suffix) or domain == suffix[1:] for suffix in self.suffixes))


def forwarded_client(peer: str, header: str, proxies: list[Network]) -> str:
    """The rightmost X-Forwarded-For address that is not a trusted proxy (walking from the right), or
    the leftmost when all are; "unknown" when a trusted proxy vouched for something not an address."""
    client = peer
    for item in reversed(header.split(",")):
        try:
            address = ipaddress.ip_address(item.strip())
        except ValueError:
            return "unknown"  # no address: not allowed /metrics, throttled together, logged as such
        client = str(address)  # normalised: a client-written header never reaches a log as written
        if not any(address in network for network in proxies):
            return client
    return client


def trusted(peer: str | None, proxies: list[Network]) -> bool:
    try:
        address = ipaddress.ip_address(peer or "")
    except ValueError:
        return False  # a Unix socket peer: no address to trust
    return any(address in network for network in proxies)


def front_door(config: Config) -> Middleware:
    """The outermost middleware: a relayed request becomes the client's own (remote, scheme), then
    a foreign Host gets 400 before authentication, the /ws/ upgrade or the login throttle."""
    hosts, proxies = HostRule(allowed_hosts(config)), networks(config.trusted_proxies)
    bind_host = host_name(config.host)  # Django uses SERVER_NAME when there is no Host header

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        changes: dict[str, str] = {}
        if proxies and trusted(request.remote, proxies):
            if forwarded := request.headers.get("X-Forwarded-For"):
                changes["remote"] = request[CLIENT] = forwarded_client(request.remote or "", forwarded, proxies)
            scheme = request.headers.get("X-Forwarded-Proto", "").rpartition(",")[2].strip().lower()
            if scheme in ("http", "https"):
                changes["scheme"] = scheme
        host = request.headers.get("Host")
        if host is None:
            changes["host"] = host = bind_host
        if not hosts.allows(host):
            log.warning("refused: the Host %.100r is not in allowed_hosts", host)
            return error_response(DisallowedHost())
        return await handler(request.clone(**changes) if changes else request)

    return middleware
