"""rf.testing.Environment: run workflows in-process through the orchestrator's own fold
(processors/fold.py) over an in-memory store, with a virtual clock.

    env = Environment(checkout)                  # workflows, steps or modules
    handle = env.start(checkout, {"id": 1})
    env.send_event(handle.id, "approval", True)
    assert handle.result() == {...}              # sleeps and timeouts pass at once

Time stands still unless something waits for it: `result()` jumps the clock to the
next timer when nothing else can happen, and `advance("1h")` moves it explicitly.

Schedules fire in that virtual time. Those declared with @rf.workflow(schedule=...)
exist from the start; `env.schedules` has every schedule operation (as the client's):

    env = Environment(report)                    # schedule=rf.Schedule(cron="0 * * * *")
    env.advance("1d")                            # the 24 hourly runs start
    assert len(env.instances("report")) == 24
    env.schedules.pause("report", note="holiday")

Each command is folded and committed on its own, as a batch of one: states, timers,
admission queues and status counts live in the store exactly as in production, and
what the fold produces (history, tasks, completions, commands, dead letters) is read
from its records. Steps run in-process in place of a worker.
"""

from __future__ import annotations

import itertools
from collections import deque
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType
from typing import Any

from replayflow.core.decide import Decider, Limits
from replayflow.core.definitions import Registry, StepDef, WorkflowDef
from replayflow.core.durations import Duration, to_ms
from replayflow.core.entities import AnyCommand, Entity, route
from replayflow.core.errors import ReplayflowError, ValidationError, workflow_error
from replayflow.core.messages import (
    CancelWorkflow,
    Completion,
    ErrorInfo,
    FailStep,
    HistoryEvent,
    PauseWorkflow,
    RestartWorkflow,
    ResumeWorkflow,
    SendEvent,
    StartWorkflow,
    Task,
    TerminateWorkflow,
    WorkflowStarted,
)
from replayflow.core.payloads import dump, load
from replayflow.core.replay import ReplayReport, replay
from replayflow.core.schedule_messages import ScheduleCommand, ScheduleEvent
from replayflow.core.schedule_ops import ScheduleOps
from replayflow.core.schedule_view import ScheduleDescription, describe, fold
from replayflow.core.state import InstanceState, Status
from replayflow.core.streams import StreamItem, StreamView
from replayflow.dsl import builtins as dsl_builtins
from replayflow.execution import run_sync, unknown_step
from replayflow.processors.fold import PartitionFolder
from replayflow.processors.stream_sink import MemoryStreamLog, register_stream_steps
from replayflow.store import keys
from replayflow.store.memory import MemoryStore
from replayflow.testing_histories import history_files, load_history

DEFAULT_START = datetime(2026, 1, 1, tzinfo=UTC)


class Deadlock(ReplayflowError):
    """result() was asked for an instance that waits for something only a test can send."""


@dataclass
class _Failure:
    times: int
    error: ErrorInfo


class _States(Mapping[str, InstanceState]):
    """The instances' states as the store holds them, in the order they were started."""

    def __init__(self, env: Environment) -> None:
        self._env = env

    def __getitem__(self, instance_id: str) -> InstanceState:
        state = self._env.folder.state(instance_id)
        if state is None:
            raise KeyError(instance_id)
        return state

    def __iter__(self) -> Iterator[str]:
        store = self._env.folder.store
        return (i for i in list(self._env.histories) if store.get(keys.info(i)) is not None)

    def __len__(self) -> int:
        return sum(1 for _ in self)


class EnvSchedules(ScheduleOps):
    """The schedule operations on the environment: commands are folded at once (a
    refused one raises ValidationError), descriptions fold the schedules' facts."""

    def __init__(self, env: Environment) -> None:
        self._env = env

    def _send(self, command: ScheduleCommand) -> None:
        self._env._submit(command)

    def _now_ms(self) -> int:
        return self._env.now

    def describe(self, schedule_id: str, next: int = 5) -> ScheduleDescription | None:
        rows = fold(self._env.schedule_histories.get(schedule_id, ()))
        row = rows.get(schedule_id)
        if row is None or row["deleted"]:
            return None
        return describe(row, self._env.now, next)

    def history(self, schedule_id: str) -> list[ScheduleEvent]:
        """The schedule's facts, in order."""
        return list(self._env.schedule_histories.get(schedule_id, ()))

    def list(self, next: int = 1) -> list[ScheduleDescription]:
        found = (self.describe(i, next) for i in sorted(self._env.schedule_histories))
        return [d for d in found if d is not None]


class Handle:
    def __init__(self, env: Environment, instance_id: str) -> None:
        self._env = env
        self.id = instance_id

    def result(self, timeout: Duration | None = None) -> Any:
        return self._env.result(self.id, timeout)

    def status(self) -> Status:
        return self._env.status(self.id)

    def stream(
        self, name: str, start: int = 0, settled: bool = False, follow: bool = True
    ) -> Iterator[StreamItem]:
        return self._env.stream(self.id, name, start, settled, follow)

    def __repr__(self) -> str:
        return f"Handle({self.id!r})"


class Environment:
    """An in-process engine on a virtual clock: the orchestrator's fold (`folder`) over
    an in-memory store, its timers fired from the store's index, steps run in-process."""

    def __init__(
        self,
        *items: WorkflowDef | StepDef | ModuleType | Iterable[Any],
        start: datetime = DEFAULT_START,
        cache_size: int = 10_000,
        limits: Limits | None = None,
        concurrency: dict[str, int] | None = None,
    ) -> None:
        self.registry = Registry.of(*items)
        for versions in list(self.registry.workflows.values()):
            for workflow in versions.values():
                # Steps used by a workflow are found in its module, as a worker finds them.
                for value in list(getattr(workflow.fn, "__globals__", {}).values()):
                    if isinstance(value, StepDef) and value.name not in self.registry.steps:
                        self.registry.add(value)
        # DSL built-in steps (same-named steps win); events a document emits are kept
        # here as (topic, key, event) instead of going to Kafka.
        self.emitted: list[tuple[str, str, dict[str, Any]]] = []
        dsl_builtins.register(
            self.registry, lambda topic, key, event: self.emitted.append((topic, key, event))
        )
        register_stream_steps(self.registry)
        # Durable streams in memory: what steps write, and the end the fold records.
        self.streams = MemoryStreamLog()
        self.decider = Decider(
            self.registry, cache_size=cache_size, limits=limits, concurrency=concurrency
        )
        self.folder = PartitionFolder(MemoryStore(), self.decider)
        self.now = round(start.timestamp() * 1000)
        self.states: Mapping[str, InstanceState] = _States(self)
        self.histories: dict[str, list[HistoryEvent]] = {}
        self.facts: list[HistoryEvent] = []  # every history event, in the order written
        self.schedule_histories: dict[str, list[ScheduleEvent]] = {}
        self.schedules = EnvSchedules(self)
        self.completions: dict[str, Completion] = {}
        self.rejected: list[tuple[AnyCommand, str]] = []
        self.max_running: dict[str, int] = {}
        self._commands: deque[AnyCommand] = deque()
        self._tasks: deque[Task] = deque()
        self._ids = itertools.count(1)
        self._failures: dict[str, _Failure] = {}
        self.held: list[Task] = []
        self._holding: set[str] = set()
        # What an orchestrator with this code declares when it starts.
        for declaration in self.registry.schedule_declarations():
            self._submit(declaration)

    # -- what tests do ---------------------------------------------------------------

    def start(
        self,
        workflow: WorkflowDef | str,
        input: Any = None,
        id: str | None = None,
        version: str | None = None,
    ) -> Handle:
        name = workflow.name if isinstance(workflow, WorkflowDef) else workflow
        instance_id = id or f"{name}-{next(self._ids)}"
        self._submit(
            StartWorkflow(
                instance_id=instance_id,
                workflow=name,
                input=dump(input, "the workflow input", self._max_payload),
                version=version,
            )
        )
        return Handle(self, instance_id)

    def send_event(self, instance_id: str, name: str, payload: Any = None) -> None:
        self._submit(
            SendEvent(
                instance_id=instance_id,
                name=name,
                payload=dump(payload, "the event payload", self._max_payload),
            )
        )

    def cancel(self, instance_id: str, reason: str = "") -> None:
        self._submit(CancelWorkflow(instance_id=instance_id, reason=reason))

    def terminate(self, instance_id: str, reason: str = "") -> None:
        self._submit(TerminateWorkflow(instance_id=instance_id, reason=reason))

    def _submit(self, command: AnyCommand) -> None:
        # What a test sends itself fails loudly when the fold rejects it (a bad id, an
        # unknown workflow, no such instance), instead of surfacing later as a Deadlock.
        # deliver() stays silent: rejections land in `rejected` for tests to inspect.
        seen = len(self.rejected)
        self.deliver(command)
        for rejected, reason in self.rejected[seen:]:
            if rejected is command:
                raise ValidationError(reason)

    @property
    def _max_payload(self) -> int:
        return self.decider.limits.max_payload

    def pause(self, instance_id: str, reason: str = "") -> None:
        self._submit(PauseWorkflow(instance_id=instance_id, reason=reason))

    def resume(self, instance_id: str, reason: str = "") -> None:
        self._submit(ResumeWorkflow(instance_id=instance_id, reason=reason))

    def restart(self, instance_id: str, from_step: str | None = None, reason: str = "") -> None:
        """Run the instance again from the start, or from a step (results before it kept)."""
        self._submit(RestartWorkflow(instance_id=instance_id, from_step=from_step, reason=reason))

    def fail_step(
        self,
        name: str,
        times: int = 1,
        error: str = "injected failure",
        retryable: bool = True,
        type: str = "InjectedFailure",
    ) -> None:
        """Make the next `times` attempts of a step (its key or function name) fail."""
        self._failures[name] = _Failure(
            times, ErrorInfo(type=type, message=error, retryable=retryable)
        )

    def hold_step(self, name: str) -> None:
        """Keep the attempts of a step (key or function name) from running: they pile up
        in `held`, as if a worker had died. release_held() runs them."""
        self._holding.add(name)

    def release_held(self) -> None:
        self._holding.clear()
        self._tasks.extend(self.held)
        self.held.clear()
        self.run_until_idle()

    def deliver(self, command: AnyCommand) -> None:
        """Fold any command as if it had arrived on the commands topic."""
        self._commands.append(command)
        self.run_until_idle()

    def advance(self, duration: Duration) -> None:
        """Move the clock forward, firing every timer that falls due on the way."""
        until = self.now + to_ms(duration)
        self.run_until_idle()
        while (due := self._next_due()) is not None and due <= until:
            self._fire_next()
        self.now = until
        self.run_until_idle()

    def outage(self, duration: Duration) -> None:
        """Time passes with no orchestrator running: nothing fires on the way; what came
        due fires when it ends, as after a restart (schedules apply their catch-up
        window to the slots they missed)."""
        self.run_until_idle()
        self.now += to_ms(duration)
        while (due := self._next_due()) is not None and due <= self.now:
            self._fire_next()

    def result(self, instance_id: str, timeout: Duration | None = None) -> Any:
        """The output; raises WorkflowError unless it completed. Jumps the clock over
        sleeps and timers (at most `timeout` of virtual time, when given)."""
        limit = None if timeout is None else self.now + to_ms(timeout)
        self.run_until_idle()
        while not self._final(instance_id):
            due = self._next_due()
            if due is None or (limit is not None and due > limit):
                state = self.folder.state(instance_id)
                what = "no such instance" if state is None else self._waiting_for(state)
                raise Deadlock(f"instance {instance_id!r} cannot finish: {what}")
            self._fire_next()
        completion = self.completions[instance_id]
        if completion.status != Status.COMPLETED:
            raise workflow_error(instance_id, completion.status, completion.error)
        return load(completion.output, "the workflow output")

    def status(self, instance_id: str) -> Status:
        return self.states[instance_id].status

    def history(self, instance_id: str) -> list[HistoryEvent]:
        return list(self.histories.get(instance_id, []))

    def instances(self, workflow: WorkflowDef | str) -> list[str]:
        """The ids of the workflow's instances, in the order they started."""
        name = workflow.name if isinstance(workflow, WorkflowDef) else workflow
        return [
            instance_id
            for instance_id, events in self.histories.items()
            if events and isinstance(events[0], WorkflowStarted) and events[0].workflow == name
        ]

    def replay(self, instance_id: str) -> ReplayReport:
        return replay(self.history(instance_id), self.registry)

    def stream(
        self,
        instance_id: str,
        name: str,
        start: int | str = 0,
        settled: bool = False,
        follow: bool = True,
    ) -> Iterator[StreamItem]:
        """The items of a stream, as handle.stream(name) yields them on Kafka (`start`:
        an offset, or an item's `cursor`). With `follow`, time moves on (timers fire)
        until the stream closes or ends, and Deadlock says when it cannot; without, it
        stops at what was written so far."""
        view = StreamView(instance_id, name, settled, start)
        position = view.start
        while not view.done:
            records = self.streams.of(instance_id, position)
            for offset, record in records:
                position = offset + 1
                yield from view.feed(offset, record)
                if view.done:
                    return
            if not follow:
                return
            if self._next_due() is None:
                state = self.folder.state(instance_id)
                what = "no such instance" if state is None else self._waiting_for(state)
                raise Deadlock(f"stream {name!r} of {instance_id!r} cannot end: {what}")
            self._fire_next()

    # -- the engine ------------------------------------------------------------------

    def run_until_idle(self) -> None:
        while self._commands or self._tasks:
            while self._commands:
                self._fold(self._commands.popleft())
            if self._tasks:
                self._execute(self._tasks.popleft())

    def _fold(self, command: AnyCommand) -> None:
        self.folder.fold(command, self.now)
        self._committed(command)

    def _committed(self, command: AnyCommand) -> None:
        """Commit the batch of one command and take in what the fold produced."""
        records = self.folder.records
        self.folder.committed(None)
        rejected = False
        for record in records:
            if record.topic == "dlq":
                self.rejected.append((command, record.message.reason))
                rejected = True
        target = route(command)
        if rejected:
            # A refused start still tells its schedule that the run will not happen.
            self._commands.extend(r.message for r in records if r.topic == "commands")
            return
        if target.entity is Entity.LIMITER:
            limiter = self.folder.limiter(target.key)
            running = 0 if limiter is None else len(limiter.running)
            self.max_running[target.key] = max(self.max_running.get(target.key, 0), running)
        elif target.entity is Entity.INSTANCE:
            self.histories.setdefault(target.key, [])
        for record in records:
            message = record.message
            if record.topic == "history" and isinstance(message, ScheduleEvent):
                self.schedule_histories.setdefault(message.schedule_id, []).append(message)
            elif record.topic == "history":
                self.histories[message.instance_id].append(message)
                self.facts.append(message)
            elif record.topic == "tasks":
                self._tasks.append(message)
            elif record.topic == "completions":
                self.completions[message.instance_id] = message
            elif record.topic == "commands":
                self._commands.append(message)
            elif record.topic == "streams":
                self.streams.emit(message)

    def _execute(self, task: Task) -> None:
        if task.step in self._holding or task.function in self._holding:
            self.held.append(task)
            return
        failure = self._failures.get(task.step) or self._failures.get(task.function)
        if failure is not None and failure.times > 0:
            failure.times -= 1
            self._commands.append(
                FailStep(
                    instance_id=task.instance_id,
                    step=task.step,
                    attempt=task.attempt,
                    error=failure.error,
                )
            )
            return
        step = self.registry.step(task.function)
        outcome = unknown_step(task) if step is None else run_sync(step, task, sink=self.streams)
        self._commands.append(outcome)

    def _next_due(self) -> int | None:
        """The due time of the next timer in the store's index."""
        key = self.folder.next_timer()
        return None if key is None else keys.parse_timer(key)[0]

    def _fire_next(self) -> None:
        key = self.folder.next_timer()
        if key is None:
            return
        self.now = max(self.now, keys.parse_timer(key)[0])
        self._committed(self.folder.fire_timer(key, self.now))
        self.run_until_idle()

    def _final(self, instance_id: str) -> bool:
        state = self.folder.state(instance_id)
        return state is not None and state.status.is_final

    @staticmethod
    def _waiting_for(state: InstanceState) -> str:
        if state.status is Status.SUSPENDED and state.info.error is not None:
            return f"suspended: {state.info.error.message}"
        pending = [call.describe() for call in state.pending_calls()]
        return f"{state.status.value}, waiting for {', '.join(pending) or 'nothing'}"


# -- recorded histories as regression fixtures (testing_histories.py) ------------------


def replay_files(
    path: str | Path, *items: WorkflowDef | StepDef | ModuleType | Iterable[Any]
) -> dict[Path, ReplayReport]:
    """Replay a history file, or every history file of a folder, on the given code
    (workflows, steps or modules, as for Environment)."""
    registry = Environment(*items).registry
    target = Path(path)
    paths = history_files(target) if target.is_dir() else [target]
    return {p: replay(load_history(p), registry) for p in paths}


def assert_replays(
    path: str | Path, *items: WorkflowDef | StepDef | ModuleType | Iterable[Any]
) -> None:
    """Fail (AssertionError) unless every history at `path` (a file or a folder) replays
    identically on the given code; the message names each file and its difference."""
    different = [
        f"{p.name}: {report.difference}"
        for p, report in replay_files(path, *items).items()
        if not report.identical
    ]
    if different:
        raise AssertionError(
            f"{len(different)} recorded histories do not replay on this code:\n  "
            + "\n  ".join(different)
        )
