"""Property tests of the fold: any order and duplication of results, events and timers
gives the same outcome, the cached and the rebuilt coroutine agree on every decision,
and every history written replays identically.

"The same" where order genuinely differs: results of parallel steps and events of
different names may arrive in any order, so the history (and the inbox of events
nobody awaits) differ between runs. The workflow's output and final status must not;
it is written so they cannot depend on that order. Exact duplicates of a command that
was folded already are checked separately: they must change nothing at all.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

import replayflow as rf
from replayflow.core.decide import Decider
from replayflow.core.decision import Decision
from replayflow.core.messages import (
    CancelWorkflow,
    Command,
    CompleteStep,
    ErrorInfo,
    FailStep,
    FireTimer,
    SendEvent,
    StartWorkflow,
    TerminateWorkflow,
)
from replayflow.core.policy import Retry
from replayflow.core.replay import replay
from replayflow.core.state import CallStatus, InstanceState

from .helpers import T0

PROPERTY_SETTINGS = settings(
    max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)

RETRY = Retry(limit=4, delay="1s", backoff="exponential", jitter=True)
MAX_FAILURES = 2  # per step, so RETRY.limit is never used up
RESULTS = {"a": 1, "b": 2, "c": 3, "cleanup": "clean"}
EXPECTED = {"a": 1, "b": 2, "x": "X", "y": ["Y", "Y"], "c": 3, "total": 6}
SENDS = {"x": 1, "y": 2, "noise": 1}  # "y" is awaited twice (recorded as y and y#2)
ID = "p-1"


@rf.step(name="pp_value", retry=RETRY)
def value(x: Any) -> Any:
    return x  # never run here: the tests play the worker


@rf.workflow(name="pp_flow")
async def flow(ctx: rf.Context) -> dict[str, Any]:
    try:
        a, b, x = await ctx.all(
            [
                ctx.step("a", value, 1),
                ctx.step("b", value, 2, timeout="10s"),
                ctx.wait_for_event("x"),
            ]
        )
        y = [await ctx.wait_for_event("y") for _ in range(2)]
        await ctx.sleep("pause", "5s")
        c = await ctx.step("c", value, 3)
    except rf.Cancelled:
        await ctx.step("cleanup", value, "clean")
        raise
    return {"a": a, "b": b, "x": x, "y": y, "c": c, "total": a + b + c}


REGISTRY = rf.Registry.of(flow, value)
START = StartWorkflow(instance_id=ID, workflow="pp_flow")


@dataclass
class World:
    """Two deciders fed the same commands (no cache / a warm cache), compared on every
    decision, plus what a worker and a timer index would see."""

    now: int = T0
    state: InstanceState | None = None
    history: list[Any] = field(default_factory=list)
    folded: list[Command] = field(default_factory=list)
    cold: Decider = field(default_factory=lambda: Decider(REGISTRY, cache_size=0))
    warm: Decider = field(default_factory=lambda: Decider(REGISTRY, cache_size=100))

    def fold(self, command: Command) -> Decision:
        decision = self.cold.decide(self.state, command, self.now)
        assert self.warm.decide(self.state, command, self.now) == decision
        if decision.state is not None:
            self.state = decision.state
        self.history.extend(decision.events)
        self.folded.append(command)
        return decision

    def refold_is_a_no_op(self, command: Command) -> None:
        before = self.state
        again = self.fold(command)
        assert not again.changed, command
        assert again.events == () and again.tasks == () and again.commands == ()
        assert again.timers_set == () and again.timers_cancelled == ()
        assert again.completion is None and again.state == before

    @property
    def status(self) -> str:
        assert self.state is not None
        return self.state.status.value

    def output(self) -> Any:
        assert self.state is not None and self.state.info.output is not None
        return json.loads(self.state.info.output)

    def scheduled(self) -> dict[str, int]:
        """Steps out with a worker: key -> current attempt."""
        if self.state is None or self.state.status.is_final:
            return {}
        return {c.key: c.attempt for c in self.state.calls if c.status is CallStatus.SCHEDULED}

    def timers(self) -> dict[str, int]:
        return dict(self.state.info.timers) if self.state is not None else {}

    def assert_replays(self) -> None:
        report = replay(self.history, REGISTRY)
        assert report.identical, report.difference
        assert report.state == self.state


# -- 1. a fixed set of results and events, folded in any order, with duplicates ---------


def essential_commands() -> list[Command]:
    return [
        CompleteStep(instance_id=ID, step="a", attempt=1, result="1"),
        CompleteStep(instance_id=ID, step="b", attempt=1, result="2"),
        SendEvent(instance_id=ID, name="x", payload='"X"'),
        SendEvent(instance_id=ID, name="y", payload='"Y"'),
        SendEvent(instance_id=ID, name="y", payload='"Y"'),
        SendEvent(instance_id=ID, name="noise", payload='"n1"'),
        SendEvent(instance_id=ID, name="other", payload='"n2"'),
    ]


@PROPERTY_SETTINGS
@given(
    order=st.permutations(essential_commands()),
    duplicates=st.lists(st.tuples(st.integers(0, 1), st.integers(0, 20)), max_size=6),
    restarts=st.lists(st.integers(0, 20), max_size=2),
)
def test_results_and_events_in_any_order_give_the_same_output(
    order: list[Command], duplicates: list[tuple[int, int]], restarts: list[int]
) -> None:
    # Duplicates of the two step results, and duplicate starts, inserted anywhere.
    commands: list[Command] = list(order)
    for which, position in duplicates:
        commands.insert(min(position, len(commands)), essential_commands()[which])
    for position in restarts:
        commands.insert(
            min(position, len(commands)),
            StartWorkflow(instance_id=ID, workflow="pp_flow", input='"other"'),
        )
    world = World()
    world.fold(START)
    for command in commands:
        world.now += 100
        world.fold(command)
    assert world.status == "RUNNING"
    world.now += 5_000
    world.fold(FireTimer(instance_id=ID, timer=next(iter(world.timers()))))
    world.fold(CompleteStep(instance_id=ID, step="c", attempt=1, result="3"))
    assert world.status == "COMPLETED"
    assert world.output() == EXPECTED
    assert world.state is not None and world.state.info.input == "null"  # the first start
    # Unawaited events stay in the inbox, in arrival order.
    assert [name for name, _, _ in world.state.info.inbox] == [
        c.name for c in commands if isinstance(c, SendEvent) and c.name in ("noise", "other")
    ]
    world.assert_replays()


# -- 2. any interleaving a worker, a timer index and a client can produce ----------------


@dataclass
class Script:
    """The interleaving under test, drawn action by action."""

    data: st.DataObject
    world: World = field(default_factory=World)
    failures: dict[str, int] = field(default_factory=dict)
    sent: dict[str, int] = field(default_factory=dict)
    delivered: list[Command] = field(default_factory=list)
    duplicates_left: int = 8

    def actions(self, allow_cancel: bool) -> list[tuple[str, Any]]:
        world = self.world
        options: list[tuple[str, Any]] = []
        for step, attempt in world.scheduled().items():
            options.append(("complete", (step, attempt)))
            if self.failures.get(step, 0) < MAX_FAILURES:
                options.append(("fail", (step, attempt)))
        for timer, due in world.timers().items():
            step_timeout = timer.startswith("step/") and "/timeout/" in timer
            if step_timeout and self.failures.get(timer.split("/")[1], 0) >= MAX_FAILURES:
                continue  # the worker reports in time from now on
            options.append(("fire", (timer, due)))
        for name, times in SENDS.items():
            if self.sent.get(name, 0) < times:
                options.append(("send", name))
        if self.delivered and self.duplicates_left > 0:
            options.append(("duplicate", None))
        if allow_cancel and world.status == "RUNNING":
            options += [("cancel", None), ("terminate", None)]
        return options

    def play(self, action: tuple[str, Any]) -> None:
        kind, arg = action
        event(f"action: {kind}")
        if kind == "fire":
            parts = arg[0].split("/")
            event(f"fired: {parts[0]}/{parts[-2]}" if parts[0] == "step" else f"fired: {parts[0]}")
        world = self.world
        world.now += self.data.draw(st.integers(0, 3_000), label="delay")
        command: Command
        if kind == "complete":
            step, attempt = arg
            command = CompleteStep(
                instance_id=ID, step=step, attempt=attempt, result=json.dumps(RESULTS[step])
            )
        elif kind == "fail":
            step, attempt = arg
            self.failures[step] = self.failures.get(step, 0) + 1
            command = FailStep(
                instance_id=ID,
                step=step,
                attempt=attempt,
                error=ErrorInfo(type="Flaky", message=f"{step}#{attempt}"),
            )
        elif kind == "fire":
            timer, due = arg
            world.now = max(world.now, due)
            if "/timeout/" in timer and timer.startswith("step/"):
                step = timer.split("/")[1]
                self.failures[step] = self.failures.get(step, 0) + 1
            command = FireTimer(instance_id=ID, timer=timer)
        elif kind == "send":
            self.sent[arg] = self.sent.get(arg, 0) + 1
            command = SendEvent(instance_id=ID, name=arg, payload=f'"{arg.upper()}"')
        elif kind == "duplicate":
            self.duplicates_left -= 1
            command = self.data.draw(st.sampled_from(self.delivered), label="duplicate")
            if isinstance(command, SendEvent) and world.status == "RUNNING":
                return  # a second event while running is a new event, not a duplicate
            world.refold_is_a_no_op(command)
            return
        elif kind == "cancel":
            command = CancelWorkflow(instance_id=ID, reason="drawn")
        else:
            command = TerminateWorkflow(instance_id=ID, reason="drawn")
        world.fold(command)
        if kind in ("complete", "fail", "fire"):
            # The very same command again, at once: the redelivery a crash can cause.
            world.refold_is_a_no_op(command)
        self.delivered.append(command)

    def run(self, allow_cancel: bool) -> None:
        self.world.fold(START)
        self.delivered.append(
            StartWorkflow(instance_id=ID, workflow="pp_flow", input='"late start"')
        )
        # A client may cancel or terminate from a drawn point on (not only at once).
        cancel_from = self.data.draw(st.integers(0, 20), label="cancel from")
        for count in range(200):
            options = self.actions(allow_cancel and count >= cancel_from)
            if not options:
                break
            self.play(self.data.draw(st.sampled_from(options), label="action"))
        else:
            raise AssertionError("the interleaving did not end")


@PROPERTY_SETTINGS
@given(data=st.data())
def test_any_interleaving_with_duplicates_and_stragglers_gives_the_same_output(
    data: st.DataObject,
) -> None:
    script = Script(data)
    script.run(allow_cancel=False)
    world = script.world
    assert world.status == "COMPLETED"
    assert world.output() == EXPECTED
    # Events for the finished instance change nothing.
    world.refold_is_a_no_op(SendEvent(instance_id=ID, name="x", payload='"again"'))
    world.refold_is_a_no_op(START)
    world.assert_replays()


@PROPERTY_SETTINGS
@given(data=st.data())
def test_cancel_and_terminate_at_any_point_end_cleanly(data: st.DataObject) -> None:
    script = Script(data)
    script.run(allow_cancel=True)
    world = script.world
    assert world.state is not None and world.state.status.is_final
    assert world.timers() == {}
    assert not world.scheduled()
    if world.status == "COMPLETED":
        assert world.output() == EXPECTED
    elif world.status == "CANCELLED":
        # The cleanup ran to completion before the instance ended cancelled.
        cleanup = [c for c in world.state.calls if c.key == "cleanup"]
        assert [c.status for c in cleanup] == [CallStatus.COMPLETED]
        assert world.state.info.reason == "drawn"
    else:
        assert world.status == "TERMINATED" and world.state.info.reason == "drawn"
    world.assert_replays()
