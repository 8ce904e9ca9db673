"""Workflows the schedule suite starts: one that ends at once, one that runs 95 virtual
minutes (so an hourly slot comes while it runs), one that waits for an event, one that
fails; and, in a module of its own (declared.py), one declared with a schedule."""

from __future__ import annotations

from typing import Any

import replayflow as rf


@rf.workflow
async def quick(ctx: rf.Context, input: Any = None) -> Any:
    return input


@rf.workflow
async def slow(ctx: rf.Context) -> str:
    await ctx.sleep("nap", "95m")
    return "done"


@rf.workflow
async def waits(ctx: rf.Context) -> Any:
    return await ctx.wait_for_event("go")


@rf.workflow
async def broken(ctx: rf.Context) -> None:
    raise RuntimeError("boom")
