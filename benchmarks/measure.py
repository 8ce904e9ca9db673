"""Driving one run (a burst, or starts at a fixed rate) and the figures it yields:
throughput, latency percentiles and CPU per command of every process."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from typing import Any

from benchmarks.driver import Starter, Watcher, offered
from benchmarks.processes import CpuMeter


def percentile(ordered: list[float], q: float) -> float:
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def latency(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)
    return {
        "p50_ms": round(statistics.median(ordered), 1),
        "p99_ms": round(percentile(ordered, 0.99), 1),
        "max_ms": round(ordered[-1], 1),
    }


def drive(
    starter: Starter,
    watcher: Watcher,
    records: list[tuple[str, bytes]],
    rate: float | None,
    meter: CpuMeter,
    commands_per_workflow: int,
    alive: Callable[[], Any] | None = None,
    timeout: float = 600.0,
) -> dict[str, Any]:
    """Start `records` (all at once, or at `rate` per second), wait for every completion
    and check it. Returns the run's figures; raises when a workflow failed or is
    missing."""
    ids = [instance_id for instance_id, _ in records]
    watcher.expect(ids)
    meter.begin()
    began = time.time()
    if rate is None:
        # As a client's start_many does: each thousand acknowledged before the next.
        for chunk in range(0, len(records), 1000):
            starter.send(records[chunk : chunk + 1000])
            starter.flush()
        start_rate = len(records) / max(1e-9, time.time() - began)
    else:
        start_rate = offered(starter, records, rate)
    if not watcher.wait(timeout, alive):
        raise RuntimeError(f"{watcher.missing()} of {len(ids)} workflows did not complete")
    cpu = meter.end()
    done = watcher.done
    failed = [(i, done[i].detail) for i in ids if not done[i].ok]
    if failed:
        raise RuntimeError(f"{len(failed)} workflows gave a wrong result, e.g. {failed[:3]}")
    produced = starter.produced_at
    first = min(produced[i] for i in ids)
    last = max(done[i].read_at for i in ids)
    wall = last - first
    latencies = [(done[i].read_at - produced[i]) * 1000 for i in ids]
    first_id = min(ids, key=lambda i: produced[i])
    n = len(ids)
    commands = n * commands_per_workflow
    figures: dict[str, Any] = {
        "workflows": n,
        "wall_s": round(wall, 3),
        "start_rate_per_s": round(start_rate, 1),
        "workflows_per_s": round(n / wall, 1),
        "commands_per_s": round(commands / wall, 1),
        "latency": latency(latencies),
        "first_started_latency_ms": round((done[first_id].read_at - produced[first_id]) * 1000, 1),
        "first_completion_after_s": round(min(done[i].read_at for i in ids) - first, 3),
        "cpu_s": cpu,
        "cpu_us_per_command": {
            name: round(seconds * 1e6 / commands, 1) for name, seconds in cpu.items()
        },
    }
    return figures
