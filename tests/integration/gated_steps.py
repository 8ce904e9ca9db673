"""Two workflows for worker offset tests: `gated` runs a step that waits for the file
GATED_GATE, `quick` a step that returns at once. Each step appends a line to the file
named by GATED_RUNS ("slow" or "quick") every time it runs."""

from __future__ import annotations

import os
import time
from pathlib import Path

import replayflow as rf


def _ran(what: str) -> None:
    with open(os.environ["GATED_RUNS"], "a", encoding="utf-8") as out:
        out.write(what + "\n")


@rf.step(name="gated.slow")
def slow() -> str:
    _ran("slow")
    gate = Path(os.environ["GATED_GATE"])
    deadline = time.monotonic() + 120
    while not gate.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    return "slow done"


@rf.step(name="gated.quick")
def quick() -> str:
    _ran("quick")
    return "quick done"


@rf.workflow(name="gated")
async def gated(ctx: rf.Context) -> str:
    return str(await ctx.step("slow", slow))


@rf.workflow(name="quick")
async def quick_flow(ctx: rf.Context) -> str:
    return str(await ctx.step("quick", quick))
