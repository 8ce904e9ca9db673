"""decide(): the fold. One handler per command type; an unknown type is a programming
error and raises.

Everything here is a function of (state, command, now) and the registered workflow code:
no clock, no randomness of the machine, no I/O. Timer ids name what they are for, so a
fired timer is matched to its purpose without extra state:

    workflow/timeout              the whole instance's timeout
    step/<key>/timeout/<attempt>  one attempt's timeout
    step/<key>/retry/<attempt>    the backoff after a failed attempt
    sleep/<index>                 ctx.sleep
    event/<index>/timeout         wait_for_event's timeout
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from replayflow.core.context import (
    UNSET,
    ChildRequest,
    EventRequest,
    Single,
    SleepRequest,
    StepRequest,
)
from replayflow.core.decision import Decision, DecisionBuilder
from replayflow.core.definitions import Registry, WorkflowDef
from replayflow.core.driver import Driver, DriverCache, Outcome, Returned, Waiting
from replayflow.core.errors import (
    Cancelled,
    NonDeterminismError,
    PayloadError,
    ValidationError,
    error_info,
)
from replayflow.core.messages import (
    AcquireSlot,
    CancelRequested,
    CancelWorkflow,
    Command,
    CompleteStep,
    Completion,
    ErrorInfo,
    EventAwaited,
    EventReceived,
    FailStep,
    FireTimer,
    GrantSlot,
    PauseWorkflow,
    ReleaseSlot,
    RestartWorkflow,
    ResumeWorkflow,
    SendEvent,
    StartWorkflow,
    StepCompleted,
    StepFailed,
    StepScheduled,
    Task,
    TerminateWorkflow,
    TimerFired,
    TimerStarted,
    WorkflowAdmitted,
    WorkflowCancelled,
    WorkflowCompleted,
    WorkflowFailed,
    WorkflowPaused,
    WorkflowQueued,
    WorkflowRestarted,
    WorkflowResumed,
    WorkflowStarted,
    WorkflowSuspended,
    WorkflowTerminated,
    WorkflowTimedOut,
)
from replayflow.core.names import check_instance_id, check_name
from replayflow.core.payloads import DEFAULT_MAX_PAYLOAD, check_size, dump, load
from replayflow.core.policy import Retry
from replayflow.core.state import Call, CallKind, CallStatus, Info, InstanceState, Status

WORKFLOW_TIMEOUT = "workflow/timeout"
SHORT_SLEEP_MS = 60_000  # a sleep this short (a retry backoff, a poll) keeps the coroutine


def _soon(call: Call, now: int) -> bool:
    """Whether an awaited call is likely to resolve soon: a step or child out, or a
    short sleep. Instances awaiting only long sleeps or events leave the cache."""
    if call.kind in (CallKind.STEP, CallKind.CHILD):
        return True
    return call.kind is CallKind.SLEEP and (call.deadline or 0) - now <= SHORT_SLEEP_MS


LIMITER_PREFIX = "~limiter:"  # '~' cannot start an instance id, so keys never collide


def limiter_key(workflow: str) -> str:
    return f"{LIMITER_PREFIX}{workflow}"


@dataclass(frozen=True)
class Limits:
    max_calls: int = 25_000
    max_payload: int = DEFAULT_MAX_PAYLOAD
    # Events kept for a later wait live in the instance's state record; bounding them
    # keeps that record within what the log accepts.
    max_inbox: int = 4 * DEFAULT_MAX_PAYLOAD


class Decider:
    """Folds commands into instance state with the workflows of one registry.

    Holds a bounded cache of live coroutines; a miss rebuilds by replaying the recorded
    calls, which gives the same decisions (tests check both paths)."""

    def __init__(
        self,
        registry: Registry,
        *,
        cache_size: int = 10_000,
        limits: Limits | None = None,
        concurrency: dict[str, int] | None = None,
    ) -> None:
        self.registry = registry
        self.limits = limits or Limits()
        self.cache = DriverCache(cache_size)
        # Per-workflow concurrency limits that override the ones in the code.
        self.concurrency = dict(concurrency or {})
        self._handlers: dict[type[Any], Callable[[Any, Any, int], Decision]] = {
            StartWorkflow: self._start,
            GrantSlot: self._grant,
            CompleteStep: self._complete_step,
            FailStep: self._fail_step,
            FireTimer: self._fire_timer,
            SendEvent: self._send_event,
            CancelWorkflow: self._cancel,
            TerminateWorkflow: self._terminate,
            PauseWorkflow: self._pause,
            ResumeWorkflow: self._resume,
            RestartWorkflow: self._restart,
        }

    def decide(self, state: InstanceState | None, command: Command, now: int) -> Decision:
        handler = self._handlers.get(type(command))
        if handler is None:
            raise TypeError(f"decide() has no handler for {type(command).__name__}")
        return handler(state, command, now)

    def forget(self, instance_id: str) -> None:
        """Drop the instance's live coroutine (the batch that touched it aborted)."""
        self.cache.drop(instance_id)

    # -- start and admission -----------------------------------------------------------

    def _start(self, state: InstanceState | None, cmd: StartWorkflow, now: int) -> Decision:
        if state is not None:
            return Decision(state=state)  # the first start wins
        try:
            check_instance_id(cmd.instance_id)
            _check_parent(cmd)
            check_size(cmd.input, "the workflow input", self.limits.max_payload)
            load(cmd.input, "the workflow input")
        except ValidationError as exc:
            return Decision(state=None, rejected=str(exc))
        workflow = self.registry.workflow(cmd.workflow, cmd.version)
        if workflow is None:
            known = self.registry.workflows.get(cmd.workflow)
            why = (
                f"unknown version {cmd.version!r} of workflow {cmd.workflow!r} "
                f"(known: {', '.join(sorted(known))})"
                if known
                else f"unknown workflow {cmd.workflow!r}"
            )
            return Decision(state=None, rejected=why)
        info = Info(
            instance_id=cmd.instance_id,
            workflow=workflow.name,
            version=workflow.version,
            status=Status.RUNNING,
            input=cmd.input,
            started_at=now,
            parent_id=cmd.parent_id,
            parent_step=cmd.parent_step,
        )
        b = DecisionBuilder(info=info, calls=[], now=now)
        b.emit(
            WorkflowStarted,
            workflow=workflow.name,
            version=workflow.version,
            input=cmd.input,
            parent_id=cmd.parent_id,
            parent_step=cmd.parent_step,
        )
        if workflow.timeout_ms is not None:
            b.set_timer(WORKFLOW_TIMEOUT, now + workflow.timeout_ms)
        limit = self.concurrency.get(workflow.name, workflow.concurrency)
        if limit is not None:
            limiter = limiter_key(workflow.name)
            b.update_info(status=Status.QUEUED, limiter=limiter)
            b.emit(WorkflowQueued, limiter=limiter)
            b.commands.append(
                AcquireSlot(limiter=limiter, instance_id=cmd.instance_id, limit=limit)
            )
            return b.build()
        return self._run(b, workflow)

    def _grant(self, state: InstanceState | None, cmd: GrantSlot, now: int) -> Decision:
        if state is None or state.info.limiter is None:
            return Decision(state=state)
        if state.status.is_final:
            # Ended while it waited in the queue: hand the slot straight back.
            return Decision(
                state=state,
                commands=(ReleaseSlot(limiter=state.info.limiter, instance_id=cmd.instance_id),),
            )
        if state.status is not Status.QUEUED:
            return Decision(state=state)  # a duplicate grant
        b = DecisionBuilder.from_state(state, now)
        b.update_info(status=Status.RUNNING, admitted_at=now)
        b.emit(WorkflowAdmitted)
        return self._run(b, self._workflow_of(state.info))

    # -- step results ----------------------------------------------------------------

    def _complete_step(self, state: InstanceState | None, cmd: CompleteStep, now: int) -> Decision:
        call = _current_attempt(state, cmd.step, cmd.attempt)
        if state is None or call is None:
            return Decision(state=state)  # duplicate, straggler or late: changes nothing
        try:
            check_size(cmd.result, f"the result of step {cmd.step!r}", self.limits.max_payload)
            load(cmd.result, f"the result of step {cmd.step!r}")
        except PayloadError as exc:
            return self._fail_step(
                state,
                FailStep(
                    instance_id=cmd.instance_id,
                    step=cmd.step,
                    attempt=cmd.attempt,
                    error=ErrorInfo(type="PayloadError", message=str(exc), retryable=False),
                ),
                now,
            )
        b = DecisionBuilder.from_state(state, now)
        seq = b.emit(StepCompleted, step=call.key, attempt=call.attempt, result=cmd.result)
        b.cancel_timer(_attempt_timeout(call.key, call.attempt))
        b.put_call(
            replace(
                call,
                status=CallStatus.COMPLETED,
                result=cmd.result,
                resolved_seq=seq,
                resolved_at=now,
            )
        )
        return self._run(b, self._workflow_of(state.info))

    def _fail_step(self, state: InstanceState | None, cmd: FailStep, now: int) -> Decision:
        call = _current_attempt(state, cmd.step, cmd.attempt)
        if state is None or call is None:
            return Decision(state=state)
        b = DecisionBuilder.from_state(state, now)
        b.cancel_timer(_attempt_timeout(call.key, call.attempt))
        self._fail_attempt(b, call, cmd.error)
        return self._run(b, self._workflow_of(state.info))

    def _fail_attempt(self, b: DecisionBuilder, call: Call, error: ErrorInfo) -> None:
        retry = Retry.from_dict(call.retry) if call.retry else Retry()
        used = call.attempt - call.first_attempt + 1
        if error.retryable and used < retry.limit:
            due = b.now + retry.delay_ms(used, f"{b.info.instance_id}/{call.key}")
            b.emit(StepFailed, step=call.key, attempt=call.attempt, error=error, retry_at=due)
            b.set_timer(_retry_timer(call.key, call.attempt), due)
            b.put_call(replace(call, status=CallStatus.BACKOFF, error=error))
            return
        seq = b.emit(StepFailed, step=call.key, attempt=call.attempt, error=error, retry_at=None)
        b.put_call(
            replace(
                call, status=CallStatus.FAILED, error=error, resolved_seq=seq, resolved_at=b.now
            )
        )

    # -- timers ----------------------------------------------------------------------

    def _fire_timer(self, state: InstanceState | None, cmd: FireTimer, now: int) -> Decision:
        if state is None or state.status.is_final:
            return Decision(state=state)
        if cmd.timer not in dict(state.info.timers):
            return Decision(state=state)  # cancelled or fired already
        b = DecisionBuilder.from_state(state, now)
        b.drop_fired_timer(cmd.timer)
        seq = b.emit(TimerFired, timer=cmd.timer)
        parts = cmd.timer.split("/")
        if cmd.timer == WORKFLOW_TIMEOUT:
            self._end(b, Status.TIMED_OUT, event=(WorkflowTimedOut, {}))
            return b.build()
        if parts[0] == "step":
            key, purpose, attempt = "/".join(parts[1:-2]), parts[-2], int(parts[-1])
            call = _find_step(b.calls, key)
            if call is None or call.attempt != attempt:
                return self._build_unawaited(b)
            if purpose == "retry" and call.status is CallStatus.BACKOFF:
                if state.status in (Status.PAUSED, Status.SUSPENDED):
                    return b.build()  # no new attempt now; resume dispatches it
                self._schedule_attempt(b, replace(call, attempt=attempt + 1))
                return self._build_unawaited(b)
            if purpose == "timeout" and call.status is CallStatus.SCHEDULED:
                timeout = call.timeout_ms or 0
                self._fail_attempt(
                    b,
                    call,
                    ErrorInfo(
                        type="StepTimeout",
                        retryable=True,
                        message=f"attempt {attempt} did not report within {timeout} ms",
                    ),
                )
        elif parts[0] == "sleep":
            call = b.calls[int(parts[1])]
            if call.status is CallStatus.WAITING:
                b.put_call(
                    replace(
                        call,
                        status=CallStatus.COMPLETED,
                        result="null",
                        resolved_seq=seq,
                        resolved_at=now,
                    )
                )
        elif parts[0] == "event":
            call = b.calls[int(parts[1])]
            if call.status is CallStatus.WAITING:
                b.put_call(
                    replace(call, status=CallStatus.TIMED_OUT, resolved_seq=seq, resolved_at=now)
                )
        return self._run(b, self._workflow_of(state.info))

    # -- events and lifecycle ------------------------------------------------------------

    def _send_event(self, state: InstanceState | None, cmd: SendEvent, now: int) -> Decision:
        if state is None:
            return Decision(state=None, rejected=f"no instance {cmd.instance_id!r}")
        if state.status.is_final:
            return Decision(state=state)  # an event for a finished instance changes nothing
        try:
            check_name(cmd.name, "event name")
            check_size(cmd.payload, f"the payload of event {cmd.name!r}", self.limits.max_payload)
            load(cmd.payload, f"the payload of event {cmd.name!r}")
        except ValidationError as exc:
            return Decision(state=state, rejected=str(exc))
        kept = sum(len(payload) for _, payload in state.info.inbox) + len(cmd.payload)
        if kept > self.limits.max_inbox:
            return Decision(
                state=state,
                rejected=(
                    f"instance {cmd.instance_id!r} already keeps {len(state.info.inbox)} events "
                    f"nobody waits for; this one would exceed the {self.limits.max_inbox}-byte "
                    "inbox limit"
                ),
            )
        b = DecisionBuilder.from_state(state, now)
        seq = b.emit(EventReceived, name=cmd.name, payload=cmd.payload)
        if state.status is not Status.RUNNING:
            b.update_info(inbox=(*b.info.inbox, (cmd.name, cmd.payload)))
            return self._build_unawaited(b)
        # Deliver only to a wait the code awaits now. A wait left behind by a ctx.all that
        # raised is still WAITING, but nobody would receive what it got. A rebuilt driver
        # first catches up to its current await; a live one is there already.
        driver = self._driver(b, self._workflow_of(state.info))
        outcome = self._advance(b, driver)
        waiting = None
        if isinstance(outcome, Waiting):
            # A repeated wait for one name has key name#n: match on the name itself.
            waiting = next(
                (
                    c
                    for c in (b.calls[i] for i in driver.awaiting())
                    if c.kind is CallKind.EVENT
                    and _event_name(c) == cmd.name
                    and c.status is CallStatus.WAITING
                ),
                None,
            )
        if waiting is None:
            b.update_info(inbox=(*b.info.inbox, (cmd.name, cmd.payload)))
            return self._settle(b, driver, outcome)
        b.cancel_timer(f"event/{waiting.index}/timeout")
        b.put_call(
            replace(
                waiting,
                status=CallStatus.COMPLETED,
                result=cmd.payload,
                resolved_seq=seq,
                resolved_at=now,
            )
        )
        return self._settle(b, driver, self._advance(b, driver))

    def _cancel(self, state: InstanceState | None, cmd: CancelWorkflow, now: int) -> Decision:
        if state is None:
            return Decision(state=None, rejected=f"no instance {cmd.instance_id!r}")
        if state.status.is_final:
            return Decision(state=state)
        if state.status is Status.RUNNING and state.info.reason is not None:
            # Cancelled already and running its cleanup: a second cancel must not
            # interrupt the cleanup (terminate stops it at once).
            return Decision(state=state)
        b = DecisionBuilder.from_state(state, now)
        cancel_seq = b.emit(CancelRequested, reason=cmd.reason)
        if state.status is not Status.RUNNING:
            self._end(
                b,
                Status.CANCELLED,
                event=(WorkflowCancelled, {"reason": cmd.reason}),
                reason=cmd.reason,
            )
            return b.build()
        error = ErrorInfo(type="Cancelled", message=cmd.reason, retryable=False)
        self._stop_children(b, state.pending_calls(), "cancelled", terminate=False)
        for call in state.pending_calls():
            b.cancel_timer(_attempt_timeout(call.key, call.attempt))
            b.cancel_timer(_retry_timer(call.key, call.attempt))
            b.cancel_timer(f"sleep/{call.index}")
            b.cancel_timer(f"event/{call.index}/timeout")
            b.put_call(
                replace(
                    call,
                    status=CallStatus.CANCELLED,
                    error=error,
                    resolved_seq=cancel_seq,
                    resolved_at=now,
                )
            )
        b.update_info(reason=cmd.reason)
        return self._run(b, self._workflow_of(state.info))

    def _terminate(self, state: InstanceState | None, cmd: TerminateWorkflow, now: int) -> Decision:
        if state is None:
            return Decision(state=None, rejected=f"no instance {cmd.instance_id!r}")
        if state.status.is_final:
            return Decision(state=state)
        b = DecisionBuilder.from_state(state, now)
        self.cache.drop(state.info.instance_id)
        self._end(
            b,
            Status.TERMINATED,
            event=(WorkflowTerminated, {"reason": cmd.reason}),
            reason=cmd.reason,
        )
        return b.build()

    def _pause(self, state: InstanceState | None, cmd: PauseWorkflow, now: int) -> Decision:
        if state is None:
            return Decision(state=None, rejected=f"no instance {cmd.instance_id!r}")
        if state.status is not Status.RUNNING:
            return Decision(state=state)  # only a running instance pauses
        b = DecisionBuilder.from_state(state, now)
        b.emit(WorkflowPaused, reason=cmd.reason)
        b.update_info(status=Status.PAUSED)
        self.cache.drop(state.info.instance_id)
        return b.build()

    def _resume(self, state: InstanceState | None, cmd: ResumeWorkflow, now: int) -> Decision:
        if state is None:
            return Decision(state=None, rejected=f"no instance {cmd.instance_id!r}")
        if state.status not in (Status.PAUSED, Status.SUSPENDED):
            return Decision(state=state)
        b = DecisionBuilder.from_state(state, now)
        b.emit(WorkflowResumed, reason=cmd.reason)
        b.update_info(status=Status.RUNNING, error=None)
        # Attempts whose backoff ended during the pause go out now.
        for call in state.pending_calls():
            if (
                call.status is CallStatus.BACKOFF
                and _retry_timer(call.key, call.attempt) not in b.timers
            ):
                self._schedule_attempt(b, replace(call, attempt=call.attempt + 1))
        workflow = self._workflow_of(state.info)
        driver = self._driver(b, workflow)
        return self._settle(b, driver, self._deliver_inbox(b, driver))

    def _restart(self, state: InstanceState | None, cmd: RestartWorkflow, now: int) -> Decision:
        if state is None:
            return Decision(state=None, rejected=f"no instance {cmd.instance_id!r}")
        keep = 0
        if cmd.from_step is not None:
            found = next(
                (
                    c
                    for c in state.calls
                    if c.key == cmd.from_step and c.kind in (CallKind.STEP, CallKind.CHILD)
                ),
                None,
            )
            if found is None:
                return Decision(
                    state=state,
                    rejected=(
                        f"instance {cmd.instance_id!r} has no step {cmd.from_step!r} to restart "
                        "from"
                    ),
                )
            keep = found.index
        workflow = self._workflow_of(state.info)
        self.cache.drop(state.info.instance_id)
        b = DecisionBuilder.from_state(state, now)
        b.emit(WorkflowRestarted, from_step=cmd.from_step, reason=cmd.reason)
        dropped = b.calls[keep:]
        self._stop_children(b, dropped, "restarted")
        b.cancel_all_timers()
        del b.calls[keep:]
        b.removed_calls.update(c.index for c in dropped)
        b.changed_calls.difference_update(c.index for c in dropped)
        base = max([state.info.attempt_base, *(c.attempt for c in dropped)])
        held_slot = (
            state.info.limiter is not None
            and not state.status.is_final
            and state.status is not Status.QUEUED
        )
        b.update_info(
            status=Status.RUNNING,
            output=None,
            error=None,
            reason=None,
            ended_at=None,
            run=state.info.run + 1,
            attempt_base=base,
            started_at=now,
            admitted_at=None,
        )
        if workflow.timeout_ms is not None:
            b.set_timer(WORKFLOW_TIMEOUT, now + workflow.timeout_ms)
        if state.info.limiter is not None and not held_slot:
            limit = self.concurrency.get(workflow.name, workflow.concurrency) or 1
            b.update_info(status=Status.QUEUED)
            b.emit(WorkflowQueued, limiter=state.info.limiter)
            b.commands.append(
                AcquireSlot(limiter=state.info.limiter, instance_id=cmd.instance_id, limit=limit)
            )
            return b.build()
        return self._run(b, workflow)

    def _stop_children(
        self, b: DecisionBuilder, calls: list[Call], why: str, terminate: bool = True
    ) -> None:
        for call in calls:
            if call.kind is CallKind.CHILD and call.status.is_pending:
                child = _child_id(b.info, call)
                reason = f"parent {b.info.instance_id!r} {why}"
                b.commands.append(
                    TerminateWorkflow(instance_id=child, reason=reason)
                    if terminate
                    else CancelWorkflow(instance_id=child, reason=reason)
                )

    def _deliver_inbox(self, b: DecisionBuilder, driver: Driver) -> Outcome:
        """Advance, handing kept events to waits the code awaits now (they may have
        arrived while the instance was paused or suspended)."""
        outcome = self._advance(b, driver)
        while isinstance(outcome, Waiting) and b.info.inbox:
            awaited = [b.calls[i] for i in driver.awaiting()]
            match = None
            for position, (name, payload) in enumerate(b.info.inbox):
                match = next(
                    (
                        c
                        for c in awaited
                        if c.kind is CallKind.EVENT
                        and _event_name(c) == name
                        and c.status is CallStatus.WAITING
                    ),
                    None,
                )
                if match is not None:
                    b.update_info(inbox=b.info.inbox[:position] + b.info.inbox[position + 1 :])
                    b.cancel_timer(f"event/{match.index}/timeout")
                    b.put_call(
                        replace(
                            match,
                            status=CallStatus.COMPLETED,
                            result=payload,
                            resolved_seq=b.next_seq() - 1,
                            resolved_at=b.now,
                        )
                    )
                    break
            if match is None:
                break
            outcome = self._advance(b, driver)
        return outcome

    # -- running the code --------------------------------------------------------------

    def _workflow_of(self, info: Info) -> WorkflowDef:
        workflow = self.registry.workflow(info.workflow, info.version)
        if workflow is None:
            # The code for a running instance's version was removed from the deployment.
            raise LookupError(
                f"workflow {info.workflow!r} version {info.version!r} is not "
                "registered, but an instance of it is running"
            )
        return workflow

    def _run(self, b: DecisionBuilder, workflow: WorkflowDef) -> Decision:
        """Advance the coroutine after the builder recorded what changed."""
        if b.info.status is not Status.RUNNING:
            return b.build()
        driver = self._driver(b, workflow)
        return self._settle(b, driver, self._advance(b, driver))

    def _driver(self, b: DecisionBuilder, workflow: WorkflowDef) -> Driver:
        """The live coroutine from the cache, or a new one that a first advance() rebuilds
        from the recorded calls."""
        driver = self.cache.take(b.info.instance_id, b.info.seq)
        if driver is None:
            start_at = b.info.admitted_at or b.info.started_at
            driver = Driver(workflow, b.info, start_at, self.limits.max_payload)
        return driver

    def _advance(self, b: DecisionBuilder, driver: Driver) -> Outcome:
        return driver.advance(
            b.calls, lambda m, key: self._new_call(b, m, key), self.limits.max_calls
        )

    def _settle(self, b: DecisionBuilder, driver: Driver, outcome: Outcome) -> Decision:
        """Record what the coroutine did: wait (keep it live), return, or raise."""
        if isinstance(outcome, Waiting):
            decision = b.build()
            driver.seq = decision.state.info.seq if decision.state else -1
            if any(_soon(b.calls[i], b.now) for i in driver.awaiting()):
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
                self._end(
                    b, Status.FAILED, event=(WorkflowFailed, {"error": failure}), error=failure
                )
                return b.build()
            self._end(
                b, Status.COMPLETED, event=(WorkflowCompleted, {"output": output}), output=output
            )
            return b.build()
        error = outcome.error
        if isinstance(error, NonDeterminismError):
            info = ErrorInfo(type="NonDeterminismError", message=str(error), retryable=False)
            b.update_info(status=Status.SUSPENDED, error=info)
            b.emit(WorkflowSuspended, error=info)
            return b.build()
        if isinstance(error, Cancelled):
            reason = b.info.reason or error.reason
            self._end(
                b, Status.CANCELLED, event=(WorkflowCancelled, {"reason": reason}), reason=reason
            )
            return b.build()
        info = error_info(error, retryable=False)
        self._end(b, Status.FAILED, event=(WorkflowFailed, {"error": info}), error=info)
        return b.build()

    def _build_unawaited(self, b: DecisionBuilder) -> Decision:
        """Build a decision that resolves nothing the coroutine awaits (an event kept for
        a later wait, a retry scheduled): its live driver stays valid for the new seq."""
        seq = b.info.seq
        decision = b.build()
        if decision.state is not None:
            self.cache.retag(b.info.instance_id, seq, decision.state.info.seq)
        return decision

    def _new_call(self, b: DecisionBuilder, member: Single, key: str) -> Call:
        index = len(b.calls)
        if isinstance(member, StepRequest):
            retry, timeout_ms = self._step_policies(member)
            call = Call(
                index=index,
                kind=CallKind.STEP,
                key=key,
                status=CallStatus.SCHEDULED,
                function=member.function,
                input=member.input,
                retry=retry.to_dict(),
                timeout_ms=timeout_ms,
                attempt=0,
            )
            first = b.info.attempt_base + 1
            return self._schedule_attempt(
                b, replace(call, attempt=first, first_attempt=first), append=False
            )
        if isinstance(member, ChildRequest):
            return self._start_child(b, member, key, index)
        if isinstance(member, SleepRequest):
            b.emit(TimerStarted, timer=f"sleep/{index}", due=member.until)
            b.set_timer(f"sleep/{index}", member.until)
            call = Call(
                index=index,
                kind=CallKind.SLEEP,
                key=key,
                status=CallStatus.WAITING,
                deadline=member.until,
            )
            b.changed_calls.add(index)
            return call
        assert isinstance(member, EventRequest)
        deadline = None if member.timeout_ms is None else b.now + member.timeout_ms
        seq = b.emit(EventAwaited, name=member.name, deadline=deadline)
        b.changed_calls.add(index)
        for position, (name, payload) in enumerate(b.info.inbox):
            if name == member.name:  # sent before the wait: delivered in arrival order
                inbox = b.info.inbox[:position] + b.info.inbox[position + 1 :]
                b.update_info(inbox=inbox)
                return Call(
                    index=index,
                    kind=CallKind.EVENT,
                    key=key,
                    status=CallStatus.COMPLETED,
                    result=payload,
                    resolved_seq=seq,
                    resolved_at=b.now,
                )
        if deadline is not None:
            b.set_timer(f"event/{index}/timeout", deadline)
        return Call(
            index=index, kind=CallKind.EVENT, key=key, status=CallStatus.WAITING, deadline=deadline
        )

    def _step_policies(self, member: StepRequest) -> tuple[Retry, int | None]:
        """A step called by name gets the retry and timeout it was declared with."""
        declared = self.registry.step(member.function)
        retry = member.retry or (declared.retry if declared else Retry())
        timeout_ms = member.timeout_ms
        if timeout_ms == UNSET:
            timeout_ms = declared.timeout_ms if declared else None
        return retry, timeout_ms

    def _start_child(self, b: DecisionBuilder, member: ChildRequest, key: str, index: int) -> Call:
        first = b.info.attempt_base + 1
        call = Call(
            index=index,
            kind=CallKind.CHILD,
            key=key,
            status=CallStatus.SCHEDULED,
            function=member.workflow,
            input=member.input,
            attempt=first,
            first_attempt=first,
            retry=Retry(limit=1, jitter=False).to_dict(),
        )
        b.changed_calls.add(index)
        b.emit(
            StepScheduled,
            step=key,
            function=f"workflow:{member.workflow}",
            attempt=first,
            input=member.input,
            timeout_ms=None,
        )
        if self.registry.workflow(member.workflow, member.version) is None:
            # Known now, not later: fail the call instead of a start nobody can run.
            error = ErrorInfo(
                type="UnknownWorkflow",
                retryable=False,
                message=f"unknown child workflow {member.workflow!r}",
            )
            seq = b.emit(StepFailed, step=key, attempt=first, error=error, retry_at=None)
            return replace(
                call, status=CallStatus.FAILED, error=error, resolved_seq=seq, resolved_at=b.now
            )
        b.commands.append(
            StartWorkflow(
                instance_id=_child_id(b.info, call),
                workflow=member.workflow,
                input=member.input,
                version=member.version,
                parent_id=b.info.instance_id,
                parent_step=f"{first}:{key}",
            )
        )
        return call

    def _schedule_attempt(self, b: DecisionBuilder, call: Call, append: bool = True) -> Call:
        b.emit(
            StepScheduled,
            step=call.key,
            function=call.function,
            attempt=call.attempt,
            input=call.input,
            timeout_ms=call.timeout_ms,
        )
        b.tasks.append(
            Task(
                instance_id=b.info.instance_id,
                workflow=b.info.workflow,
                step=call.key,
                function=call.function,
                attempt=call.attempt,
                input=call.input,
                scheduled_at=b.now,
                timeout_ms=call.timeout_ms,
            )
        )
        if call.timeout_ms is not None:
            b.set_timer(_attempt_timeout(call.key, call.attempt), b.now + call.timeout_ms)
        call = replace(call, status=CallStatus.SCHEDULED)
        if append:
            b.put_call(call)
        else:
            b.changed_calls.add(call.index)
        return call

    def _end(
        self,
        b: DecisionBuilder,
        status: Status,
        event: tuple[type[Any], dict[str, Any]],
        **info: Any,
    ) -> None:
        """Finish the instance: the final event, the completion, timers and slot freed."""
        event_type, fields = event
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
            b.commands.append(_report_to_parent(b.info, status))
        self._stop_children(b, [c for c in b.calls if c.status.is_pending], status.value.lower())
        self.cache.drop(b.info.instance_id)


def _current_attempt(state: InstanceState | None, key: str, attempt: int) -> Call | None:
    """The step call a result may resolve: running, and this very attempt."""
    # Paused and suspended instances still record results, so a resume loses no work.
    if state is None or state.status not in (Status.RUNNING, Status.PAUSED, Status.SUSPENDED):
        return None
    call = _find_step(state.calls, key)
    if call is None or call.status is not CallStatus.SCHEDULED or call.attempt != attempt:
        return None
    return call


def _event_name(call: Call) -> str:
    return call.key.partition("#")[0]  # names cannot hold '#'


def _find_step(calls: tuple[Call, ...] | list[Call], key: str) -> Call | None:
    # Pending steps sit near the end, where the workflow currently waits.
    for call in reversed(calls):
        if call.kind in (CallKind.STEP, CallKind.CHILD) and call.key == key:
            return call
    return None


def _attempt_timeout(key: str, attempt: int) -> str:
    return f"step/{key}/timeout/{attempt}"


def _retry_timer(key: str, attempt: int) -> str:
    return f"step/{key}/retry/{attempt}"


def _child_id(info: Info, call: Call) -> str:
    # Deterministic, so a replay addresses the same child; a restarted parent's new run
    # gets new children.
    # A repeated name's key is "name#n"; '#' cannot stand in an instance id, and '+'
    # cannot stand in a name, so "name+n" is unambiguous.
    suffix = f"@{info.run}" if info.run else ""
    return f"{info.instance_id}/{call.key.replace('#', '+')}{suffix}"


def _report_to_parent(info: Info, status: Status) -> CompleteStep | FailStep:
    assert info.parent_id is not None and info.parent_step is not None
    # parent_step is "<attempt>:<step key>": the report names the parent's attempt, so a
    # child of an earlier run (before a restart) cannot resolve a call of the new one.
    attempt_text, _, step = info.parent_step.partition(":")
    attempt = int(attempt_text)
    if status is Status.COMPLETED:
        return CompleteStep(
            instance_id=info.parent_id, step=step, attempt=attempt, result=info.output or "null"
        )
    error = info.error or ErrorInfo(
        type=f"Child{status.value.title()}", message=info.reason or "", retryable=False
    )
    return FailStep(
        instance_id=info.parent_id,
        step=step,
        attempt=attempt,
        error=ErrorInfo(
            type=error.type,
            retryable=False,
            details=error.details,
            message=f"child {info.instance_id!r} ended {status.value}: {error.message}",
        ),
    )


_PARENT_STEP = re.compile(r"\d+:[A-Za-z_][A-Za-z0-9_.-]*(#\d+)?")


def _check_parent(cmd: StartWorkflow) -> None:
    """A child's start names its parent and the parent's call ("<attempt>:<key>")."""
    if cmd.parent_id is None and cmd.parent_step is None:
        return
    if cmd.parent_id is None or cmd.parent_step is None:
        raise ValidationError("a child's start needs both parent_id and parent_step")
    check_instance_id(cmd.parent_id)
    if not _PARENT_STEP.fullmatch(cmd.parent_step):
        raise ValidationError(
            f"invalid parent_step {cmd.parent_step!r}: expected '<attempt>:<step name>'"
        )
