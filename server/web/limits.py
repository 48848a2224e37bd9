"""Limits on what one client may take: socket caps at the handshake, a request-rate bucket per socket."""
from __future__ import annotations

import math
import time
from collections import Counter
from typing import Callable

from server.config import Config
from server.errors import Throttled, TooManyConnections

TOO_MANY_SOCKETS = "Too many connections, try again later."
TOO_MANY_FOR_USER = "Too many connections for this user."


class SocketCounter:
    """Open sockets of this process, in total and per user; one instance per app."""

    def __init__(self, total: int, per_user: int) -> None:
        self.total, self.per_user = total, per_user
        self.open: Counter[int] = Counter()
        self.count = 0  # sum(self.open.values()), kept rather than summed at every handshake

    def claim(self, user_id: int) -> Callable[[], None]:
        """Take one socket slot, or refuse (503 in total, 429 for this user) before the upgrade.

        Returns the function that gives the slot back (calling it again does nothing)."""
        if self.count >= self.total:
            raise TooManyConnections(503, TOO_MANY_SOCKETS)
        if self.open[user_id] >= self.per_user:
            raise TooManyConnections(429, TOO_MANY_FOR_USER)
        self.open[user_id] += 1
        self.count += 1
        released = False

        def release() -> None:
            nonlocal released
            if not released:
                released = True
                self.count -= 1
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


class FrameThrottle:
    """Per socket: checked on every received frame, before it is parsed for dispatch."""

    def __init__(self, config: Config) -> None:
        self.bucket = RequestBucket(config.requests_per_second, config.request_burst)
        self.close_after = config.throttle_close_after
        self.refused_in_a_row = 0

    def check(self) -> Throttled | None:
        """None lets the frame through; else the 429 that answers it (or see `abusive`)."""
        wait = self.bucket.take()
        if not wait:
            self.refused_in_a_row = 0
            return None
        self.refused_in_a_row += 1
        return Throttled(wait)

    @property
    def abusive(self) -> bool:
        """So many frames refused in a row that the socket is closed (1008) instead."""
        return self.refused_in_a_row >= self.close_after
