"""Child workflows: starting one (awaited like a step), stopping running ones, and a
child's report to its parent when it ends."""

from __future__ import annotations

import re
from collections.abc import Iterable

from replayflow.core.context import ChildRequest
from replayflow.core.decision import DecisionBuilder
from replayflow.core.definitions import Registry
from replayflow.core.errors import ValidationError
from replayflow.core.evolve import evolve
from replayflow.core.messages import (
    CancelWorkflow,
    CompleteStep,
    ErrorInfo,
    FailStep,
    StartWorkflow,
    StepFailed,
    StepScheduled,
    TerminateWorkflow,
)
from replayflow.core.names import check_instance_id
from replayflow.core.policy import NO_RETRY
from replayflow.core.state import Call, CallKind, CallStatus, Info, Status


def start_child(b: DecisionBuilder, registry: Registry, member: ChildRequest, key: str) -> Call:
    index = len(b.calls)
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
        retry=NO_RETRY,
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
    if registry.workflow(member.workflow, member.version) is None:
        # Known now, not later: fail the call instead of a start nobody can run.
        error = ErrorInfo(
            type="UnknownWorkflow",
            retryable=False,
            message=f"unknown child workflow {member.workflow!r}",
        )
        seq = b.emit(StepFailed, step=key, attempt=first, error=error, retry_at=None)
        return evolve(
            call, status=CallStatus.FAILED, error=error, resolved_seq=seq, resolved_at=b.now
        )
    b.commands.append(
        StartWorkflow(
            instance_id=child_id(b.info, call),
            workflow=member.workflow,
            input=member.input,
            version=member.version,
            parent_id=b.info.instance_id,
            parent_step=f"{first}:{key}",
        )
    )
    return call


def stop_children(
    b: DecisionBuilder, calls: Iterable[Call], why: str, terminate: bool = True
) -> None:
    """Terminate (or cancel, letting them clean up) the running children among `calls`."""
    for call in calls:
        if call.kind is CallKind.CHILD and call.status.is_pending:
            child = child_id(b.info, call)
            reason = f"parent {b.info.instance_id!r} {why}"
            b.commands.append(
                TerminateWorkflow(instance_id=child, reason=reason)
                if terminate
                else CancelWorkflow(instance_id=child, reason=reason)
            )


def child_id(info: Info, call: Call) -> str:
    # Deterministic, so a replay addresses the same child; a restarted parent's new run
    # gets new children.
    # A repeated name's key is "name#n"; '#' cannot stand in an instance id, and '+'
    # cannot stand in a name, so "name+n" is unambiguous.
    suffix = f"@{info.run}" if info.run else ""
    return f"{info.instance_id}/{call.key.replace('#', '+')}{suffix}"


def report_to_parent(info: Info, status: Status) -> CompleteStep | FailStep:
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


def check_parent(cmd: StartWorkflow) -> None:
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
