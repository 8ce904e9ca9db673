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
