"""What operators do to an instance: cancel (the code may clean up), terminate (at
once), pause and resume, restart (from the start or from a step)."""

from __future__ import annotations

from replayflow.core.decide.admission import queue
from replayflow.core.decide.attempts import schedule_attempt
from replayflow.core.decide.calls import (
    WORKFLOW_TIMEOUT,
    attempt_timeout,
    record_dropped,
    retry_timer,
    sleep_timer,
    wait_timeout,
)
from replayflow.core.decide.children import stop_children
from replayflow.core.decide.events import deliver_inbox
from replayflow.core.decide.runner import Runner
from replayflow.core.decision import Decision, DecisionBuilder
from replayflow.core.evolve import evolve
from replayflow.core.messages import (
    CancelRequested,
    CancelWorkflow,
    ErrorInfo,
    PauseWorkflow,
    RestartWorkflow,
    ResumeWorkflow,
    TerminateWorkflow,
    WorkflowCancelled,
    WorkflowPaused,
    WorkflowRestarted,
    WorkflowResumed,
    WorkflowTerminated,
)
from replayflow.core.state import CallKind, CallStatus, InstanceState, Status


def cancel(r: Runner, state: InstanceState | None, cmd: CancelWorkflow, now: int) -> Decision:
    if state is None:
        return Decision(
            state=None, rejected=f"no instance {cmd.instance_id!r}", rejected_as="UnknownInstance"
        )
    if state.status.is_final:
        return Decision(state=state)
    if state.status is Status.RUNNING and state.info.reason is not None:
        # Cancelled already and running its cleanup: a second cancel must not
        # interrupt the cleanup (terminate stops it at once).
        return Decision(state=state)
    b = DecisionBuilder.from_state(state, now)
    cancel_seq = b.emit(CancelRequested, reason=cmd.reason)
    if state.status is not Status.RUNNING:
        r.end(b, Status.CANCELLED, WorkflowCancelled, {"reason": cmd.reason}, reason=cmd.reason)
        return b.build()
    error = ErrorInfo(type="Cancelled", message=cmd.reason, retryable=False)
    pending = state.pending_calls()
    record_dropped(b, pending, "CANCEL_REQUESTED")
    stop_children(b, pending, "cancelled", terminate=False)
    for call in pending:
        b.cancel_timer(attempt_timeout(call.key, call.attempt))
        b.cancel_timer(retry_timer(call.key, call.attempt))
        b.cancel_timer(sleep_timer(call.index))
        b.cancel_timer(wait_timeout(call.index))
        b.put_call(
            evolve(
                call,
                status=CallStatus.CANCELLED,
                error=error,
                resolved_seq=cancel_seq,
                resolved_at=now,
            )
        )
    b.update_info(reason=cmd.reason)
    return r.run(b, r.workflow_of(state.info))


def terminate(r: Runner, state: InstanceState | None, cmd: TerminateWorkflow, now: int) -> Decision:
    if state is None:
        return Decision(
            state=None, rejected=f"no instance {cmd.instance_id!r}", rejected_as="UnknownInstance"
        )
    if state.status.is_final:
        return Decision(state=state)
    b = DecisionBuilder.from_state(state, now)
    r.cache.drop(state.info.instance_id)
    r.end(b, Status.TERMINATED, WorkflowTerminated, {"reason": cmd.reason}, reason=cmd.reason)
    return b.build()


def pause(r: Runner, state: InstanceState | None, cmd: PauseWorkflow, now: int) -> Decision:
    if state is None:
        return Decision(
            state=None, rejected=f"no instance {cmd.instance_id!r}", rejected_as="UnknownInstance"
        )
    if state.status is not Status.RUNNING:
        return Decision(state=state)  # only a running instance pauses
    b = DecisionBuilder.from_state(state, now)
    b.emit(WorkflowPaused, reason=cmd.reason)
    b.update_info(status=Status.PAUSED)
    r.cache.drop(state.info.instance_id)
    return b.build()


def resume(r: Runner, state: InstanceState | None, cmd: ResumeWorkflow, now: int) -> Decision:
    if state is None:
        return Decision(
            state=None, rejected=f"no instance {cmd.instance_id!r}", rejected_as="UnknownInstance"
        )
    if state.status not in (Status.PAUSED, Status.SUSPENDED):
        return Decision(state=state)
    b = DecisionBuilder.from_state(state, now)
    b.emit(WorkflowResumed, reason=cmd.reason)
    b.update_info(status=Status.RUNNING, error=None)
    # Attempts whose backoff ended during the pause go out now.
    for call in state.pending_calls():
        if (
            call.status is CallStatus.BACKOFF
            and retry_timer(call.key, call.attempt) not in b.timers
        ):
            schedule_attempt(b, evolve(call, attempt=call.attempt + 1))
    driver = r.driver(b, r.workflow_of(state.info))
    return r.settle(b, driver, deliver_inbox(r, b, driver))


def restart(r: Runner, state: InstanceState | None, cmd: RestartWorkflow, now: int) -> Decision:
    if state is None:
        return Decision(
            state=None, rejected=f"no instance {cmd.instance_id!r}", rejected_as="UnknownInstance"
        )
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
                    f"instance {cmd.instance_id!r} has no step {cmd.from_step!r} to restart from"
                ),
                rejected_as="Conflict",
            )
        keep = found.index
    workflow = r.workflow_of(state.info)
    r.cache.drop(state.info.instance_id)
    b = DecisionBuilder.from_state(state, now)
    dropped = b.calls[keep:]
    record_dropped(b, dropped, "RESTARTED")
    b.emit(WorkflowRestarted, from_step=cmd.from_step, reason=cmd.reason)
    stop_children(b, dropped, "restarted")
    b.cancel_all_timers()
    b.calls.truncate(keep)
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
        limit = r.concurrency_of(workflow) or 1
        queue(b, *r.admission(state.info.workflow, state.info.instance_id, limit))
        return b.build()
    return r.run(b, workflow)
