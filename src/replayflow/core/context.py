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
from collections.abc import Generator, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from replayflow.core.definitions import StepDef, WorkflowDef
from replayflow.core.durations import Duration, to_ms
from replayflow.core.errors import ValidationError
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


@dataclass(eq=False)
class AllRequest(Request):
    members: list[Single]
    return_exceptions: bool = False


@dataclass(eq=False)
class FirstRequest(Request):
    members: list[Single]


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
