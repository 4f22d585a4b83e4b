"""Process trees, their memory and CPU time, read from Linux ``/proc`` (no extra dependency).

Used to kill every process of one local Ray node and to measure the peak resident memory (RSS) of
each Ray worker process while a stage runs, and the CPU seconds of groups of processes (benchmarks).
"""
from __future__ import annotations

import os
import threading
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Callable


def _stat(pid: int) -> list[str] | None:
    """The fields of ``/proc/PID/stat`` from the third (state) on, or None if ``pid`` is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    return stat[stat.rindex(")") + 2:].split()  # the name may contain spaces and brackets


def _parent(pid: int) -> int | None:
    """The parent pid of ``pid``, or None if it is gone."""
    fields = _stat(pid)
    return int(fields[1]) if fields else None


def children(pid: int) -> list[int]:
    """Every live descendant of ``pid`` (children, grandchildren, ...)."""
    parents: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit() and (parent := _parent(int(entry))) is not None:
            parents.setdefault(parent, []).append(int(entry))
    found, todo = [], [pid]
    while todo:
        for child in parents.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def cpu_seconds(pid: int) -> float:
    """CPU time (user + system) ``pid`` has used so far, its own (not its children's); 0 if it is gone."""
    fields = _stat(pid)
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK") if fields else 0.0  # utime, stime


def memory_bytes(pid: int) -> tuple[int, int]:
    """``(resident, resident shared memory)`` of ``pid`` in bytes; (0, 0) if it is gone.

    Resident shared memory (``RssShmem``) is mostly Ray's object store mapped into the process: it
    is bounded by the store's size (and spilled beyond it), not by what the process itself holds.
    """
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return 0, 0
    fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
    kib = lambda key: int(fields.get(key, "0 kB").split()[0]) * 1024  # noqa: E731
    return kib("VmRSS"), kib("RssShmem")


def command_line(pid: int) -> str:
    """The process title (Ray workers set it to ``ray::TaskName``); '' if gone."""
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return ""


class Sampler(ABC):
    """Calls :meth:`sample` every ``interval`` s in a thread while the ``with`` block runs, and once more
    at its end. Subclasses say what a sample records."""

    def __init__(self, interval: float) -> None:
        self.interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    @abstractmethod
    def sample(self) -> None:
        """Record what the subclass measures, once, now."""

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.sample()

    def __enter__(self):
        self.sample()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.sample()


class PeakRSS(Sampler):
    """Sample the memory of every descendant of ``roots`` every ``interval`` s; keep each process's peaks.

    ``with PeakRSS([pid]) as peaks: ...`` then ``peaks.peak`` maps pid → (peak private bytes, peak
    resident bytes, command line), private = resident − resident shared memory (the object store
    pages a Ray worker maps). Sampling misses peaks shorter than ``interval``; 0.1 s is enough for
    stages whose work items take seconds.
    """

    def __init__(self, roots: list[int], interval: float = 0.1) -> None:
        super().__init__(interval)
        self.roots = roots
        self.peak: dict[int, tuple[int, int, str]] = {}

    def sample(self) -> None:
        for root in self.roots:
            for pid in [root, *children(root)]:
                rss, shared = memory_bytes(pid)
                private, resident, title = self.peak.get(pid, (0, 0, ""))
                now = command_line(pid)[:120]
                if now and "IDLE" not in now:  # a Ray worker's title names the task it runs, when it runs one
                    title = now
                self.peak[pid] = (max(private, rss - shared), max(resident, rss), title or now)


class CPUTime(Sampler):
    """Sample the CPU time of processes every ``interval`` s and add it up by group.

    ``groups()`` maps each pid to watch to its group name at the time of a sample (processes come and
    go); the last CPU time seen of each pid counts, so a process's time up to its last sample is kept
    after it exits (what its final ``interval`` used is missed). ``with CPUTime(groups) as cpu: ...``
    then ``cpu.totals()``: group → CPU seconds.
    """

    def __init__(self, groups: Callable[[], dict[int, str]], interval: float = 0.5) -> None:
        super().__init__(interval)
        self.groups = groups
        self.last: dict[int, tuple[str, float]] = {}

    def sample(self) -> None:
        for pid, group in self.groups().items():
            used = cpu_seconds(pid)
            if used:
                self.last[pid] = (group, used)

    def totals(self) -> dict[str, float]:
        totals: dict[str, float] = {}
        for group, used in self.last.values():
            totals[group] = totals.get(group, 0.0) + used
        return totals
