"""`serve --workers N`: N spawned processes listening on one port (SO_REUSEPORT), watched by this one.

The parent has already resolved the database (and started the embedded one). It reserves the port,
starts the workers, tells systemd READY=1 once every worker serves, WATCHDOG=1 while every worker's
event loop still reports in, and on SIGTERM/SIGINT says STOPPING=1, forwards SIGTERM and waits.
A worker that dies unexpectedly (SIGKILL, the OOM killer) is replaced on the same port while the
others keep their sockets, after a short backoff that doubles with each recent death; a crash loop
(CRASH_LOOP: 5 deaths in 60 s) stops the whole service with exit status 1, so that systemd's
Restart=on-failure restarts it cleanly and the journal shows it, rather than this process hiding
the loop. Live changes stay consistent across workers because they flow through PostgreSQL
(LISTEN/NOTIFY), not between the processes.
"""
from __future__ import annotations

import collections
import ctypes
import dataclasses
import logging
import multiprocessing
import multiprocessing.connection
import os
import shutil
import signal
import socket
import sys
import tempfile
import time
from multiprocessing.process import BaseProcess
from typing import TYPE_CHECKING, Any

from server.ops.notify import notify, watchdog_interval

if TYPE_CHECKING:
    from server.ops.serving import ServeSpec

log = logging.getLogger(__name__)

PR_SET_PDEATHSIG = 1  # <linux/prctl.h>
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)
STOP_DEADLINE = 12.0  # seconds before stragglers get SIGKILL; the unit's TimeoutStopSec is 15
CRASH_LOOP = (5, 60.0)  # this many deaths within these seconds stop the service (systemd decides then)
RESTART_BACKOFF = 0.1   # seconds before replacing a dead worker, doubled for each recent death


def cpu_count() -> int:
    return len(os.sched_getaffinity(0)) or 1


def reserve_port(host: str, port: int) -> socket.socket:
    """Bind (not listen) with SO_REUSEPORT: the port is checked and held once, and 0 picks a free one.

    Checked first without SO_REUSEPORT: a port another server listens on (ours with its own
    SO_REUSEPORT included, which the kernel would otherwise let us share) is refused."""
    family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM,
                                                         flags=socket.AI_PASSIVE)[0]
    if port:
        with socket.socket(family, kind, proto) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            probe.bind(address)
    sock = socket.socket(family, kind, proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    try:
        sock.bind(address)
    except OSError:
        sock.close()
        raise
    return sock  # never listens, so the kernel hands it no connections


def run_worker(spec: ServeSpec, log_format: str, channel: multiprocessing.connection.Connection) -> None:
    """A worker's main (in a fresh interpreter): serve, reporting READY/WATCHDOG to the parent, not systemd."""
    from server.ops.logs import configure_logging
    from server.ops.serving import run, serve
    from server.store.db import DatabaseUnavailable

    for name in ("NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID"):
        os.environ.pop(name, None)  # only the main process may talk to systemd
    stop_with_parent()
    configure_logging(log_format)

    def report(message: str) -> None:
        try:
            channel.send_bytes(message.encode())
        except OSError:
            pass  # the parent is gone; PR_SET_PDEATHSIG has already asked us to stop

    try:
        run(serve(spec, report))
    except (DatabaseUnavailable, OSError, ValueError) as exc:  # ValueError: e.g. a bad server secret
        print(f"dashboard-server: worker {os.getpid()}: {exc}", file=sys.stderr, flush=True)
        sys.exit(1)


def stop_with_parent() -> None:
    """Get SIGTERM if the parent dies, even by SIGKILL: an orphaned worker would hold the port forever."""
    try:
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    except (OSError, AttributeError):  # not Linux: systemd's KillMode still cleans up
        return
    if os.getppid() == 1:  # the parent died before prctl took effect
        os.kill(os.getpid(), signal.SIGTERM)


class Supervisor:
    """The parent's bookkeeping: which workers are ready, when each last reported in, which died."""

    def __init__(self, spec: ServeSpec, count: int, log_format: str) -> None:
        self.spec, self.log_format, self.watchdog = spec, log_format, spec.watchdog
        self.processes: list[BaseProcess] = []
        self.channels: list[Any] = []
        for index in range(count):
            process, channel = start_worker(spec, index, log_format)
            self.processes.append(process)
            self.channels.append(channel)
        self.ready: set[int] = set()
        self.last_seen = [time.monotonic()] * count
        self.announced = False
        self.last_ping = 0.0
        self.deaths: collections.deque[float] = collections.deque(maxlen=CRASH_LOOP[0])

    def died(self, index: int) -> bool:
        """A worker exited unexpectedly: replace it; False (stop the service) for a crash loop."""
        dead = self.processes[index]
        dead.join(0)
        now = time.monotonic()
        self.deaths.append(now)
        if len(self.deaths) == self.deaths.maxlen and now - self.deaths[0] < CRASH_LOOP[1]:
            log.error("worker %s exited unexpectedly (status %s): %d deaths in %g s, stopping the service",
                      dead.pid, dead.exitcode, len(self.deaths), CRASH_LOOP[1])
            return False
        recent = sum(1 for death in self.deaths if now - death < CRASH_LOOP[1])
        time.sleep(RESTART_BACKOFF * 2 ** (recent - 1))  # at most 0.8 s, before the crash loop stops it all
        spec = dataclasses.replace(self.spec, replacement=True)
        self.processes[index], self.channels[index] = start_worker(spec, index, self.log_format)
        self.last_seen[index] = now
        self.ready.discard(index)
        log.error("worker %s exited unexpectedly (status %s): replaced by worker %s",
                  dead.pid, dead.exitcode, self.processes[index].pid)
        return True

    def receive(self, index: int) -> bool:
        """Take one report from a worker; False at end of file (it exited: its sentinel says how)."""
        try:
            message = self.channels[index].recv_bytes()
        except (EOFError, OSError):
            return False
        self.last_seen[index] = time.monotonic()
        if message == b"READY=1":
            if self.announced:
                log.info("worker %s serving", self.processes[index].pid)
            self.ready.add(index)
        return True

    def tell_systemd(self, status: str) -> None:
        """READY=1 once every worker serves; then WATCHDOG=1 while every worker's loop reports in."""
        now = time.monotonic()
        if not self.announced and len(self.ready) == len(self.processes):
            self.announced = True
            notify(f"READY=1\nSTATUS={status}")
            log.info("%d workers serving (pids %s)", len(self.processes),
                     ", ".join(str(process.pid) for process in self.processes))
        if not (self.announced and self.watchdog) or now - self.last_ping < self.watchdog:
            return
        if all(now - seen < 2 * self.watchdog for seen in self.last_seen):  # a blocked worker stops the pings
            self.last_ping = now
            notify("WATCHDOG=1")


def start_worker(spec: ServeSpec, index: int, log_format: str) -> tuple[BaseProcess, Any]:
    """One worker process and the channel it reports on."""
    context = multiprocessing.get_context("spawn")  # fresh interpreters: no inherited event loop or locks
    reader, writer = context.Pipe(duplex=False)
    process = context.Process(target=run_worker, args=(spec, log_format, writer),
                              name=f"dashboard-server worker {index}")
    process.start()
    writer.close()
    return process, reader


def serve_workers(spec: ServeSpec, count: int, log_format: str) -> int:
    """Run `count` workers until a signal (exit status 0) or a worker's unexpected death (1)."""
    from server.ops.serving import announce, cannot_listen

    try:
        reserved = reserve_port(spec.host, spec.port)
    except OSError as exc:
        raise cannot_listen(spec, exc) from None
    wakeup_read, wakeup_write = socket.socketpair()
    wakeup_write.setblocking(False)
    received: list[int] = []
    for signum in STOP_SIGNALS:
        signal.signal(signum, lambda signum, frame: received.append(signum))
    signal.set_wakeup_fd(wakeup_write.fileno(), warn_on_full_buffer=False)
    metrics_dir = tempfile.mkdtemp(prefix="dashboard-metrics-")  # private (0700) per-worker metric files
    # prometheus_client reads this when a worker imports it, before the spec reaches the worker.
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = metrics_dir
    watchdog = watchdog_interval()
    spec = dataclasses.replace(spec, port=reserved.getsockname()[1], reuse_port=True, watchdog=watchdog,
                               metrics_dir=metrics_dir, announce=False)
    announce(spec)
    try:
        return supervise(Supervisor(spec, count, log_format), wakeup_read, received,
                         f"serving on {spec.host}:{spec.port} with {count} workers")
    finally:
        signal.set_wakeup_fd(-1)
        ignore_stop_signals()
        reserved.close()
        os.environ.pop("PROMETHEUS_MULTIPROC_DIR", None)
        shutil.rmtree(metrics_dir, ignore_errors=True)


def supervise(state: Supervisor, wakeup: socket.socket, received: list[int], status: str) -> int:
    """The parent's loop: relay reports, replace dead workers, notice signals and crash loops, stop
    everyone, return the exit status."""
    watched: dict[Any, int] = {}
    for index in range(len(state.processes)):
        watch(watched, state, index)
    stopping_since: float | None = None
    failed = False
    while any(process.is_alive() for process in state.processes):
        for ready in multiprocessing.connection.wait([wakeup, *watched], timeout=min(state.watchdog or 1.0, 1.0)):
            if ready is wakeup:
                wakeup.recv(64)
            elif ready not in watched:
                continue  # the channel of a worker whose exit was handled just before, in this round
            elif isinstance(ready, int):  # a sentinel: that worker exited
                failed = exited(state, watched, watched.pop(ready), stopping_since is None and not failed) or failed
            elif not state.receive(watched[ready]):
                del watched[ready]  # end of file: the worker is exiting
        if stopping_since is None and (received or failed):
            stopping_since = begin_stop(state.processes)
        if stopping_since is None:
            state.tell_systemd(status)
        elif time.monotonic() - stopping_since > STOP_DEADLINE:
            for process in state.processes:
                process.kill()
    for process in state.processes:
        process.join()
    return 1 if failed else 0


def exited(state: Supervisor, watched: dict[Any, int], index: int, unexpected: bool) -> bool:
    """Worker `index` exited: forget its channel; if unexpectedly, replace it. True: a crash loop."""
    if watched.pop(state.channels[index], None) is not None:
        state.channels[index].close()  # its last reports do not matter: it is gone
    if not unexpected:
        return False
    if state.died(index):
        watch(watched, state, index)
        return False
    return True


def watch(watched: dict[Any, int], state: Supervisor, index: int) -> None:
    """Wait on worker `index`'s exit (its sentinel) and its reports (its channel)."""
    watched[state.processes[index].sentinel] = index
    watched[state.channels[index]] = index


def begin_stop(processes: list[BaseProcess]) -> float:
    notify("STOPPING=1")
    for process in processes:
        if process.is_alive():
            process.terminate()  # SIGTERM: each worker closes its sockets with 1001
    return time.monotonic()


def serve_processes(spec: ServeSpec, workers: int, log_format: str) -> int:
    """`serve`: in this process for one worker (tests, scripts/run may ask for it), else a supervisor."""
    if workers > 1:
        return serve_workers(spec, workers, log_format)
    from server.ops.serving import run, serve

    try:
        run(serve(dataclasses.replace(spec, watchdog=watchdog_interval()), notify))
    finally:
        ignore_stop_signals()
    return 0


def ignore_stop_signals() -> None:
    """Once stopping, a second SIGTERM must not cut short what follows (stopping the embedded PostgreSQL)."""
    for signum in STOP_SIGNALS:
        signal.signal(signum, signal.SIG_IGN)
