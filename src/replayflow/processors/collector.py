"""Garbage collection for the long-running loops (orchestrator and worker).

The fold allocates tens of small objects per command, and the cached states of running
instances survive long enough to be promoted: with CPython's default thresholds the
middle and oldest generations were collected again and again, each time walking every
cached state (some 15 % of the orchestrator's CPU, benchmarks/foldbench.py). The loops
hold little cyclic garbage (states, decisions and records are freed by reference
counting), so: start-up objects are frozen out of collection, the young generation
is collected as usual (it finds the odd cycle quickly), the older ones only when the
loop has nothing to do, at most once a minute, so no batch waits on a full pass.
"""

from __future__ import annotations

import gc
import time

#: Young-generation threshold: allocations (net) between collections of it.
YOUNG = 2000
#: The older generations are collected by `idle()` only.
RARE = 1000


def settle() -> None:
    """After start-up: what exists now lives as long as the process."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(YOUNG, RARE, RARE)


class IdleCollector:
    def __init__(self, interval: float = 60.0) -> None:
        self.interval = interval
        self._last = time.monotonic()

    def idle(self) -> None:
        """The loop found nothing to do: a full collection now costs no one a wait."""
        now = time.monotonic()
        if now - self._last >= self.interval:
            gc.collect()
            self._last = time.monotonic()
