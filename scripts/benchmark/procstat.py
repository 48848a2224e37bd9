"""Readings from /proc: process-tree CPU and memory, machine load, and what machine this is."""
from __future__ import annotations

import os
import platform
from pathlib import Path

TICKS = os.sysconf("SC_CLK_TCK")


def _stat_fields(pid: int) -> list[str] | None:
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return text[text.rindex(")") + 2:].split()  # after "pid (comm) "; comm may hold spaces


def tree(root: int) -> list[int]:
    """root and all its descendants."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            fields = _stat_fields(int(entry))
            if fields is not None:
                children.setdefault(int(fields[1]), []).append(int(entry))
    found, todo = [], [root]
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo.extend(children.get(pid, []))
    return found


def alive(pid: int) -> bool:
    """The process exists and is not a zombie."""
    fields = _stat_fields(pid)
    return fields is not None and fields[0] != "Z"


def cpu_seconds(roots: list[int]) -> float:
    """user + system CPU time of every process under the roots."""
    total = 0
    for root in roots:
        for pid in tree(root):
            fields = _stat_fields(pid)
            if fields is not None:
                total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / TICKS


def _status_kib(pid: int, key: str) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def rss_kib(roots: list[int]) -> int:
    return sum(_status_kib(pid, "VmRSS") for root in roots for pid in tree(root))


def peak_rss_kib(roots: list[int]) -> int:
    """VmHWM summed over the process tree (each process's own peak)."""
    return sum(_status_kib(pid, "VmHWM") for root in roots for pid in tree(root))


def machine_jiffies() -> tuple[int, int]:
    """(busy, total) CPU jiffies of the whole machine so far."""
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = values[3] + values[4]
    return sum(values) - idle, sum(values)


def loadavg() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def machine() -> dict[str, str | int]:
    model = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                  if line.startswith("model name")), platform.processor())
    memory = _meminfo_kib("MemTotal")
    return {"cpu": model, "cores": os.cpu_count() or 0, "memory_gib": round(memory / 1024 / 1024, 1),
            "kernel": platform.release(), "python": platform.python_version()}


def _meminfo_kib(key: str) -> int:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    return 0


class CpuWindow:
    """CPU used by the server, the database and the whole machine between start() and stop()."""

    def __init__(self, server: list[int], database: list[int]) -> None:
        self.server, self.database = server, database

    def start(self) -> None:
        self._begin = (cpu_seconds(self.server), cpu_seconds(self.database), machine_jiffies())

    def stop(self, seconds: float) -> dict[str, float]:
        server, database, (busy, total) = cpu_seconds(self.server), cpu_seconds(self.database), machine_jiffies()
        cores = os.cpu_count() or 1
        return {
            "server_cpu": round((server - self._begin[0]) / seconds, 3),      # cores busy
            "db_cpu": round((database - self._begin[1]) / seconds, 3),
            "machine_cpu": round(cores * (busy - self._begin[2][0]) / max(1, total - self._begin[2][1]), 3),
        }
