"""The workflow author's handle: ctx.step, ctx.sleep, ctx.wait_for_event, ctx.all, and
deterministic now/random/uuid4.

Each awaitable is a request the replay driver answers from history or turns into a new
call. Code between awaits runs again on every replay, so it must not have side effects
of its own: put those in steps.
"""

from __future__ import annotations

import hashlib
import random as _random
import uuid
from collections.abc import Callable, Generator, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from replayflow.core.definitions import StepDef, WorkflowDef
from replayflow.core.durations import Duration, to_ms
from replayflow.core.errors import ReplayflowError, ValidationError
from replayflow.core.names import check_name
from replayflow.core.payloads import DEFAULT_MAX_PAYLOAD, dump
from replayflow.core.policy import Retry
from replayflow.core.state import CallKind


class Request:
    """Something a workflow awaits. Yielded to the driver, which sends back the answer."""

    def __await__(self) -> Generator[Request, Any, Any]:
        return (yield self)


UNSET = -1  # a step called by name without a timeout: use the declared one


@dataclass(eq=False)
class StepRequest(Request):
    name: str
    function: str
    input: str
    retry: Retry | None  # None: the registered step's policy (or the default)
    timeout_ms: int | None  # UNSET: the registered step's timeout

    kind = CallKind.STEP


@dataclass(eq=False)
class SleepRequest(Request):
    name: str
    until: int  # ms since epoch

    kind = CallKind.SLEEP


@dataclass(eq=False)
class EventRequest(Request):
    name: str
    timeout_ms: int | None

    kind = CallKind.EVENT


@dataclass(eq=False)
class ChildRequest(Request):
    name: str
    workflow: str
    version: str | None
    input: str

    kind = CallKind.CHILD


Single = StepRequest | SleepRequest | EventRequest | ChildRequest


@dataclass(frozen=True)
class PatchRequest:
    """A patch marker the driver records (ctx.patched / ctx.deprecate_patch). Not
    awaited: the code asks for it and goes on at once."""

    name: str
    deprecated: bool = False

    kind = CallKind.PATCH


# The driver's answer to ctx.patched(id) (deprecated=False) or ctx.deprecate_patch(id).
PatchHook = Callable[[str, bool], bool]


@dataclass(eq=False)
class AllRequest(Request):
    members: list[Single]
    return_exceptions: bool = False


@dataclass(eq=False)
class FirstRequest(Request):
    members: list[Single]


#: Built-in steps a workflow body writes to its streams through (core/streams.py).
WRITE_STEP = "rf_stream_write"
CLOSE_STEP = "rf_stream_close"


@dataclass(frozen=True)
class WorkflowStream:
    """`ctx.stream("status")` in a workflow body. Each write is a built-in step, so it
    is recorded in history and happens once, whatever the replays: await it. For many
    values (tokens), write from inside a step (rf.current_step().stream(...)): no
    round trip per value."""

    name: str
    max_payload: int = DEFAULT_MAX_PAYLOAD

    def write(self, value: Any) -> StepRequest:
        return self._step(f"stream-{self.name}", WRITE_STEP, [self.name, value])

    def close(self) -> StepRequest:
        return self._step(f"stream-{self.name}-close", CLOSE_STEP, [self.name])

    def _step(self, name: str, function: str, args: list[Any]) -> StepRequest:
        payload = dump(
            {"args": args, "kwargs": {}}, f"a write to stream {self.name!r}", self.max_payload
        )
        return StepRequest(
            name=name, function=function, input=payload, retry=None, timeout_ms=UNSET
        )


class Context:
    """Passed to every workflow function. Everything it returns is the same on replay."""

    def __init__(
        self,
        instance_id: str,
        workflow: str,
        version: str,
        started_at: int,
        max_payload: int = DEFAULT_MAX_PAYLOAD,
    ) -> None:
        self.instance_id = instance_id
        self.workflow = workflow
        self.version = version
        self._now = started_at
        self._max_payload = max_payload
        self._patch_hook: PatchHook | None = None  # set by the driver that runs the code
        self._random_source: _random.Random | None = None  # made on first use

    def _random(self) -> _random.Random:
        # Seeded from the instance id, so every replay draws the same values. Seeding
        # costs a few microseconds: only code that asks for randomness pays it.
        if self._random_source is None:
            seed = hashlib.sha256(f"replayflow/{self.instance_id}".encode()).digest()
            self._random_source = _random.Random(int.from_bytes(seed[:16], "big"))
        return self._random_source

    # -- durable operations --------------------------------------------------------

    def step(
        self,
        name: str,
        fn: StepDef | str,
        *args: Any,
        retry: Retry | None = None,
        timeout: Duration | None = None,
        **kwargs: Any,
    ) -> StepRequest:
        """Run `fn` as a durable step; await the result. `name` identifies the call in
        history: give calls in a loop distinct names, or reuse one and get name#2, ..."""
        check_name(name, "step name")
        policy: Retry | None
        timeout_ms: int | None
        if isinstance(fn, StepDef):
            function, policy, timeout_ms = fn.name, fn.retry, fn.timeout_ms
        elif isinstance(fn, str):
            # By name: the fold takes the policies the step was declared with.
            function, policy, timeout_ms = check_name(fn, "step function"), None, UNSET
        else:
            raise ValidationError(
                f"ctx.step({name!r}, ...) needs a function declared with "
                f"@rf.step (or its name), got {fn!r}"
            )
        if retry is not None:
            policy = retry
        if timeout is not None:
            timeout_ms = to_ms(timeout)
        payload = dump(
            {"args": list(args), "kwargs": kwargs}, f"the input of step {name!r}", self._max_payload
        )
        return StepRequest(
            name=name, function=function, input=payload, retry=policy, timeout_ms=timeout_ms
        )

    def sleep(self, name: str, duration: Duration) -> SleepRequest:
        """Sleep durably: a sleep of a year costs one timer entry, not a process."""
        return SleepRequest(name=check_name(name, "sleep name"), until=self._now + to_ms(duration))

    def sleep_until(self, name: str, when: datetime) -> SleepRequest:
        if when.tzinfo is None:
            raise ValidationError("sleep_until needs a timezone-aware datetime")
        return SleepRequest(
            name=check_name(name, "sleep name"), until=round(when.timestamp() * 1000)
        )

    def wait_for_event(self, name: str, timeout: Duration | None = None) -> EventRequest:
        """Wait for an event sent to this instance (events sent earlier are kept, in
        order). Raises rf.EventTimeout when the timeout passes first."""
        return EventRequest(
            name=check_name(name, "event name"),
            timeout_ms=None if timeout is None else to_ms(timeout),
        )

    def stream(self, name: str) -> WorkflowStream:
        """A named stream of this instance: `await ctx.stream("status").write(value)`.
        Callers read it live with `handle.stream("status")`."""
        return WorkflowStream(check_name(name, "stream name"), self._max_payload)

    def child(
        self, name: str, workflow: str | WorkflowDef, input: Any = None, version: str | None = None
    ) -> ChildRequest:
        """Start a child workflow instance and await its output. Its id is derived from
        this instance's and `name`; a child that does not complete raises rf.StepFailed.
        Cancelling or terminating this instance does the same to a running child."""
        check_name(name, "child name")
        target = workflow.name if isinstance(workflow, WorkflowDef) else workflow
        payload = dump(input, f"the input of child {name!r}", self._max_payload)
        return ChildRequest(
            name=name, workflow=check_name(target, "workflow name"), version=version, input=payload
        )

    def all(self, requests: Iterable[Request], return_exceptions: bool = False) -> AllRequest:
        """Await several steps, sleeps, event waits or children at once; a list of their
        results. The first failure (in the order outcomes were recorded) is raised, or,
        with return_exceptions, every member is awaited and failures come back in place
        as exceptions (rf.StepFailed, rf.EventTimeout, rf.Cancelled)."""
        return AllRequest(
            members=_members(requests, "ctx.all"), return_exceptions=return_exceptions
        )

    def first(self, requests: Iterable[Request]) -> FirstRequest:
        """Await the first of several operations to finish: (its index, its result), or
        its failure raised. "First" is the order outcomes were recorded in, so replay
        picks the same one. The others go on unawaited (a step still runs, an event
        wait no longer receives)."""
        members = _members(requests, "ctx.first")
        if not members:
            raise ValidationError("ctx.first needs at least one operation")
        return FirstRequest(members=members)

    # -- changing code safely ----------------------------------------------------------

    def patched(self, patch_id: str) -> bool:
        """Whether to take the new path of a code change:

            if ctx.patched("new-fraud-check"):
                await ctx.step("fraud", check_fraud, order)

        True in instances that reach this point for the first time under this code (new
        ones, and older ones that had not got this far): a marker is recorded and every
        replay of this run takes the new path too. False where history shows the code
        ran past this point without the marker (the old code did): the old path keeps
        replays identical. The first answer for an id holds for the rest of the run."""
        return self._patch(patch_id, deprecated=False)

    def deprecate_patch(self, patch_id: str) -> None:
        """The step after ctx.patched, once no instance that took the old path runs any
        more: drop the old branch and the `if`, keep this call. It accepts histories
        with the marker (made by ctx.patched) and without it, and records a deprecated
        marker, which later code that no longer names the patch at all may skip."""
        self._patch(patch_id, deprecated=True)

    def _patch(self, patch_id: str, deprecated: bool) -> bool:
        check_name(patch_id, "patch id")
        if self._patch_hook is None:
            raise ReplayflowError("ctx.patched works only in a running workflow")
        return self._patch_hook(patch_id, deprecated)

    # -- deterministic values --------------------------------------------------------

    def now(self) -> datetime:
        """The time the current code runs at, as recorded: the same on every replay."""
        return datetime.fromtimestamp(self._now / 1000, tz=UTC)

    def now_ms(self) -> int:
        return self._now

    def random(self) -> float:
        """A float in [0, 1): seeded by the instance id, the same on every replay."""
        return self._random().random()

    def uuid4(self) -> uuid.UUID:
        return uuid.UUID(int=self._random().getrandbits(128), version=4)

    def _set_now(self, ms: int) -> None:
        self._now = ms


def _members(requests: Iterable[Request], what: str) -> list[Single]:
    members: list[Single] = []
    for request in requests:
        if not isinstance(request, StepRequest | SleepRequest | EventRequest | ChildRequest):
            raise ValidationError(
                f"{what} takes ctx.step, ctx.sleep, ctx.wait_for_event or "
                f"ctx.child calls, got {request!r}"
            )
        members.append(request)
    return members
