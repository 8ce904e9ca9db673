"""The partition fold on each store (no Kafka): input that would break the log or the
loop goes to the dead-letter records, and the partition keeps folding."""

from __future__ import annotations

import replayflow as rf
from replayflow import codec
from replayflow.core.decide import Decider, Limits
from replayflow.core.messages import (
    DeadLetter,
    FireTimer,
    StartWorkflow,
    WorkflowCompleted,
)
from replayflow.processors.fold import PartitionFolder
from replayflow.processors.fold_records import MAX_RECORD_BYTES, Record, largest_value
from replayflow.processors.restore import STALE_AFTER_MS, is_stale
from replayflow.store import keys
from replayflow.store.protocol import Store

NOW = 1_767_225_600_000


@rf.workflow(name="echo")
async def echo(ctx: rf.Context, value: object) -> object:
    return value


@rf.workflow(name="napper")
async def napper(ctx: rf.Context) -> str:
    await ctx.sleep("nap", "1s")
    return "rested"


class ExplodingTimers:
    """A decider with a bug in its timer handling, as a fake for the loop's guard: it
    decides as `Decider` does, and fails on every fired timer."""

    def __init__(self, registry: rf.Registry) -> None:
        self._decider = Decider(registry)

    def decide(self, state, command, now):  # type: ignore[no-untyped-def]
        if isinstance(command, FireTimer):
            raise RuntimeError("boom")
        return self._decider.decide(state, command, now)

    def __getattr__(self, name: str) -> object:  # forget(), admission, ... as Decider's
        return getattr(self._decider, name)


def decoded(folder: PartitionFolder, topic: str) -> list[object]:
    return [codec.decode(r.value) for r in folder.records if r.topic == topic]


def start(instance_id: str, workflow: str, input: str) -> StartWorkflow:
    return StartWorkflow(instance_id=instance_id, workflow=workflow, input=input)


def test_a_decision_too_large_for_the_log_is_dead_lettered(store: Store) -> None:
    decider = Decider(rf.Registry.of(echo), limits=Limits(max_payload=16 * 1024 * 1024))
    folder = PartitionFolder(store, decider)
    huge = '"' + "x" * (MAX_RECORD_BYTES + 10) + '"'
    source = ("commands", 0, 7, b"big", b"original bytes")
    folder.fold(start("big", "echo", huge), NOW, source)
    folder.fold(start("small", "echo", '"ok"'), NOW)
    [letter] = decoded(folder, "dlq")
    assert isinstance(letter, DeadLetter) and letter.error_type == "RecordTooLarge"
    assert letter.offset == 7 and letter.value == b"original bytes"
    assert not any(k.startswith(keys.info("big")) for k in folder.pending.changes)
    assert any(
        isinstance(e, WorkflowCompleted) and e.instance_id == "small"
        for e in decoded(folder, "history")
    )


def test_non_ascii_text_is_stored_as_utf8(store: Store) -> None:
    folder = PartitionFolder(store, Decider(rf.Registry.of(echo)))
    text = '"' + "汉" * 1000 + '"'
    folder.fold(start("cjk", "echo", text), NOW)
    folder.committed(None)
    assert len(store.get(keys.input("cjk")) or b"") == len(text.encode())
    assert len(store.get(keys.info("cjk")) or b"") < 4 * 1000  # output once, as UTF-8


def test_a_failing_timer_is_parked_and_the_loop_goes_on(store: Store) -> None:
    folder = PartitionFolder(store, ExplodingTimers(rf.Registry.of(napper)))
    folder.fold(start("n1", "napper", "null"), NOW)
    folder.committed(None)
    assert folder.fire_due_timers(NOW + 5_000) == 1
    [letter] = decoded(folder, "dlq")
    assert letter.error_type == "FoldError" and "boom" in letter.reason
    folder.committed(None)
    assert folder.fire_due_timers(NOW + 10_000) == 0  # the timer left the index


def test_a_child_start_with_a_malformed_parent_is_rejected(store: Store) -> None:
    folder = PartitionFolder(store, Decider(rf.Registry.of(echo)))
    bad = StartWorkflow(
        instance_id="c1", workflow="echo", input="1", parent_id="p", parent_step="oops"
    )
    folder.fold(bad, NOW, ("commands", 0, 1, b"c1", b"x"))
    [letter] = decoded(folder, "dlq")
    assert "parent_step" in letter.reason


def test_an_old_store_is_stale(store: Store) -> None:
    assert not is_stale(store, NOW)  # never written: nothing to distrust
    store.write({b"k": b"v"}, 3)
    written = store.written_at()
    assert written is not None
    assert not is_stale(store, written + STALE_AFTER_MS)
    assert is_stale(store, written + STALE_AFTER_MS + 1)


def test_the_largest_value_of_a_decision() -> None:
    writes: dict[bytes, bytes | None] = {b"a": b"12345", b"b": None, b"t": b""}
    records = [
        Record("history", b"k", b"123", 0, None),
        Record("history", b"k", None, 0, None),  # a re-fold encodes nothing
        Record("tasks", b"k", b"1234567", 0, None),
    ]
    assert largest_value(writes, records) == 7
    assert largest_value(writes, records[:2]) == 5
    assert largest_value({b"d": None}, []) == 0
