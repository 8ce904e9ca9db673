"""Moving an instance to another version of its workflow (UpgradeWorkflow).

`replayflow upgrade` sends the command only after the instance's history, up to
`checked_seq`, replayed identically on the new version's code. The fold takes it only
if that check still covers the instance: it runs `from_version`, is running, queued or
paused, and its last seq is still `checked_seq`. Otherwise it records UpgradeRefused
with the reason, and the tool checks again. Taken, it is WorkflowUpgraded, once: a
second command for the version the instance runs already changes nothing.
"""

from __future__ import annotations

from replayflow.core.decide.runner import Runner
from replayflow.core.decision import Decision, DecisionBuilder
from replayflow.core.messages import UpgradeRefused, UpgradeWorkflow, WorkflowUpgraded
from replayflow.core.state import InstanceState, Status

UPGRADABLE = frozenset({Status.RUNNING, Status.QUEUED, Status.PAUSED})


def upgrade(r: Runner, state: InstanceState | None, cmd: UpgradeWorkflow, now: int) -> Decision:
    if state is None:
        return Decision(state=None, rejected=f"no instance {cmd.instance_id!r}")
    info = state.info
    if info.version == cmd.to_version:
        return Decision(state=state)  # upgraded already: a duplicate changes nothing
    if state.status.is_final:
        # Nothing runs any more, and a fact after the final one would say otherwise.
        return Decision(
            state=state,
            rejected=f"instance {cmd.instance_id!r} has ended ({state.status.value})",
        )
    if r.registry.workflow(info.workflow, cmd.to_version) is None:
        return Decision(
            state=state,
            rejected=(
                f"version {cmd.to_version!r} of workflow {info.workflow!r} is not "
                "deployed to the orchestrator"
            ),
        )
    why = refusal(state, cmd)
    b = DecisionBuilder.from_state(state, now)
    fields = {
        "from_version": cmd.from_version,
        "to_version": cmd.to_version,
        "checked_seq": cmd.checked_seq,
    }
    if why is not None:
        b.emit(UpgradeRefused, reason=why, **fields)
        return r.build_unawaited(b)
    b.emit(WorkflowUpgraded, **fields)
    b.update_info(version=cmd.to_version)
    # The live coroutine runs the old version's code; the next decision rebuilds the
    # new version's from the recorded calls, which the check replayed identically.
    r.cache.drop(info.instance_id)
    return b.build()


def refusal(state: InstanceState, cmd: UpgradeWorkflow) -> str | None:
    info = state.info
    if info.version != cmd.from_version:
        return f"the instance runs version {info.version!r}, not {cmd.from_version!r}"
    if info.seq != cmd.checked_seq:
        return (
            f"the instance moved on after the check (history seq {info.seq}, "
            f"checked at {cmd.checked_seq})"
        )
    if state.status not in UPGRADABLE:
        return f"the instance is {state.status.value}"
    return None
