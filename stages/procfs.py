"""Process trees and their memory, read from Linux ``/proc`` (no extra dependency).

Used to kill every process of one local Ray node and to measure the peak resident memory (RSS) of
each Ray worker process while a stage runs.
"""
from __future__ import annotations

import os
import threading
from pathlib import Path

PAGE_BYTES = os.sysconf("SC_PAGE_SIZE")


def _stat(pid: int) -> tuple[int, int] | None:
    """``(parent pid, resident bytes)`` of ``pid``, or None if it is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    fields = stat[stat.rindex(")") + 2:].split()  # the name may contain spaces and brackets
    return int(fields[1]), int(fields[21]) * PAGE_BYTES


def children(pid: int) -> list[int]:
    """Every live descendant of ``pid`` (children, grandchildren, ...)."""
    parents: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit() and (st := _stat(int(entry))) is not None:
            parents.setdefault(st[0], []).append(int(entry))
    found, todo = [], [pid]
    while todo:
        for child in parents.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def rss_bytes(pid: int) -> int:
    """Resident memory of ``pid`` now (0 if it is gone)."""
    st = _stat(pid)
    return st[1] if st else 0


def command_line(pid: int) -> str:
    """The process title (Ray workers set it to ``ray::TaskName``); '' if gone."""
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return ""


class PeakRSS:
    """Sample the RSS of every descendant of ``roots`` every ``interval`` s; keep each process's peak.

    ``with PeakRSS([pid]) as peaks: ...`` then ``peaks.peak`` maps pid → (peak bytes, command line).
    Sampling misses peaks shorter than ``interval``; 0.1 s is enough for stages whose work items
    take seconds.
    """

    def __init__(self, roots: list[int], interval: float = 0.1) -> None:
        self.roots, self.interval = roots, interval
        self.peak: dict[int, tuple[int, str]] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def sample(self) -> None:
        for root in self.roots:
            for pid in [root, *children(root)]:
                rss = rss_bytes(pid)
                if rss > self.peak.get(pid, (0, ""))[0]:
                    self.peak[pid] = (rss, command_line(pid)[:120])

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.sample()

    def __enter__(self) -> "PeakRSS":
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.sample()
