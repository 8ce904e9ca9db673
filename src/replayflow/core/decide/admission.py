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
from replayflow.core.state import Info, InstanceState, Status


def start(r: Runner, state: InstanceState | None, cmd: StartWorkflow, now: int) -> Decision:
    if state is not None:
        return Decision(state=state)  # the first start wins
    try:
        check_instance_id(cmd.instance_id)
        check_parent(cmd)
        check_size(cmd.input, "the workflow input", r.limits.max_payload)
        load(cmd.input, "the workflow input")
    except ValidationError as exc:
        return Decision(state=None, rejected=str(exc))
    workflow = r.registry.workflow(cmd.workflow, cmd.version)
    if workflow is None:
        known = r.registry.workflows.get(cmd.workflow)
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
    b = DecisionBuilder(info=info, calls=CallsDraft(), now=now)
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
    limit = r.concurrency_of(workflow)
    if limit is not None:
        queue(b, *r.admission(workflow.name, cmd.instance_id, limit))
        return b.build()
    return r.run(b, workflow)


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
