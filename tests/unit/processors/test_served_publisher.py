"""When an orchestrator's record of what it runs is due: first, then on a change of its
registry, at most once per interval, and again after a failed publish."""

from __future__ import annotations

import dataclasses

import replayflow as rf
from replayflow.core.definitions import Registry
from replayflow.processors.served import Publisher
from replayflow.settings import Settings


@rf.workflow(name="pub-a", version="1")
async def a(ctx: rf.Context, n: int) -> int:
    return n


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_due_first_then_on_a_change_at_most_once_an_interval() -> None:
    registry, clock = Registry.of(a), Clock()
    publisher = Publisher(Settings(), "orch-1", registry, interval=0.2, clock=clock)
    first = publisher.due(1)
    assert first is not None and first.workflows == ["pub-a:1"]
    publisher.published(first)
    clock.now += 0.3
    assert publisher.due(2) is None  # nothing changed
    registry.add(dataclasses.replace(a, name="pub-b"))
    clock.now += 0.1
    assert publisher.due(3) is None  # checked 0.1 s ago: not yet
    clock.now += 0.15
    changed = publisher.due(4)
    assert changed is not None and changed.workflows == ["pub-a:1", "pub-b:1"]


def test_a_record_not_published_stays_due() -> None:
    clock = Clock()
    publisher = Publisher(Settings(), "orch-1", Registry.of(a), interval=0.2, clock=clock)
    assert publisher.due(1) is not None  # its transaction failed: nothing recorded
    clock.now += 0.2
    assert publisher.due(2) is not None
