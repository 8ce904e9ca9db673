"""One fold, any store: the same commands give the same records and the same changelog
whichever store the fold runs over, batch after batch."""

from __future__ import annotations

from pathlib import Path

import replayflow as rf
from replayflow.core.decide import Decider
from replayflow.core.messages import Command, SendEvent, StartWorkflow
from replayflow.processors.fold import PartitionFolder
from replayflow.store import keys
from tests.unit.stores import KINDS, open_store

NOW = 1_767_225_600_000


@rf.workflow(name="fs_waiter", concurrency=2)
async def waiter(ctx: rf.Context, n: int) -> int:
    await ctx.sleep("nap", f"{n}s")
    seen = await ctx.wait_for_event("poke", timeout="1m")
    return n + (0 if seen is None else 1)


def _batches() -> list[list[Command]]:
    starts = [
        StartWorkflow(instance_id=f"w{n}", workflow="fs_waiter", input=str(n)) for n in range(5)
    ]
    pokes = [SendEvent(instance_id=f"w{n}", name="poke", payload="1") for n in range(5)]
    return [starts[:3], starts[3:], pokes[:2], [], pokes[2:], [], []]


def _run(kind: str, path: Path) -> list[tuple[object, ...]]:
    store = open_store(kind, path)
    folder = PartitionFolder(store, Decider(rf.Registry.of(waiter)))
    seen: list[tuple[object, ...]] = []
    now = NOW
    for batch in _batches():
        for command in batch:
            folder.fold(command, now)
            # Admission grants and releases come back as commands: fold them like input.
            while pending := [r.message for r in folder.records if r.topic == "commands"]:
                folder.records = [r for r in folder.records if r.topic != "commands"]
                seen += [("command", type(c).__name__, c.instance_id) for c in pending]
                for c in pending:
                    folder.fold(c, now)
        now += 30_000
        folder.fire_due_timers(now)
        seen += [(r.topic, r.key, r.value, r.partition) for r in folder.records]
        seen += [(r.topic, r.key, r.value) for r in folder.changelog()]
        folder.committed(len(seen))
    seen.append(("counts", tuple(sorted(folder.status_counts().items()))))
    seen.append(("left", tuple(k for k, _ in store.scan(keys.TIMERS))))
    store.close()
    return seen


def test_every_store_gives_the_same_records_and_changelog(tmp_path: Path) -> None:
    runs = [_run(kind, tmp_path / kind) for kind in KINDS]
    assert runs[0] == runs[1]
    topics = {entry[0] for entry in runs[0]}
    assert {"history", "completions", "state", "command"} - topics == set()
