"""Shared timing helpers for the benchmarks (best-of-N wall clock per call)."""

from __future__ import annotations

import time
from collections.abc import Callable


def per_call_us(fn: Callable[[], object], iterations: int, repeat: int = 5) -> float:
    """Best of ``repeat`` runs of ``iterations`` calls, in microseconds per call."""
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        for _ in range(iterations):
            fn()
        best = min(best, time.perf_counter() - t0)
    return best / iterations * 1e6
