"""`replayflow upgrade`: moving in-flight instances of one version to another, each only
after its history replayed identically on the new version's code.

For every running, queued or paused instance of the old version:

1. check: its history replayed on the new version's code (core/upgrade.py), in
   worker processes as `replay --all` does;
2. those that pass get an UpgradeWorkflow carrying the history seq the check covered;
   the fold moves an instance only if it is still at that seq (WorkflowUpgraded), and
   otherwise records UpgradeRefused;
3. an instance that moved on meanwhile is checked again on its longer history, up to
   `rounds` times; the others stay on the old version, each with its reason.

The engine is reached through a `Link`: the history topic and the commands topic for
a running engine (KafkaLink), or an in-process one in tests.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from replayflow import codec
from replayflow.core.decide.upgrade import UPGRADABLE
from replayflow.core.facts import summarize
from replayflow.core.messages import (
    HistoryEvent,
    UpgradeRefused,
    UpgradeWorkflow,
    WorkflowUpgraded,
)
from replayflow.kafka import clients
from replayflow.kafka.admin import topic_partitions
from replayflow.kafka.membership import close_consumer
from replayflow.kafka.partition import murmur2_partition
from replayflow.kafka.producing import Record, deliver
from replayflow.kafka.reading import read_to_end, watermarks
from replayflow.processors.replay_all import (
    Outcome,
    RegistryFactory,
    Selection,
    group,
    read_history_topic,
    replay_many,
)
from replayflow.settings import Settings
from replayflow.topics import Topics

ROUNDS = 5


class Link(Protocol):
    def histories(self, selection: Selection) -> dict[str, list[HistoryEvent]]:
        """The whole histories of the instances that match, now."""
        ...

    def upgrade(
        self, commands: Sequence[UpgradeWorkflow], timeout: float
    ) -> dict[str, list[HistoryEvent]]:
        """Send the commands; return, per instance, the facts written after the seq its
        command was checked at, once they hold the outcome (WorkflowUpgraded,
        UpgradeRefused, or the instance's end) or the timeout passed."""
        ...


@dataclass(frozen=True)
class Result:
    instance_id: str
    moved: bool
    reason: str | None = None  # why it stays
    checks: int = 1
    seq: int | None = None  # the seq the deciding check covered
    would_move: bool = False  # a dry run's verdict


def run(
    link: Link,
    code: RegistryFactory,
    workflow: str,
    from_version: str,
    to_version: str,
    *,
    dry_run: bool = False,
    workers: int | None = None,
    rounds: int = ROUNDS,
    timeout: float = 60.0,
    on_checked: Callable[[list[Outcome]], None] | None = None,
) -> list[Result]:
    selection = Selection(workflow=workflow, version=from_version, statuses=UPGRADABLE)
    todo = link.histories(selection)
    results: dict[str, Result] = {}
    checks: dict[str, int] = {}
    for _ in range(rounds):
        if not todo:
            break
        outcomes = replay_many(
            todo, code, workers=workers, to_version=to_version, on_done=on_checked
        )
        commands = []
        for outcome in outcomes:
            instance_id = outcome.instance_id
            n = checks[instance_id] = checks.get(instance_id, 0) + 1
            seq = todo[instance_id][-1].seq
            if not outcome.identical:
                results[instance_id] = Result(instance_id, False, _why(outcome), n, seq)
            elif dry_run:
                results[instance_id] = Result(instance_id, False, None, n, seq, would_move=True)
            else:
                commands.append(UpgradeWorkflow(instance_id, from_version, to_version, seq))
        if not commands:
            todo = {}
            break
        after = link.upgrade(commands, timeout)
        again: dict[str, list[HistoryEvent]] = {}
        for command in commands:
            instance_id, seq, n = (
                command.instance_id,
                command.checked_seq,
                checks[command.instance_id],
            )
            new = after.get(instance_id, [])
            verdict, reason = outcome_of(command, new)
            if verdict == "moved":
                results[instance_id] = Result(instance_id, True, None, n, seq)
            elif verdict == "stays" or (verdict == "pending" and not new):
                why = reason or "no outcome in time (is an orchestrator running? see the DLQ)"
                results[instance_id] = Result(instance_id, False, why, n, seq)
            else:
                # It moved on after the check (or is still moving): check what it did.
                history = [*todo[instance_id], *new]
                summary = summarize(history)
                if summary is not None and selection.matches(summary):
                    again[instance_id] = history
                else:
                    status = summary.status.value if summary else "gone"
                    results[instance_id] = Result(
                        instance_id,
                        False,
                        f"it is {status} on version {summary.version if summary else '?'} now",
                        n,
                        seq,
                    )
        todo = again
    for instance_id, history in todo.items():
        results[instance_id] = Result(
            instance_id,
            False,
            f"it kept moving on during {rounds} checks",
            checks.get(instance_id, 0),
            history[-1].seq,
        )
    return sorted(results.values(), key=lambda r: r.instance_id)


def _why(outcome: Outcome) -> str:
    if outcome.position is not None and outcome.recorded and outcome.produced:
        return (
            f"at event #{outcome.position + 1} history has {outcome.recorded}, "
            f"the new version makes {outcome.produced}"
        )
    return outcome.difference or "its history does not replay on the new version"


Verdict = Literal["moved", "again", "stays", "pending"]


def outcome_of(command: UpgradeWorkflow, new: list[HistoryEvent]) -> tuple[Verdict, str | None]:
    """What the facts written after the check say of the command: moved; refused since
    the instance moved on (check again); refused for another reason, or ended (stays);
    or not yet known (pending)."""
    for event in new:
        if isinstance(event, WorkflowUpgraded) and event.checked_seq == command.checked_seq:
            return "moved", None
        if isinstance(event, UpgradeRefused) and event.checked_seq == command.checked_seq:
            # The refusal is the instance's next fact unless others came first.
            if event.seq - 1 != command.checked_seq:
                return "again", None
            return "stays", event.reason
    summary = summarize(new)
    if summary is not None and summary.status.is_final:
        return "stays", f"it ended ({summary.status.value}) during the upgrade"
    return "pending", None


class KafkaLink:
    """A running engine: histories from the history topic, commands to the commands
    topic, outcomes followed on the history topic."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.topics = Topics(settings)

    def histories(self, selection: Selection) -> dict[str, list[HistoryEvent]]:
        return group(read_history_topic(self.settings), selection).histories

    def upgrade(
        self, commands: Sequence[UpgradeWorkflow], timeout: float
    ) -> dict[str, list[HistoryEvent]]:
        topic = self.topics.history
        consumer = clients.consumer(self.settings, None)
        try:
            count = len(topic_partitions(consumer, topic))
            wanted = {c.instance_id: c for c in commands}
            partitions = {murmur2_partition(i.encode(), count) for i in wanted}
            # Outcomes come after the ends of now: read from there.
            starts = {p: watermarks(consumer, topic, p)[1] for p in partitions}
            producer = clients.producer(self.settings)
            deliver(
                producer,
                [
                    Record(self.topics.commands, codec.encode(c), key=c.instance_id.encode())
                    for c in commands
                ],
            )
            return self._follow(consumer, topic, starts, wanted, timeout)
        finally:
            close_consumer(consumer)

    def _follow(
        self,
        consumer: Any,
        topic: str,
        starts: dict[int, int],
        wanted: dict[str, UpgradeWorkflow],
        timeout: float,
    ) -> dict[str, list[HistoryEvent]]:
        found: dict[str, list[HistoryEvent]] = {i: [] for i in wanted}
        open_ = set(wanted)
        deadline = time.monotonic() + timeout
        while open_ and time.monotonic() < deadline:
            for messages in read_to_end(consumer, topic, starts, timeout=timeout):
                for message in messages:
                    starts[message.partition() or 0] = (message.offset() or 0) + 1
                    instance_id = (message.key() or b"").decode(errors="replace")
                    if instance_id not in wanted:
                        continue
                    try:
                        event = codec.decode(message.value() or b"")
                    except codec.CodecError:
                        continue
                    found[instance_id].append(event)
                    if outcome_of(wanted[instance_id], found[instance_id])[0] != "pending":
                        open_.discard(instance_id)
            if open_:
                time.sleep(0.2)
        return found
