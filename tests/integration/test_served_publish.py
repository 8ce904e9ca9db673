"""An orchestrator whose registry grows while it works says what it runs without
stopping: the record goes out in a transaction of its own, once the batch committing on
the producer's helper thread has committed. (Begun beside that commit, it failed with
_CONFLICT, "Conflicting commit_transaction API call is already in progress", and ended
the orchestrator's loop.)"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import replayflow as rf
from replayflow.client import Client
from replayflow.core.definitions import Registry
from replayflow.processors.runtime import LocalRuntime
from replayflow.settings import Settings
from replayflow.topics import apply_topics, load_topics


@rf.step
def plus_one(n: int) -> int:
    return n + 1


@rf.workflow(name="sp-count", version="1")
async def count(ctx: rf.Context, n: int) -> int:
    for i in range(3):
        n = await ctx.step(f"add-{i}", plus_one, n)
    return n


def test_workflows_added_while_batches_commit_are_published(
    settings: Settings, tmp_path: Path
) -> None:
    apply_topics(settings.bootstrap, load_topics(settings))
    registry = Registry.of(count, plus_one)
    runtime = LocalRuntime(settings.replace(data_dir=tmp_path), registry)
    with runtime, Client(settings) as client:
        handles = []
        for round in range(12):
            # Work in every partition, so batches commit while the registry changes.
            handles += client.start_many([("sp-count", i, f"sp-{round}-{i}") for i in range(40)])
            added = dataclasses.replace(count, name=f"sp-added-{round}")
            registry.add(added)
            # Startable once the orchestrator said it runs it (the client's check
            # reads the record again for a moment before it refuses).
            handles.append(client.start(added.name, 100 * round))
            assert not runtime.errors, runtime.errors
        outputs = [handle.result(timeout=120) for handle in handles]
        assert not runtime.errors, runtime.errors
    for round in range(12):
        assert outputs[41 * round : 41 * (round + 1)] == [
            *(i + 3 for i in range(40)),
            100 * round + 3,
        ]
