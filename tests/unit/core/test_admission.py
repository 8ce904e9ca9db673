"""Admission: @rf.workflow(concurrency=N) queues instances over the limit and admits
them first in, first out (core/limiter.py)."""

from __future__ import annotations

from dataclasses import dataclass, field

import replayflow as rf
from replayflow.core.decide import limiter_key
from replayflow.core.limiter import LimiterState, decide_limiter
from replayflow.core.messages import (
    AcquireSlot,
    CancelWorkflow,
    GrantSlot,
    ReleaseSlot,
    SendEvent,
    StartWorkflow,
    WorkflowAdmitted,
    WorkflowQueued,
)
from replayflow.testing import Environment

from .helpers import T0, Fold, kinds

LIMITER = limiter_key("adm_limited")


@rf.workflow(name="adm_limited", concurrency=2)
async def limited(ctx: rf.Context, n: int) -> dict[str, int]:
    started = ctx.now_ms()
    await ctx.wait_for_event("go")
    return {"n": n, "started": started}


@rf.workflow(name="adm_free")
async def free(ctx: rf.Context) -> object:
    return await ctx.wait_for_event("go")


def test_instances_over_the_limit_are_queued() -> None:
    env = Environment(limited)
    handles = [env.start(limited, n, id=f"q{n}") for n in range(5)]
    assert [env.status(h.id) for h in handles] == [rf.Status.RUNNING] * 2 + [rf.Status.QUEUED] * 3
    assert kinds(env.history("q4")) == ["WorkflowStarted", "WorkflowQueued"]
    queued = env.history("q4")[1]
    assert isinstance(queued, WorkflowQueued) and queued.limiter == LIMITER
    assert env.max_running[LIMITER] == 2


def test_queued_instances_are_admitted_first_in_first_out() -> None:
    env = Environment(limited)
    for n in range(5):
        env.start(limited, n, id=f"q{n}")
    admitted: list[str] = []
    for finisher in ["q1", "q0", "q2", "q3", "q4"]:
        env.advance("1s")
        env.send_event(finisher, "go")
        assert env.status(finisher) == rf.Status.COMPLETED
        admitted += [
            i
            for i in ("q2", "q3", "q4")
            if i not in admitted and env.status(i) is not rf.Status.QUEUED
        ]
        assert sum(env.status(i) == rf.Status.RUNNING for i in env.states) <= 2
    assert admitted == ["q2", "q3", "q4"]
    for instance_id in ("q2", "q3", "q4"):
        event = next(e for e in env.history(instance_id) if isinstance(e, WorkflowAdmitted))
        assert env.states[instance_id].info.admitted_at == event.at
    assert env.max_running[LIMITER] == 2


def test_an_admitted_instance_runs_from_its_admission_time() -> None:
    env = Environment(limited)
    for n in range(3):
        env.start(limited, n, id=f"q{n}")
    env.send_event("q2", "go")  # kept while q2 waits in the queue
    env.advance("1m")
    env.send_event("q0", "go")  # frees a slot: q2 runs now, and finds its event
    assert env.result("q2") == {"n": 2, "started": T0 + 60_000}
    assert env.result("q0") == {"n": 0, "started": T0}


def test_concurrency_set_on_the_decider_overrides_the_code() -> None:
    env = Environment(free, concurrency={"adm_free": 1})
    first, second = env.start(free), env.start(free)
    assert (env.status(first.id), env.status(second.id)) == (rf.Status.RUNNING, rf.Status.QUEUED)
    env.send_event(first.id, "go", 1)
    assert env.status(second.id) == rf.Status.RUNNING
    assert env.max_running[limiter_key("adm_free")] == 1


def test_no_limit_no_queue() -> None:
    env = Environment(free)
    handles = [env.start(free) for _ in range(10)]
    assert all(env.status(h.id) == rf.Status.RUNNING for h in handles)
    assert env.max_running == {}


def test_the_fold_asks_for_and_gives_back_slots() -> None:
    fold = Fold.of(limited)
    started = fold(StartWorkflow(instance_id="a", workflow="adm_limited", input="1"))
    assert started.commands == (AcquireSlot(limiter=LIMITER, instance_id="a", limit=2),)
    assert started.tasks == () and fold.status == "QUEUED"
    fold(GrantSlot(instance_id="a"), at=T0 + 5)
    assert fold.status == "RUNNING"
    assert fold.state is not None and fold.state.info.admitted_at == T0 + 5
    done = fold(SendEvent(instance_id="a", name="go"))
    assert done.commands == (ReleaseSlot(limiter=LIMITER, instance_id="a"),)


def test_a_grant_for_an_instance_that_ended_in_the_queue_hands_the_slot_back() -> None:
    fold = Fold.of(limited)
    fold(StartWorkflow(instance_id="a", workflow="adm_limited", input="1"))
    fold(CancelWorkflow(instance_id="a", reason="no"))
    decision = fold(GrantSlot(instance_id="a"))
    assert decision.commands == (ReleaseSlot(limiter=LIMITER, instance_id="a"),)
    assert decision.events == ()


# -- the limiter entity -------------------------------------------------------------------


@dataclass
class Queue:
    entries: list[tuple[int, str]] = field(default_factory=list)

    def head(self, n: int, start: int) -> list[tuple[int, str]]:
        return [entry for entry in self.entries if entry[0] >= start][:n]


def fold_limiter(
    commands: list[AcquireSlot | ReleaseSlot],
) -> tuple[LimiterState, list[str], Queue]:
    state: LimiterState | None = None
    queue = Queue()
    granted: list[str] = []
    for command in commands:
        decision = decide_limiter(state, command, queue)
        state = decision.state
        queue.entries += decision.enqueued
        queue.entries = [e for e in queue.entries if e[0] not in decision.dequeued]
        granted += [g.instance_id for g in decision.grants]
        if decision.grants:  # a grant never takes the running count over the limit
            assert len(state.running) <= state.limit
    assert state is not None
    return state, granted, queue


def acquire(instance_id: str, limit: int = 2) -> AcquireSlot:
    return AcquireSlot(limiter="L", instance_id=instance_id, limit=limit)


def release(instance_id: str) -> ReleaseSlot:
    return ReleaseSlot(limiter="L", instance_id=instance_id)


def test_limiter_grants_up_to_the_limit_then_queues_fifo() -> None:
    state, granted, queue = fold_limiter([acquire(i) for i in "abcde"])
    assert granted == ["a", "b"] and state.running == {"a", "b"}
    assert [i for _, i in queue.entries] == ["c", "d", "e"] and state.queued == 3
    state, granted, queue = fold_limiter(
        [*(acquire(i) for i in "abcde"), release("b"), release("a"), release("c")]
    )
    assert granted == ["a", "b", "c", "d", "e"]
    assert state.running == {"d", "e"} and state.queued == 0


def test_a_newcomer_does_not_overtake_the_queue() -> None:
    state, granted, _ = fold_limiter(
        [acquire("a", 1), acquire("b", 1), release("a"), acquire("c", 1)]
    )
    assert granted == ["a", "b"] and state.running == {"b"} and state.queued == 1


def test_limiter_ignores_duplicate_acquires_of_a_running_instance_and_stray_releases() -> None:
    state, granted, _ = fold_limiter([acquire("a"), acquire("a"), release("zzz")])
    assert granted == ["a"] and state.running == {"a"}


def test_a_raised_limit_admits_the_waiting_at_once_in_order() -> None:
    state, granted, queue = fold_limiter(
        [acquire("a", 1), acquire("b", 1), acquire("c", 1), acquire("d", 3)]
    )
    assert granted == ["a", "b", "c"] and state.limit == 3
    assert [i for _, i in queue.entries] == ["d"] and state.queued == 1
    state, granted, queue = fold_limiter([acquire("a", 1), acquire("b", 1), acquire("c", 4)])
    assert granted == ["a", "b", "c"] and queue.entries == [] and state.queued == 0


def test_a_lowered_limit_lets_running_instances_finish_and_admits_none() -> None:
    state, granted, _ = fold_limiter(
        [acquire("a", 3), acquire("b", 3), acquire("c", 1), release("a")]
    )
    assert granted == ["a", "b"] and state.running == {"b"} and state.queued == 1
