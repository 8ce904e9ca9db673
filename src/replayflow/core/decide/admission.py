"""Starting an instance, and admission under a workflow's concurrency limit: an instance
over the limit is QUEUED until the limiter grants it a slot."""

from __future__ import annotations

from replayflow.core.callseq import CallsDraft
from replayflow.core.decide.calls import WORKFLOW_TIMEOUT
from replayflow.core.decide.children import check_parent
from replayflow.core.decide.runner import Runner
from replayflow.core.decision import Decision, DecisionBuilder
from replayflow.core.errors import ValidationError
from replayflow.core.messages import (
    AcquireSlot,
    GrantSlot,
    ReleaseSlot,
    StartWorkflow,
    WorkflowAdmitted,
    WorkflowQueued,
    WorkflowStarted,
)
from replayflow.core.names import check_instance_id
from replayflow.core.payloads import check_size, load
from replayflow.core.schedule_messages import ScheduleRunEnded
from replayflow.core.schedule_state import REJECTED
from replayflow.core.state import Info, InstanceState, Status


def start(r: Runner, state: InstanceState | None, cmd: StartWorkflow, now: int) -> Decision:
    if state is not None:
        # The first start wins. A schedule whose slot id another start took hears that
        # its run will not happen; one that asks again for a run that has ended hears
        # how it ended: either way it does not wait for an end that never comes.
        if cmd.schedule_id is not None:
            mine = (state.info.schedule_id, state.info.schedule_slot) == (
                cmd.schedule_id,
                cmd.schedule_slot,
            )
            if not mine:
                return Decision(state=state, commands=(_run_ended(cmd, REJECTED),))
            if state.status.is_final:
                return Decision(state=state, commands=(_run_ended(cmd, state.status.value),))
        return Decision(state=state)
    try:
        check_instance_id(cmd.instance_id)
        check_parent(cmd)
        check_size(cmd.input, "the workflow input", r.limits.max_payload)
        load(cmd.input, "the workflow input")
    except ValidationError as exc:
        return _refused(cmd, str(exc))
    workflow = r.registry.workflow(cmd.workflow, cmd.version)
    if workflow is None:
        known = r.registry.workflows.get(cmd.workflow)
        why = (
            f"unknown version {cmd.version!r} of workflow {cmd.workflow!r} "
            f"(known: {', '.join(sorted(known))})"
            if known
            else f"unknown workflow {cmd.workflow!r}"
        )
        return _refused(cmd, why, "UnknownWorkflow")
    info = Info(
        instance_id=cmd.instance_id,
        workflow=workflow.name,
        version=workflow.version,
        status=Status.RUNNING,
        input=cmd.input,
        started_at=now,
        parent_id=cmd.parent_id,
        parent_step=cmd.parent_step,
        schedule_id=cmd.schedule_id,
        schedule_slot=cmd.schedule_slot,
    )
    b = DecisionBuilder(info=info, calls=CallsDraft(), now=now)
    b.emit(
        WorkflowStarted,
        workflow=workflow.name,
        version=workflow.version,
        input=cmd.input,
        parent_id=cmd.parent_id,
        parent_step=cmd.parent_step,
        schedule_id=cmd.schedule_id,
        schedule_slot=cmd.schedule_slot,
    )
    if workflow.timeout_ms is not None:
        b.set_timer(WORKFLOW_TIMEOUT, now + workflow.timeout_ms)
    limit = r.concurrency_of(workflow)
    if limit is not None:
        queue(b, *r.admission(workflow.name, cmd.instance_id, limit))
        return b.build()
    return r.run(b, workflow)


def _refused(cmd: StartWorkflow, why: str, rejected_as: str = "Invalid") -> Decision:
    """A start that cannot run goes to the dead-letter topic; a schedule that sent it
    hears that its run ended before it began."""
    commands = () if cmd.schedule_id is None else (_run_ended(cmd, REJECTED),)
    return Decision(state=None, rejected=why, rejected_as=rejected_as, commands=commands)


def _run_ended(cmd: StartWorkflow, status: str) -> ScheduleRunEnded:
    assert cmd.schedule_id is not None
    return ScheduleRunEnded(schedule_id=cmd.schedule_id, instance_id=cmd.instance_id, status=status)


def queue(b: DecisionBuilder, limiter: str, limit: int) -> None:
    """Wait for a slot of the limiter before the code runs."""
    b.update_info(status=Status.QUEUED, limiter=limiter)
    b.emit(WorkflowQueued, limiter=limiter)
    b.commands.append(AcquireSlot(limiter=limiter, instance_id=b.info.instance_id, limit=limit))


def grant(r: Runner, state: InstanceState | None, cmd: GrantSlot, now: int) -> Decision:
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
    return r.run(b, r.workflow_of(state.info))
