"""Checking an instance against another version's code: its history replayed as if
that code had run it from the start (core.replay.replay, unchanged, over a registry in
which the instance's versions run the new version's code).

The check passes only if every decision comes out the same, event for event, so the
new code, rebuilt from the recorded calls, stands exactly where the old one stands and
takes over from there. What it does after the current await is the point of the
upgrade; what it would have done before is not allowed to differ.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

from replayflow.core.definitions import Registry
from replayflow.core.facts import summarize
from replayflow.core.messages import (
    HistoryEvent,
    UpgradeWorkflow,
    WorkflowStarted,
    WorkflowUpgraded,
)
from replayflow.core.replay import ReplayReport, replay


def running_as(registry: Registry, workflow: str, versions: Sequence[str], code: str) -> Registry:
    """A registry in which each of `versions` of `workflow` runs version `code`'s code,
    named as itself (so the recorded WorkflowStarted still matches) and with its own
    timeout and concurrency limit: an upgrade changes the code, not the policies an
    instance was started under."""
    target = registry.workflow(workflow, code)
    if target is None:
        raise LookupError(f"version {code!r} of workflow {workflow!r} is not known")
    aliased = Registry(
        workflows={name: dict(found) for name, found in registry.workflows.items()},
        steps=dict(registry.steps),
        sources=list(registry.sources),
    )
    table = aliased.workflows.setdefault(workflow, {})
    for version in versions:
        own = table.get(version) or registry.workflow(workflow, version) or target
        table[version] = replace(
            target, version=version, timeout_ms=own.timeout_ms, concurrency=own.concurrency
        )
    table.setdefault(code, target)
    return aliased


def versions_in(history: Sequence[HistoryEvent]) -> list[str]:
    """Every version the instance has run (its start, then each upgrade)."""
    found: list[str] = []
    for event in history:
        version = (
            event.version
            if isinstance(event, WorkflowStarted)
            else event.to_version
            if isinstance(event, WorkflowUpgraded)
            else None
        )
        if version is not None and version not in found:
            found.append(version)
    return found


def replay_on(history: Sequence[HistoryEvent], registry: Registry, code: str) -> ReplayReport:
    """Replay an instance's history as if version `code` had run it all along."""
    summary = summarize(history)
    if summary is None or not summary.workflow:
        return ReplayReport(False, (), None, "the history has no WorkflowStarted", 0)
    versions = [v for v in versions_in(history) if v != code]
    try:
        aliased = running_as(registry, summary.workflow, versions, code)
    except LookupError as exc:
        return ReplayReport(False, (), None, str(exc), 0)
    return replay(history, aliased)


def check_report(
    history: Sequence[HistoryEvent], registry: Registry, to_version: str
) -> ReplayReport:
    """The replay of the history on `to_version`'s code, not identical when anything
    says the move is unsafe:

    - the instance's own code does not replay its history (nothing to compare with);
    - `to_version` decides differently, event for event;
    - `to_version` names a call differently where history does not record the name (a
      sleep's name): the live driver checks names against the recorded calls, so the
      instance would be suspended, although the facts come out the same.
    """
    own = replay(history, registry)
    if not own.identical:
        return replace(
            own, difference=f"its own version's code does not replay it: {own.difference}"
        )
    candidate = replay_on(history, registry, to_version)
    if not candidate.identical or own.state is None or candidate.state is None:
        return candidate
    for old, new in zip(own.state.calls, candidate.state.calls, strict=False):
        if (old.kind, old.key, old.function) != (new.kind, new.key, new.function):
            return replace(
                candidate,
                identical=False,
                position=len(history),
                difference=(
                    f"call #{old.index + 1} is {old.describe()} on its version's code and "
                    f"{new.describe()} on version {to_version!r}"
                ),
            )
    return candidate


@dataclass(frozen=True)
class Check:
    """The outcome of checking one instance for an upgrade."""

    instance_id: str
    compatible: bool
    seq: int  # the history seq the check covered
    reason: str | None = None  # why not

    def command(self, from_version: str, to_version: str) -> UpgradeWorkflow:
        return UpgradeWorkflow(
            instance_id=self.instance_id,
            from_version=from_version,
            to_version=to_version,
            checked_seq=self.seq,
        )


def check(history: Sequence[HistoryEvent], registry: Registry, to_version: str) -> Check:
    """Whether the instance may move to `to_version` (see check_report)."""
    summary = summarize(history)
    instance_id = summary.instance_id if summary is not None else ""
    seq = summary.seq if summary is not None else 0
    report = check_report(history, registry, to_version)
    if report.identical:
        return Check(instance_id, True, seq)
    return Check(instance_id, False, seq, report.difference)
