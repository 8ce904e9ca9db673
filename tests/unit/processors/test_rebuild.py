"""Rebuilding state from history through the fold shell: every kind of instance comes
out identical to the live state (states, calls, timers, inbox, limiter and queue,
status counts), the engine continues on the rebuilt store as on the live one, and what
cannot be rebuilt is named."""

from __future__ import annotations

from dataclasses import replace
from types import ModuleType
from typing import Any

import pytest

from replayflow.core.messages import HistoryEvent, StepFailed, StepScheduled
from replayflow.core.replay import input_commands
from replayflow.core.state import Status
from replayflow.core.upgrade import check
from replayflow.processors.fold import PartitionFolder
from replayflow.processors.rebuild import _DECIDED
from replayflow.processors.rebuild_compare import compare
from replayflow.processors.rebuild_run import RebuildPlan, RebuildResult, rebuild
from replayflow.store import keys, serde
from replayflow.store.memory import MemoryStore
from replayflow.testing import Environment
from tests.replay_code import mixed, mixed_v3, mixed_v4


def facts_source(facts: list[HistoryEvent]) -> Any:
    return lambda partition: enumerate(facts)


def deploy(env: Environment, module: ModuleType) -> None:
    """A redeploy of `module` (same workflow names and versions, other code)."""
    for versions in env.registry.workflows.values():
        for version in list(versions):
            versions.pop(version)
    env.registry.add(module)
    env.decider.forget_all()  # a new process: every coroutine is rebuilt from history


def live_namespace() -> Environment:
    env = Environment(mixed)
    for n in range(3):
        env.start("mx-steps", n, id=f"done-{n}")
    env.hold_step("mx_slow")
    env.start("mx-running", "r", id="running")  # its step is out with a worker
    env.start("mx-sleep", "s", id="sleeping")
    env.fail_step("mx_flaky", times=1)
    env.start("mx-sleep", 1, id="slept")  # timers that fired: gone from the index
    env.start("mx-retry", "x", id="retried")
    env.advance("1m")
    env.start("mx-wait", "w", id="waiting")
    env.send_event("waiting", "other", {"kept": True})  # nobody waits: the inbox
    env.start("mx-wait", "p", id="paused")
    env.pause("paused", "operator")
    env.start("mx-wait", "u", id="upgraded", version="1")
    env.deliver(check(env.history("upgraded"), env.registry, "2").command("1", "2"))
    for n in range(5):
        env.start("mx-limited", n, id=f"limited-{n}")  # 2 hold slots, 3 queue
    env.cancel("limited-3", "ended while queued")  # its queue entry stays until passed
    env.fail_step("mx_flaky", times=1)
    env.start("mx-retry", "x", id="retrying")  # failed once: a backoff timer runs
    env.start("mx-parent", 7, id="parent")
    env.restart("done-0", from_step="b", reason="again")
    env.start("mx-patch", "p", id="suspended")
    env.send_event("suspended", "pay")  # the marker is recorded
    deploy(env, mixed_v4)  # drops the ctx.patched call too early ...
    env.release_held()
    env.hold_step("mx_slow")
    env.start("mx-running", "r2", id="running")  # (a second start changes nothing)
    env.send_event("suspended", "noise")  # ... so its next decision suspends it
    return env


def rebuilt(env: Environment, module: ModuleType, until: int | None = None) -> RebuildResult:
    def code() -> Any:
        return Environment(module).registry

    plan = RebuildPlan(partitions=(0,), partition_count=1, until=until)
    return rebuild(facts_source(env.facts), code, plan)


@pytest.fixture(scope="module")
def live() -> Environment:
    return live_namespace()


def test_every_kind_of_instance_is_rebuilt_identical(live: Environment) -> None:
    statuses = {i: live.status(i) for i in live.states}
    assert statuses["done-1"] is Status.COMPLETED
    assert statuses["suspended"] is Status.SUSPENDED
    assert statuses["paused"] is Status.PAUSED
    assert statuses["limited-2"] is Status.QUEUED
    assert statuses["limited-3"] is Status.CANCELLED
    assert live.states["waiting"].info.inbox and live.states["sleeping"].info.timers
    result = rebuilt(live, mixed_v4)
    assert result.divergences == [] and result.partial == []
    assert result.facts == len(live.facts) and result.admissions > 0
    assert compare(live.folder.store, result.stores[0]) == []


def test_the_engine_continues_on_the_rebuilt_state(live: Environment) -> None:
    """Both stores go on through the same inputs and make the same facts."""
    result = rebuilt(live, mixed_v4)
    twin = Environment(mixed_v4)
    twin.folder = PartitionFolder(result.stores[0], twin.decider)
    twin.now = live.now
    twin.held = list(live.held)
    original = Environment(mixed_v4)
    original.folder = PartitionFolder(copy_store(live.folder.store), original.decider)
    original.now = live.now
    original.held = list(live.held)
    for env in (original, twin):
        env.release_held()
        env.advance("2h")  # the sleep ends, the retry goes out
        for instance_id in ("waiting", "paused", "upgraded"):
            env.send_event(instance_id, "go", instance_id)
        env.resume("paused")
        for n in range(5):
            env.send_event(f"limited-{n}", "done", n)
        deploy(env, mixed_v3)  # the fix: the suspended instance accepts its marker
        env.resume("suspended")
        env.send_event("suspended", "ship")
        env.advance("1m")
    assert twin.facts == original.facts
    for instance_id in ("running", "sleeping", "waiting", "paused", "upgraded", "suspended"):
        assert twin.status(instance_id) is Status.COMPLETED, instance_id
    assert twin.completions["upgraded"].version == "2"
    assert [twin.status(f"limited-{n}") for n in range(5)] == [Status.COMPLETED] * 3 + [
        Status.CANCELLED,
        Status.COMPLETED,
    ]
    assert compare(original.folder.store, twin.folder.store) == []


def test_state_as_of_a_point_in_time(live: Environment) -> None:
    env = Environment(mixed)
    env.start("mx-steps", 1, id="early")
    snapshot = copy_store(env.folder.store)
    cut = env.now
    env.advance("1s")
    env.start("mx-sleep", 2, id="late")
    result = rebuilt(env, mixed, until=cut)
    assert compare(snapshot, result.stores[0]) == []


def test_a_history_without_its_start_is_left_out_and_named(live: Environment) -> None:
    facts = [e for e in live.facts if not (e.instance_id == "sleeping" and e.seq == 1)]
    env = Environment(mixed)
    env.facts = facts
    result = rebuilt(env, mixed_v4)
    assert result.partial == ["sleeping"]
    differences = {d.entity: d for d in compare(live.folder.store, result.stores[0])}
    assert "only in the live state" in differences["sleeping"].details[0]


def test_decisions_the_code_no_longer_makes_are_reported(live: Environment) -> None:
    """mixed.py still has the ctx.patched call: it does not suspend the instance."""
    result = rebuilt(live, mixed)
    [divergence] = result.divergences
    assert divergence.instance_id == "suspended"
    assert "WorkflowSuspended" in divergence.reason
    differences = {d.entity for d in compare(live.folder.store, result.stores[0])}
    assert "suspended" in differences


def test_compare_names_what_differs() -> None:
    env = Environment(mixed)
    env.start("mx-sleep", 1, id="a")
    env.start("mx-limited", 1, id="b")
    other = copy_store(env.folder.store)
    state = env.folder.state("a")
    assert state is not None
    other.write({keys.info("a"): serde.dump_info(replace(state.info, seq=99))}, None)
    [difference] = compare(env.folder.store, other)
    assert difference.entity == "a"
    assert difference.details == ("info.seq: live 2, rebuilt 99",)


def copy_store(store: MemoryStore | Any) -> MemoryStore:
    copy = MemoryStore(store.partition)
    copy.write(dict(store.scan(b"")), None)
    return copy


def test_facts_taken_for_decisions_never_make_a_command(live: Environment) -> None:
    kinds = {type(e) for e in live.facts}
    assert len(kinds & _DECIDED) >= 8
    for event in live.facts:
        made = list(input_commands([event]))
        assert (type(event) in _DECIDED) == (made == []) or isinstance(event, StepFailed)


def test_the_facts_seen_are_the_facts_the_engine_wrote(live: Environment) -> None:
    by_instance: dict[str, list[HistoryEvent]] = {}
    for event in live.facts:
        by_instance.setdefault(event.instance_id, []).append(event)
    assert by_instance == {i: h for i, h in live.histories.items() if h}
    assert any(isinstance(e, StepScheduled) for e in live.facts)
