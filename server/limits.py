"""Limits on what one client may take: socket caps at the handshake, a request-rate bucket per socket."""
from __future__ import annotations

import contextlib
import math
import time
from collections import Counter
from typing import Any, Callable

from aiohttp import WSCloseCode, WSMsgType, web

from server.config import Config
from server.httpjson import detail_error
from server.protocol import FrameError, encode, envelope, parse_frame
from server.throttle import Throttled

TOO_MANY_SOCKETS = "Too many connections, try again later."
TOO_MANY_FOR_USER = "Too many connections for this user."
CLOSE_POLICY = WSCloseCode.POLICY_VIOLATION  # 1008: sustained abuse of the request rate


class SocketCounter:
    """Open sockets of this process, in total and per user; one instance per app."""

    def __init__(self, total: int, per_user: int) -> None:
        self.total, self.per_user = total, per_user
        self.open: Counter[int] = Counter()

    def claim(self, user_id: int) -> Callable[[], None]:
        """Take one socket slot, or refuse (503 in total, 429 for this user) before the upgrade.

        Returns the function that gives the slot back (calling it again does nothing)."""
        if sum(self.open.values()) >= self.total:
            raise detail_error(web.HTTPServiceUnavailable, TOO_MANY_SOCKETS)
        if self.open[user_id] >= self.per_user:
            raise detail_error(web.HTTPTooManyRequests, TOO_MANY_FOR_USER)
        self.open[user_id] += 1
        released = False

        def release() -> None:
            nonlocal released
            if not released:
                released = True
                self.open[user_id] -= 1
                if not self.open[user_id]:
                    del self.open[user_id]

        return release


class RequestBucket:
    """A token bucket: `rate` tokens a second, holding at most `burst`; starts full."""

    def __init__(self, rate: float, burst: int) -> None:
        self.rate, self.burst = rate, burst
        self.tokens = float(burst)
        self.stamp = time.monotonic()

    def take(self) -> float:
        """Spend one token: 0.0 if there was one, else the seconds until there will be."""
        now = time.monotonic()
        self.tokens = min(self.burst, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        if self.tokens >= 1:
            self.tokens -= 1
            return 0.0
        return (1 - self.tokens) / self.rate if self.rate > 0 else math.inf


class Refusal:
    """What to do with a frame the bucket refused: answer `reply`, or close the socket when `close`."""

    def __init__(self, reply: str | None = None, close: bool = False) -> None:
        self.reply, self.close = reply, close


class FrameThrottle:
    """Per socket: checked on every received frame, before it is parsed for dispatch."""

    def __init__(self, config: Config) -> None:
        self.bucket = RequestBucket(config.requests_per_second, config.request_burst)
        self.close_after = config.throttle_close_after
        self.refused_in_a_row = 0

    def check(self, message: Any) -> Refusal | None:
        """None lets the frame through; a Refusal carries the 429 envelope or the order to close 1008."""
        wait = self.bucket.take()
        if not wait:
            self.refused_in_a_row = 0
            return None
        self.refused_in_a_row += 1
        if self.refused_in_a_row >= self.close_after:
            return Refusal(close=True)
        return Refusal(reply=throttled_reply(message, wait))


def throttled_reply(message: Any, wait: float) -> str:
    """The 429 envelope, echoing the frame's stream, action and request_id when it has them."""
    detail = Throttled(max(1, math.ceil(wait)) if math.isfinite(wait) else 86400).detail
    stream, payload = None, {}
    if message.type == WSMsgType.TEXT:
        with contextlib.suppress(FrameError):
            stream, payload = parse_frame(message.data)
    return encode(stream, envelope(429, errors=[detail], action=payload.get("action"),
                                   request_id=payload.get("request_id")))


def server_options(config: Config) -> dict[str, Any]:
    """Keyword arguments for aiohttp's server: a connection that sends no request in time is dropped."""
    return {"keepalive_timeout": config.handshake_timeout_seconds}
