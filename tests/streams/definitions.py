"""Workflows and steps of the stream tests, importable by a worker process."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import replayflow as rf

QUICK_RETRY = rf.Retry(limit=3, delay="1s", backoff="constant", jitter=False)


@rf.step(name="streams_talk", retry=QUICK_RETRY)
def talk(words: list[str], fail_after: int | None = None, gate: str | None = None) -> int:
    """Writes each word to "tokens". With `fail_after`, attempt 1 fails after that
    many words. With `gate` (a file path), waits after the first word until the file
    exists: a reader proves it saw that word before the step went on."""
    stream = rf.current_step().stream("tokens")
    for index, word in enumerate(words):
        stream.write(word)
        if gate is not None and index == 0:
            deadline = time.monotonic() + 60
            while not Path(gate).exists() and time.monotonic() < deadline:
                time.sleep(0.01)
        if fail_after is not None and rf.current_step().attempt == 1 and index + 1 == fail_after:
            raise RuntimeError(f"failing after {fail_after} words on purpose")
    return len(words)


@rf.workflow(name="streams_talker")
async def talker(ctx: rf.Context, spec: dict[str, Any]) -> int:
    await ctx.stream("status").write({"phase": "started"})
    count = await ctx.step("talk", talk, spec["words"], spec.get("fail_after"), spec.get("gate"))
    await ctx.stream("status").write({"phase": "done", "words": count})
    if spec.get("close"):
        await ctx.stream("status").close()
    if spec.get("wait"):
        await ctx.wait_for_event("go")
    return count


def gate_path(directory: str, name: str) -> str:
    return os.path.join(directory, name)


def _wait_for(path: str | None) -> None:
    if path is None:
        return
    deadline = time.monotonic() + 60
    while not Path(path).exists() and time.monotonic() < deadline:
        time.sleep(0.01)


@rf.step(name="streams_verse")
def verse(part: str, words: list[str], gates: dict[str, str] | None = None) -> int:
    """Writes `words` to "tokens". With `gates` (Kafka: the two parts run at once), part
    "a" writes its first word, lets "b" write all of its words and finish, then writes
    the rest: b's attempt ends (and is accepted) while a's is still open."""
    stream = rf.current_step().stream("tokens")
    gates = gates or {}
    if part == "b":
        _wait_for(gates.get("a_started"))
    for index, word in enumerate(words):
        stream.write(word)
        if part == "a" and index == 0 and gates:
            Path(gates["a_started"]).touch()
            _wait_for(gates.get("b_done"))
            time.sleep(0.5)  # b's result reaches the orchestrator meanwhile
    if part == "b" and gates:
        Path(gates["b_done"]).touch()
    return len(words)


@rf.workflow(name="streams_chorus")
async def chorus(ctx: rf.Context, spec: dict[str, Any]) -> int:
    counts = await ctx.all(
        [
            ctx.step("verse-a", verse, "a", spec["a"], spec.get("gates")),
            ctx.step("verse-b", verse, "b", spec["b"], spec.get("gates")),
        ]
    )
    return int(sum(counts))


@rf.step(name="streams_slow_talk", timeout="1s", retry=rf.Retry(limit=2, delay="2s", jitter=False))
def slow_talk(hold: float) -> str:
    """Attempt 1 writes "stale" and runs over its 1 s timeout (its thread goes on and
    ends COMPLETED, after the engine gave up on it); attempt 2 writes "fresh"."""
    stream = rf.current_step().stream("tokens")
    if rf.current_step().attempt == 1:
        stream.write("stale")
        time.sleep(hold)
        return "too late"
    stream.write("fresh")
    return "in time"


@rf.workflow(name="streams_slow_talker")
async def slow_talker(ctx: rf.Context, hold: float) -> str:
    return str(await ctx.step("talk", slow_talk, hold))
