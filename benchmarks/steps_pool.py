"""`make bench-steps`: what handing a plain step function to a thread costs the worker.

The worker runs plain (synchronous) step functions off its event loop, up to 32 at once,
with hundreds of steps in flight. This times the hand-off alone, with a step that does
nothing (n + 1), in the worker's shape: CONCURRENCY calls in flight on one event loop,
each copying its context into the thread as the worker does for a step's span.

  step-threads  processors/step_threads.StepThreads, what the worker uses
  executor      loop.run_in_executor on a ThreadPoolExecutor of the same size, what it
                used before (a concurrent.futures.Future and a loop wake-up per call)

The two alternate, ROUNDS times each, in one process. Prints CPU and wall time per call
and writes benchmarks/results/steps_pool.json; exits 1 when a call's result is wrong or
StepThreads costs more CPU per call than the executor (medians).
"""

from __future__ import annotations

import argparse
import asyncio
import contextvars
import functools
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT))

from benchmarks.report import write_report  # noqa: E402
from replayflow.processors.step_threads import StepThreads  # noqa: E402

THREADS = 32  # the worker's default
CONCURRENCY = 500  # the worker's default


def step(n: int) -> int:
    return n + 1


async def _calls(run: Callable[[int], Awaitable[int]], calls: int, concurrency: int) -> None:
    slots = asyncio.Semaphore(concurrency)

    async def one(i: int) -> None:
        async with slots:
            if await run(i) != i + 1:
                raise RuntimeError(f"call {i} came back wrong")

    await asyncio.gather(*(one(i) for i in range(calls)))


async def timed(kind: str, calls: int, concurrency: int) -> dict[str, float]:
    loop = asyncio.get_running_loop()
    if kind == "step-threads":
        threads = StepThreads(THREADS)

        def run(i: int) -> Awaitable[int]:
            return threads.run(contextvars.copy_context().run, functools.partial(step, i))

        close: Callable[[], Any] = threads.close
    else:
        pool = ThreadPoolExecutor(THREADS, thread_name_prefix="bench-step")

        def run(i: int) -> Awaitable[int]:
            return loop.run_in_executor(
                pool, contextvars.copy_context().run, functools.partial(step, i)
            )

        close = pool.shutdown
    cpu, wall = time.process_time(), time.perf_counter()
    await _calls(run, calls, concurrency)
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    close()
    return {"cpu_us_per_call": cpu * 1e6 / calls, "wall_us_per_call": wall * 1e6 / calls}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=50_000)
    parser.add_argument("--concurrency", type=int, default=CONCURRENCY)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks/results/steps_pool.json")
    args = parser.parse_args()

    runs: dict[str, list[dict[str, float]]] = {"step-threads": [], "executor": []}
    failures: list[str] = []
    for _ in range(args.rounds):
        for kind in runs:
            try:
                figures = asyncio.run(timed(kind, args.calls, args.concurrency))
            except RuntimeError as exc:
                failures.append(f"{kind}: {exc}")
                continue
            runs[kind].append(figures)
            print(
                f"{kind:>12}: {figures['cpu_us_per_call']:6.1f} us CPU, "
                f"{figures['wall_us_per_call']:6.1f} us wall per call",
                flush=True,
            )
    medians = {
        kind: {
            key: round(statistics.median(r[key] for r in rows), 2)
            for key in ("cpu_us_per_call", "wall_us_per_call")
        }
        for kind, rows in runs.items()
        if rows
    }
    if len(medians) == 2:
        ours, theirs = medians["step-threads"], medians["executor"]
        print(
            f"medians: step-threads {ours['cpu_us_per_call']} us, "
            f"executor {theirs['cpu_us_per_call']} us CPU per call"
        )
        if ours["cpu_us_per_call"] > theirs["cpu_us_per_call"]:
            failures.append("StepThreads costs more CPU per call than run_in_executor")
    result = {
        "calls": args.calls,
        "concurrency": args.concurrency,
        "threads": THREADS,
        "runs": runs,
        "medians": medians,
    }
    write_report(args.out, ROOT, result, failures)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
