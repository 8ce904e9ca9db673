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


def _fold_all(folder: PartitionFolder, command: Command, now: int) -> list[tuple[object, ...]]:
    """Fold a command, then the commands it leads to (admission requests and grants), as
    the orchestrator does when they come back from the commands topic."""
    folder.fold(command, now)
    seen: list[tuple[object, ...]] = []
    while pending := [r.message for r in folder.records if r.topic == "commands"]:
        folder.records = [r for r in folder.records if r.topic != "commands"]
        seen += [("command", type(c).__name__, c.instance_id) for c in pending]
        for c in pending:
            folder.fold(c, now)
    return seen


def _run(kind: str, path: Path) -> list[tuple[object, ...]]:
    store = open_store(kind, path)
    folder = PartitionFolder(store, Decider(rf.Registry.of(waiter)))
    seen: list[tuple[object, ...]] = []
    now = NOW
    for batch in _batches():
        for command in batch:
            seen += _fold_all(folder, command, now)
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


def test_the_changelog_alone_rebuilds_states_and_counts(tmp_path: Path) -> None:
    # What a restore does after a crash between commit and store write, or on a new
    # machine: apply the changelog records to an empty store.
    folded = open_store("rocksdb", tmp_path / "folded")
    folder = PartitionFolder(folded, Decider(rf.Registry.of(waiter)))
    changelog: dict[bytes, bytes | None] = {}
    for batch in _batches()[:3]:
        for command in batch:
            _fold_all(folder, command, NOW)
        changelog.update((r.key or b"", r.value) for r in folder.changelog())
        folder.committed(None)
    assert folder.status_counts() == {"running": 0, "waiting": 2, "queued": 3, "suspended": 0}
    restored = open_store("memory", tmp_path)
    restored.write(changelog, 0)
    again = PartitionFolder(restored, Decider(rf.Registry.of(waiter)))
    assert again.status_counts() == folder.status_counts()
    assert [k for k, _ in restored.scan(b"i/")] == [k for k, _ in folded.scan(b"i/")]
    folded.close()
