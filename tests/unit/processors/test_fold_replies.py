"""A command whose caller waits (it carries a request id) is answered with a Reply:
accepted, unchanged or rejected with its kind; rejected ones then skip the dead-letter
topic, while the same input from a raw producer (no request id) still reaches it."""

from __future__ import annotations

import pytest

import replayflow as rf
from replayflow import codec
from replayflow.core.decide import Decider
from replayflow.core.messages import (
    CancelWorkflow,
    Command,
    DeadLetter,
    RestartWorkflow,
    SendEvent,
    StartWorkflow,
)
from replayflow.core.replies import Reply
from replayflow.processors.fold import PartitionFolder
from replayflow.processors.served import Served, record_of
from replayflow.store.protocol import Store

NOW = 1_767_225_600_000


@rf.workflow(name="greeter", version="2")
async def greeter(ctx: rf.Context, name: object) -> object:
    return await ctx.wait_for_event("go")


def fold(folder: PartitionFolder, command: Command, request_id: str | None = "r") -> list[object]:
    folder.records.clear()
    folder.fold(command, NOW, ("commands", 0, 1, b"k", b"v"), request_id)
    return [codec.decode(r.value) for r in folder.records if r.topic in ("replies", "dlq")]


@pytest.fixture
def folder(store: Store) -> PartitionFolder:
    return PartitionFolder(store, Decider(rf.Registry.of(greeter)))


def test_a_new_start_is_accepted_and_a_second_one_unchanged(folder: PartitionFolder) -> None:
    [reply] = fold(folder, StartWorkflow(instance_id="g-1", workflow="greeter"))
    assert isinstance(reply, Reply)
    assert (reply.outcome, reply.status, reply.request_id, reply.command) == (
        "ACCEPTED",
        "RUNNING",
        "r",
        "StartWorkflow",
    )
    assert folder.records[-1].partition == folder.partition  # the command's partition
    [again] = fold(folder, StartWorkflow(instance_id="g-1", workflow="greeter"), "r2")
    assert (again.outcome, again.status, again.reason) == ("UNCHANGED", "RUNNING", "")


@pytest.mark.parametrize(
    ("command", "kind", "says"),
    [
        (StartWorkflow(instance_id="x", workflow="nosuch"), "UnknownWorkflow", "nosuch"),
        (
            StartWorkflow(instance_id="x", workflow="greeter", version="9"),
            "UnknownWorkflow",
            "known: 2",
        ),
        (StartWorkflow(instance_id="x", workflow="greeter", input="{no"), "Invalid", "JSON"),
        (SendEvent(instance_id="nobody", name="go"), "UnknownInstance", "no instance"),
        (CancelWorkflow(instance_id="nobody"), "UnknownInstance", "no instance"),
    ],
)
def test_a_rejection_is_answered_with_its_kind_and_not_dead_lettered(
    folder: PartitionFolder, command: Command, kind: str, says: str
) -> None:
    [reply] = fold(folder, command)
    assert isinstance(reply, Reply) and reply.outcome == "REJECTED"
    assert reply.error_type == kind and says in reply.reason


def test_a_restart_from_an_unknown_step_is_a_conflict(folder: PartitionFolder) -> None:
    fold(folder, StartWorkflow(instance_id="g-2", workflow="greeter"))
    [reply] = fold(folder, RestartWorkflow(instance_id="g-2", from_step="nope"))
    assert (reply.outcome, reply.error_type, reply.status) == ("REJECTED", "Conflict", "RUNNING")


def test_without_a_request_id_a_rejection_is_dead_lettered(folder: PartitionFolder) -> None:
    [letter] = fold(folder, StartWorkflow(instance_id="x", workflow="nosuch"), None)
    assert isinstance(letter, DeadLetter) and letter.error_type == "Rejected"
    assert fold(folder, StartWorkflow(instance_id="y", workflow="greeter"), None) == []


def test_the_published_workflows_say_what_is_unknown() -> None:
    served = Served()
    assert served.unknown("anything", None) is None  # nobody said what runs: no check
    served.orchestrators["o-1"] = record_of("o-1", rf.Registry.of(greeter), NOW)
    assert served.orchestrators["o-1"].workflows == ["greeter:2"]
    assert served.unknown("greeter", None) is None
    assert served.unknown("greeter", "2") is None
    assert "unknown version '3' of workflow 'greeter' (known: 2)" in (
        served.unknown("greeter", "3") or ""
    )
    assert "unknown workflow 'nosuch': the orchestrators run greeter" in (
        served.unknown("nosuch", None) or ""
    )
    served.documents.add(("pipeline", "1.0.0"))
    assert served.unknown("pipeline", "1.0.0") is None
    assert served.run_by("greeter") == ["o-1"] and served.run_by("pipeline") == []
