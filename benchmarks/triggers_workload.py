"""The workflow the schedule benchmark starts: it ends at once (no step, so no worker),
so each slot costs what the schedule costs: a fire, a start, an end reported back."""

from __future__ import annotations

import replayflow as rf


@rf.workflow(name="bench-scheduled")
async def scheduled(ctx: rf.Context) -> None:
    return None
