"""Running a workflow's code inside a decision: the live (or rebuilt) coroutine, the new
calls it asks for, and what its outcome does to the instance (wait, complete, fail,
suspend, end)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any

from replayflow.core.context import (
    ChildRequest,
    EventRequest,
    PatchRequest,
    Single,
    SleepRequest,
    StepRequest,
)
from replayflow.core.decide.attempts import new_step
from replayflow.core.decide.calls import record_dropped, soon
from replayflow.core.decide.children import report_to_parent, start_child, stop_children
from replayflow.core.decide.patches import new_patch
from replayflow.core.decide.waits import new_sleep, new_wait
from replayflow.core.decision import Decision, DecisionBuilder
from replayflow.core.definitions import Registry, WorkflowDef
from replayflow.core.driver import Driver, DriverCache, Outcome, Returned, Waiting
from replayflow.core.errors import Cancelled, NonDeterminismError, PayloadError, error_info
from replayflow.core.messages import (
    Completion,
    ErrorInfo,
    ReleaseSlot,
    WorkflowCancelled,
    WorkflowCompleted,
    WorkflowFailed,
    WorkflowSuspended,
)
from replayflow.core.patching import RecordedMarkers
from replayflow.core.payloads import DEFAULT_MAX_PAYLOAD, dump
from replayflow.core.schedule_messages import ScheduleRunEnded
from replayflow.core.state import Call, Info, Status

LIMITER_PREFIX = "~limiter:"  # '~' cannot start an instance id, so keys never collide


def limiter_key(workflow: str) -> str:
    return f"{LIMITER_PREFIX}{workflow}"


#: Which limiter an instance asks for a slot, and the limit that limiter holds:
#: (workflow, instance id, the workflow's limit) -> (limiter key, its limit). The
#: default is the workflow's one limiter; the orchestrator shards it per partition
#: (processors/admission.py), a pure function of its arguments and the partition count.
Admission = Callable[[str, str, int], tuple[str, int]]


def one_limiter(workflow: str, instance_id: str, limit: int) -> tuple[str, int]:
    return limiter_key(workflow), limit


@dataclass(frozen=True)
class Limits:
    max_calls: int = 25_000
    max_payload: int = DEFAULT_MAX_PAYLOAD
    # Events kept for a later wait live in the instance's state record; bounding them
    # keeps that record within what the log accepts.
    max_inbox: int = 4 * DEFAULT_MAX_PAYLOAD


class Runner:
    """The workflows of one registry, the limits they run under, and a bounded cache of
    live coroutines; a miss rebuilds by replaying the recorded calls, which gives the
    same decisions (tests check both paths).

    `keep_idle` keeps coroutines that wait on long sleeps or events in the cache too.
    The live fold lets them go (they may wait for days); replay folds a whole history
    at once, and rebuilding at each decision would make it quadratic."""

    def __init__(
        self,
        registry: Registry,
        *,
        cache_size: int = 10_000,
        limits: Limits | None = None,
        concurrency: dict[str, int] | None = None,
        keep_idle: bool = False,
        recorded: RecordedMarkers | None = None,
        admission: Admission = one_limiter,
    ) -> None:
        self.registry = registry
        self.limits = limits or Limits()
        self.cache = DriverCache(cache_size)
        self.keep_idle = keep_idle
        # Per-workflow concurrency limits that override the ones in the code.
        self.concurrency = dict(concurrency or {})
        # Re-folding recorded history (replay, rebuild): the patch markers it holds.
        self.recorded = recorded
        self.admission = admission

    def concurrency_of(self, workflow: WorkflowDef) -> int | None:
        return self.concurrency.get(workflow.name, workflow.concurrency)

    def workflow_of(self, info: Info) -> WorkflowDef:
        workflow = self.registry.workflow(info.workflow, info.version)
        if workflow is None:
            # The code for a running instance's version was removed from the deployment.
            raise LookupError(
                f"workflow {info.workflow!r} version {info.version!r} is not "
                "registered, but an instance of it is running"
            )
        return workflow

    def run(self, b: DecisionBuilder, workflow: WorkflowDef) -> Decision:
        """Advance the coroutine after the builder recorded what changed."""
        if b.info.status is not Status.RUNNING:
            return b.build()
        driver = self.driver(b, workflow)
        return self.settle(b, driver, self.advance(b, driver))

    def driver(self, b: DecisionBuilder, workflow: WorkflowDef) -> Driver:
        """The live coroutine from the cache, or a new one that a first advance() rebuilds
        from the recorded calls."""
        driver = self.cache.take(b.info.instance_id, b.info.seq)
        if driver is None:
            start_at = b.info.admitted_at or b.info.started_at
            driver = Driver(
                workflow, b.info, start_at, self.limits.max_payload, recorded=self.recorded
            )
        return driver

    def advance(self, b: DecisionBuilder, driver: Driver) -> Outcome:
        # (A partial, not a lambda: the driver calls it without a frame of its own.)
        return driver.advance(b.calls, partial(self._new_call, b), self.limits.max_calls)

    def settle(self, b: DecisionBuilder, driver: Driver, outcome: Outcome) -> Decision:
        """Record what the coroutine did: wait (keep it live), return, or raise."""
        if isinstance(outcome, Waiting):
            decision = b.build()
            driver.seq = decision.state.info.seq if decision.state else -1
            if self.keep_idle or _any_soon(b, driver.awaiting()):
                self.cache.put(b.info.instance_id, driver)
            else:
                # Waiting on sleeps or events only: it may wait for days, so its memory
                # goes back; the next decision rebuilds it from the recorded calls.
                driver.close()
            return decision
        if isinstance(outcome, Returned):
            try:
                output = dump(outcome.value, "the workflow output", self.limits.max_payload)
            except PayloadError as exc:
                failure = error_info(exc, retryable=False)
                self.end(b, Status.FAILED, WorkflowFailed, {"error": failure}, error=failure)
                return b.build()
            self.end(b, Status.COMPLETED, WorkflowCompleted, {"output": output}, output=output)
            return b.build()
        error = outcome.error
        if isinstance(error, NonDeterminismError):
            info = ErrorInfo(type="NonDeterminismError", message=str(error), retryable=False)
            b.update_info(status=Status.SUSPENDED, error=info)
            b.emit(WorkflowSuspended, error=info)
            return b.build()
        if isinstance(error, Cancelled):
            reason = b.info.reason or error.reason
            self.end(b, Status.CANCELLED, WorkflowCancelled, {"reason": reason}, reason=reason)
            return b.build()
        info = error_info(error, retryable=False)
        self.end(b, Status.FAILED, WorkflowFailed, {"error": info}, error=info)
        return b.build()

    def build_unawaited(self, b: DecisionBuilder) -> Decision:
        """Build a decision that resolves nothing the coroutine awaits (an event kept for
        a later wait, a retry scheduled): its live driver stays valid for the new seq."""
        seq = b.info.seq
        decision = b.build()
        if decision.state is not None:
            self.cache.retag(b.info.instance_id, seq, decision.state.info.seq)
        return decision

    def _new_call(self, b: DecisionBuilder, member: Single | PatchRequest, key: str) -> Call:
        if isinstance(member, StepRequest):  # most calls: asked first
            return new_step(b, self.registry, member, key)
        if isinstance(member, PatchRequest):
            return new_patch(b, member, key)
        if isinstance(member, ChildRequest):
            return start_child(b, self.registry, member, key)
        if isinstance(member, SleepRequest):
            return new_sleep(b, member, key)
        assert isinstance(member, EventRequest)
        return new_wait(b, member, key)

    def end(
        self,
        b: DecisionBuilder,
        status: Status,
        event_type: type[Any],
        fields: dict[str, Any],
        **info: Any,
    ) -> None:
        """Finish the instance: the final event, the completion, timers and slot freed,
        children stopped, the coroutine dropped."""
        pending = [c for c in b.calls if c.status.is_pending]
        record_dropped(b, pending, status.value)
        b.emit(event_type, **fields)
        b.cancel_all_timers()
        b.update_info(status=status, ended_at=b.now, **info)
        b.completion = Completion(
            instance_id=b.info.instance_id,
            workflow=b.info.workflow,
            version=b.info.version,
            status=status.value,
            at=b.now,
            output=b.info.output,
            error=b.info.error,
        )
        if b.info.limiter is not None:
            b.commands.append(ReleaseSlot(limiter=b.info.limiter, instance_id=b.info.instance_id))
        if b.info.parent_id is not None and b.info.parent_step is not None:
            b.commands.append(report_to_parent(b.info, status))
        if b.info.schedule_id is not None:
            # As a child reports to its parent: the schedule learns its run ended.
            b.commands.append(
                ScheduleRunEnded(
                    schedule_id=b.info.schedule_id,
                    instance_id=b.info.instance_id,
                    status=status.value,
                )
            )
        stop_children(b, pending, status.value.lower())
        self.cache.drop(b.info.instance_id)


def _any_soon(b: DecisionBuilder, awaited: tuple[int, ...]) -> bool:
    # A loop, not any() over a generator: asked on every decision that waits.
    calls, now = b.calls, b.now
    for i in awaited:  # noqa: SIM110 - see above
        if soon(calls[i], now):
            return True
    return False
