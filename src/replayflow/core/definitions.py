"""What users declare: steps and workflows, and the registry that finds them by name."""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any, Protocol, cast, overload

from replayflow.core.durations import Duration, to_ms
from replayflow.core.errors import ValidationError
from replayflow.core.names import check_name, check_version, version_key
from replayflow.core.policy import DEFAULT_RETRY, Retry
from replayflow.core.schedule_declaration import Schedule, as_schedules
from replayflow.core.schedule_messages import CreateSchedule
from replayflow.core.triggers import KafkaTrigger

WorkflowFn = Callable[..., Awaitable[Any]]


@dataclass(frozen=True)
class StepDef:
    """A step function with its name and policies. Calling it calls the function."""

    name: str
    fn: Callable[..., Any]
    retry: Retry = DEFAULT_RETRY
    timeout_ms: int | None = None

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.fn(*args, **kwargs)

    @property
    def is_async(self) -> bool:
        return inspect.iscoroutinefunction(self.fn)


@dataclass(frozen=True)
class WorkflowDef:
    name: str
    version: str
    fn: WorkflowFn
    timeout_ms: int | None = None
    concurrency: int | None = None  # most instances running at once; None: no limit
    takes_input: bool = True
    triggers: tuple[KafkaTrigger, ...] = ()  # topics whose records start or feed it
    schedules: tuple[Schedule, ...] = ()  # created or updated when an orchestrator starts

    async def __call__(self, ctx: Any, input: Any = None) -> Any:
        # ctx is the instance's rf.Context. It is not named here: context.py builds on
        # these declarations, and this module stays below it.
        if self.takes_input:
            return await self.fn(ctx, input)
        return await self.fn(ctx)


@overload
def step(fn: Callable[..., Any], /) -> StepDef: ...
@overload
def step(
    *, name: str | None = None, retry: Retry | None = None, timeout: Duration | None = None
) -> Callable[[Callable[..., Any]], StepDef]: ...


def step(
    fn: Callable[..., Any] | None = None,
    /,
    *,
    name: str | None = None,
    retry: Retry | None = None,
    timeout: Duration | None = None,
) -> StepDef | Callable[[Callable[..., Any]], StepDef]:
    """Declare a step: `@rf.step` or `@rf.step(retry=rf.Retry(...), timeout="10m")`."""

    def wrap(f: Callable[..., Any]) -> StepDef:
        if isinstance(f, StepDef):
            raise ValidationError(f"{f.name} is a step already")
        return StepDef(
            name=check_name(name or f.__name__, "step name"),
            fn=f,
            retry=retry or DEFAULT_RETRY,
            timeout_ms=None if timeout is None else to_ms(timeout),
        )

    return wrap(fn) if fn is not None else wrap


@overload
def workflow(fn: WorkflowFn, /) -> WorkflowDef: ...
@overload
def workflow(
    *,
    name: str | None = None,
    version: str = "1",
    timeout: Duration | None = None,
    concurrency: int | None = None,
    trigger: KafkaTrigger | Iterable[KafkaTrigger] | None = None,
    schedule: Schedule | Sequence[Schedule] | None = None,
) -> Callable[[WorkflowFn], WorkflowDef]: ...


def workflow(
    fn: WorkflowFn | None = None,
    /,
    *,
    name: str | None = None,
    version: str = "1",
    timeout: Duration | None = None,
    concurrency: int | None = None,
    trigger: KafkaTrigger | Iterable[KafkaTrigger] | None = None,
    schedule: Schedule | Sequence[Schedule] | None = None,
) -> WorkflowDef | Callable[[WorkflowFn], WorkflowDef]:
    """Declare a workflow: an `async def f(ctx, input)` whose awaits are durable.

    `trigger=rf.KafkaTrigger(...)` (or several) starts it from records of a topic.
    `schedule=rf.Schedule(...)` (or a list of them) starts it on a schedule: every
    orchestrator that loads this code creates or updates that schedule when it starts."""

    def wrap(f: WorkflowFn) -> WorkflowDef:
        if not inspect.iscoroutinefunction(f):
            raise ValidationError(f"workflow {f.__name__!r} must be an async def")
        params = list(inspect.signature(f).parameters)
        if not 1 <= len(params) <= 2:
            raise ValidationError(f"workflow {f.__name__!r} takes (ctx) or (ctx, input)")
        if concurrency is not None and (not isinstance(concurrency, int) or concurrency < 1):
            raise ValidationError(f"concurrency must be a positive integer, got {concurrency!r}")
        workflow_name = check_name(name or f.__name__, "workflow name")
        return WorkflowDef(
            name=workflow_name,
            version=check_version(str(version)),
            fn=f,
            timeout_ms=None if timeout is None else to_ms(timeout),
            concurrency=concurrency,
            takes_input=len(params) == 2,
            triggers=_triggers(trigger, workflow_name),
            schedules=as_schedules(schedule, workflow_name),
        )

    return wrap(fn) if fn is not None else wrap


def _triggers(
    trigger: KafkaTrigger | Iterable[KafkaTrigger] | None, workflow_name: str
) -> tuple[KafkaTrigger, ...]:
    declared = [trigger] if isinstance(trigger, KafkaTrigger) else list(trigger or ())
    for item in declared:
        if not isinstance(item, KafkaTrigger):
            raise ValidationError(f"trigger= takes rf.KafkaTrigger objects, not {item!r}")
    attached = tuple(item.for_workflow(workflow_name) for item in declared)
    for item in attached:
        item.trigger_name  # noqa: B018 - a derived name too long for a group id fails here
    return attached


class WorkflowSource(Protocol):
    def workflow(self, name: str, version: str | None) -> WorkflowDef | None:
        """The named workflow (the newest version when `version` is None), or None."""
        ...


@dataclass
class Registry:
    """Workflows by name and version, steps by name. Built from modules or objects."""

    workflows: dict[str, dict[str, WorkflowDef]] = field(default_factory=dict)
    steps: dict[str, StepDef] = field(default_factory=dict)
    sources: list[WorkflowSource] = field(default_factory=list)

    def add_source(self, source: WorkflowSource) -> None:
        """Workflows defined elsewhere (deployed documents), asked after the code ones."""
        self.sources.append(source)

    @classmethod
    def of(cls, *items: WorkflowDef | StepDef | ModuleType | Iterable[Any]) -> Registry:
        registry = cls()
        for item in items:
            registry.add(item)
        return registry

    def add(self, item: WorkflowDef | StepDef | ModuleType | Iterable[Any]) -> None:
        if isinstance(item, WorkflowDef):
            versions = self.workflows.setdefault(item.name, {})
            known = versions.get(item.version)
            if known is not None and known.fn is not item.fn:
                raise ValidationError(
                    f"workflow {item.name!r} version {item.version!r} is declared twice"
                )
            versions[item.version] = item
        elif isinstance(item, StepDef):
            known_step = self.steps.get(item.name)
            if known_step is not None and known_step.fn is not item.fn:
                raise ValidationError(
                    f"two steps are named {item.name!r}: give one @rf.step(name=...)"
                )
            self.steps[item.name] = item
        elif isinstance(item, ModuleType):
            for value in list(vars(item).values()):
                if isinstance(value, WorkflowDef | StepDef):
                    self.add(value)
        else:
            # mypy does not narrow ModuleType out of the union after the isinstance above.
            for value in cast("Iterable[Any]", item):
                self.add(value)

    def workflow(self, name: str, version: str | None = None) -> WorkflowDef | None:
        versions = self.workflows.get(name)
        if versions:
            if version is None:
                return versions[max(versions, key=version_key)]
            found = versions.get(version)
            if found is not None:
                return found
        for source in self.sources:
            found = source.workflow(name, version)
            if found is not None:
                return found
        return None

    def step(self, name: str) -> StepDef | None:
        return self.steps.get(name)

    def schedule_declarations(self) -> list[CreateSchedule]:
        """The schedules the code declares (on the newest version of each workflow), as
        upserts: every orchestrator sends them when it starts, and one schedule exists."""
        found = []
        for name in sorted(self.workflows):
            newest = self.workflow(name)
            for schedule in newest.schedules if newest is not None else ():
                found.append(schedule.create_command(schedule.id or name, name, upsert=True))
        return found
