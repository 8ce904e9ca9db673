"""The workflow of tests/integration/test_input_limits.py, for the orchestrator and worker
processes it starts (`python -m replayflow.cli orchestrator -m
tests.integration.limits_workloads`)."""

from __future__ import annotations

import json

import replayflow as rf


@rf.step(name="limits-size")
async def size_of(text: str) -> int:
    return len(text)


@rf.workflow(name="limits-echo")
async def echo(ctx: rf.Context, value: object) -> int:
    """The length of its input's JSON text: any JSON value up to the limits goes."""
    return await ctx.step("size", size_of, json.dumps(value, separators=(",", ":")))
