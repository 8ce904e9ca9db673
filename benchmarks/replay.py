"""`make bench-replay`: the cost of replaying a recorded history, by its length.

A workflow of N sequential steps is run once in the in-memory test engine
(replayflow.testing.Environment) to record its history; `replay()` then folds that
history again, and is timed. Goal: replay is linear in the history's length, 5,000
steps in at most 2 s.

Two ways of replaying are timed in the same run, on the same histories:

  cached   replay() as it is: one Decider keeps the workflow's coroutine alive from
           one decision to the next, as the live fold does (O(n)).
  rebuilt  a Decider without a coroutine cache, so every decision re-runs the workflow
           from its start over the recorded calls (O(n^2)): how replay() worked before.
           Timed up to --rebuilt-max steps (default 1,000; 5,000 takes minutes).

Prints one line per measurement and writes benchmarks/results/replay.json; exits 1
when a check fails (the goal, or a replay that is not identical).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT))

import replayflow as rf  # noqa: E402
from benchmarks.report import write_report  # noqa: E402
from replayflow.core.decide import Decider  # noqa: E402
from replayflow.core.messages import HistoryEvent  # noqa: E402
from replayflow.core.replay import replay  # noqa: E402
from replayflow.testing import Environment  # noqa: E402

SIZES = (250, 1_000, 5_000)
GOAL_STEPS = 5_000
GOAL_SECONDS = 2.0


@rf.step(name="bench_replay_add")
def add(x: int) -> int:
    return x + 1


@rf.workflow(name="bench_replay_chain")
async def chain(ctx: rf.Context, n: int) -> int:
    x = 0
    for _ in range(n):
        x = await ctx.step("add", add, x)
    return x


REGISTRY = rf.Registry.of(chain, add)


def record(steps: int) -> list[HistoryEvent]:
    env = Environment(chain)
    handle = env.start(chain, steps, id=f"chain-{steps}")
    assert handle.result() == steps
    return env.history(handle.id)


def timed(history: list[HistoryEvent], decider: Decider | None) -> tuple[float, bool]:
    started = time.perf_counter()
    report = replay(history, REGISTRY, decider)
    return time.perf_counter() - started, report.identical


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=list(SIZES))
    parser.add_argument(
        "--rebuilt-max",
        type=int,
        default=1_000,
        help="time the rebuilt (old, quadratic) path up to this many steps",
    )
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks/results/replay.json")
    args = parser.parse_args()

    rows: list[dict[str, Any]] = []
    failures: list[str] = []
    for steps in args.sizes:
        history = record(steps)
        row: dict[str, Any] = {"steps": steps, "events": len(history)}
        seconds, identical = timed(history, None)
        row["cached_s"] = round(seconds, 4)
        if not identical:
            failures.append(f"{steps} steps: the cached replay is not identical")
        if steps <= args.rebuilt_max:
            seconds, identical = timed(history, Decider(REGISTRY, cache_size=0))
            row["rebuilt_s"] = round(seconds, 4)
            if not identical:
                failures.append(f"{steps} steps: the rebuilt replay is not identical")
        rows.append(row)
        rebuilt = f"  rebuilt {row['rebuilt_s']:8.3f} s" if "rebuilt_s" in row else ""
        print(
            f"replay {steps:>6} steps ({row['events']:>6} events): "
            f"cached {row['cached_s']:7.3f} s{rebuilt}",
            flush=True,
        )

    goal = next((r for r in rows if r["steps"] == GOAL_STEPS), None)
    if goal is None:
        failures.append(f"no measurement of {GOAL_STEPS} steps (the goal's size)")
    elif goal["cached_s"] > GOAL_SECONDS:
        failures.append(
            f"{GOAL_STEPS} steps replayed in {goal['cached_s']:.2f} s, over {GOAL_SECONDS} s"
        )
    # Linear: the time per event may not grow much with the length. Quadratic growth
    # is 20x from 250 to 5,000 steps; 4x leaves room for noise and for the one copy of
    # the calls list each decision still makes (see the module docstring of replay).
    per_event = [r["cached_s"] / r["events"] for r in rows if r["cached_s"] > 0]
    if len(per_event) > 1 and per_event[-1] > 4 * min(per_event):
        failures.append(
            "the time per event grows with the history's length: "
            + ", ".join(f"{r['steps']}: {r['cached_s'] / r['events'] * 1e6:.1f} us" for r in rows)
        )

    result = {
        "goal": {"steps": GOAL_STEPS, "max_seconds": GOAL_SECONDS},
        "rows": rows,
    }
    write_report(args.out, ROOT, result, failures)
    print("bench-replay: " + ("ok" if not failures else "FAILED"))
    return 0 if not failures else 1


if __name__ == "__main__":
    sys.exit(main())
