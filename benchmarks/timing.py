"""The one timing rule every benchmark uses: one warm-up call, then the best of ``repeats`` calls.

Benchmarks run as scripts (``python benchmarks/NAME.py``), so this file imports as ``timing``.
"""
from __future__ import annotations

import time
from typing import Callable


def best_ms(fn: Callable[[], object], repeats: int) -> float:
    """Milliseconds of the fastest of ``repeats`` calls of ``fn`` after one warm-up call."""
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return 1000 * min(times)
