"""Rebuilding orchestrator state from the history topic, one partition at a time.

History holds the facts the orchestrator accepted, not the commands it was sent. The
rebuild turns each input fact back into the command that produced it (a StepCompleted
into its CompleteStep, a TimerFired into a FireTimer, ... as core/replay.py does) and
folds it, at the fact's own time, through the one fold shell (PartitionFolder) over a
fresh Store, with the same workflow code as the orchestrator. The fold makes the same
decisions it made live, so it writes the same states, call records, timer index
entries and status counts, and emits the same facts: each is compared with the
recorded one, and an instance whose decisions differ (its code changed since) is
reported, never silently rebuilt wrong.

Why re-drive decide() rather than fold facts into state directly: the state holds
what the facts do not (a step's retry policy, a sleep's name, the live timers), and a
second fold written for facts would be a second implementation of the engine to keep
in step with the first. Re-driving it reuses the engine and checks it at once.

Three details make it exact:

- A decision's facts are contiguous in its partition, its input fact among the first.
  An input is folded once the rebuild has read to the end of its decision (the next
  input, or another instance's fact), so the patch markers the decision recorded are
  known when ctx.patched asks (core/patching.py, DecisionMarkers).
- Commands a decision sends elsewhere are not folded here: a child's start, a report
  to a parent or a stop sent to a child arrive as that instance's own facts. Admission
  commands (AcquireSlot, ReleaseSlot) have no facts of their own: they are collected
  with the order they were sent in, and folded into the limiters afterwards
  (rebuild_limiters.py). Which limiter an instance was queued for is taken from its
  WorkflowQueued fact: the orchestrator shards a limit over the partitions
  (processors/admission.py), a choice of the engine's, not of the code.
- Instances whose history does not start at seq 1 (older facts gone with the topic's
  retention, or a read that began at a point in time) are left out and named.
"""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass, field

from replayflow.core.decide import Decider, Limits, limiter_key
from replayflow.core.decide.calls import attempt_timeout
from replayflow.core.definitions import Registry
from replayflow.core.messages import (
    AcquireSlot,
    CallDropped,
    Command,
    EventAwaited,
    EventDelivered,
    EventKept,
    FireTimer,
    HistoryEvent,
    PatchMarked,
    ReleaseSlot,
    StepFailed,
    StepScheduled,
    TimerFired,
    TimerStarted,
    WorkflowCancelled,
    WorkflowCompleted,
    WorkflowFailed,
    WorkflowQueued,
    WorkflowSuspended,
    WorkflowTimedOut,
)
from replayflow.core.patching import DecisionMarkers
from replayflow.core.replay import input_commands
from replayflow.processors.admission import LimiterShards
from replayflow.processors.fold import PartitionFolder
from replayflow.processors.fold_records import Source
from replayflow.processors.replay_all import describe
from replayflow.store import keys
from replayflow.store.protocol import Store

BATCH = 5000  # folds per store write

# Facts that are only ever decisions (core/replay.py turns none of them into a command).
_DECIDED = frozenset(
    {
        StepScheduled,
        TimerStarted,
        EventAwaited,
        EventKept,
        EventDelivered,
        CallDropped,
        WorkflowQueued,
        WorkflowCompleted,
        WorkflowFailed,
        WorkflowCancelled,
        WorkflowTimedOut,
        WorkflowSuspended,
        PatchMarked,
    }
)


@dataclass(frozen=True)
class Admission:
    """An admission command a decision sent to its limiter, with the order it was sent
    in: (time, partition, offset of the decision's input fact, position)."""

    at: int
    partition: int
    offset: int
    n: int
    command: AcquireSlot | ReleaseSlot

    @property
    def order(self) -> tuple[int, int, int, int]:
        return (self.at, self.partition, self.offset, self.n)


@dataclass(frozen=True)
class Divergence:
    instance_id: str
    reason: str


@dataclass
class PartitionReport:
    partition: int
    facts: int = 0
    folded: int = 0  # commands folded
    instances: int = 0
    seconds: float = 0.0
    last_offset: int = -1
    divergences: list[Divergence] = field(default_factory=list)
    partial: list[str] = field(default_factory=list)
    admissions: list[Admission] = field(default_factory=list)


class PartitionRebuild:
    """Folds one partition's history, fact by fact in offset order, into `store`."""

    def __init__(
        self,
        store: Store,
        registry: Registry,
        *,
        concurrency: dict[str, int] | None = None,
        limits: Limits | None = None,
        batch: int = BATCH,
        partitions: int = 1,
    ) -> None:
        self.markers = DecisionMarkers()
        self._shards = LimiterShards(partitions)
        self.decider = Decider(
            registry,
            concurrency=concurrency,
            limits=limits,
            recorded=self.markers,
            admission=self._recorded_admission,
        )
        self.folder = PartitionFolder(store, self.decider, encode=False, cache_idle=True)
        self.partition = store.partition
        self.report = PartitionReport(self.partition)
        self._batch = batch
        self._unwritten = 0
        self._known: set[str] = set()
        self._skipped: set[str] = set()
        self._fired: dict[str, str] = {}  # instance -> its last fact's timer, if TimerFired
        self._pending: tuple[HistoryEvent, list[tuple[Command, int]], int] | None = None
        self._expected: dict[str, deque[HistoryEvent]] = {}  # read, not yet re-made
        self._diverged: dict[str, str] = {}
        self._suspending: set[str] = set()  # read a WorkflowSuspended not yet re-made
        self._started = time.perf_counter()

    def feed(self, event: HistoryEvent, offset: int = -1) -> None:
        """One more fact of this partition, in offset order."""
        report = self.report
        report.facts += 1
        if offset > report.last_offset:
            report.last_offset = offset
        instance_id = event.instance_id
        if instance_id not in self._known:
            if instance_id in self._skipped:
                return
            if event.seq != 1:
                self._skipped.add(instance_id)
                self.report.partial.append(instance_id)
                return
            self._known.add(instance_id)
        commands = self._commands(event)
        pending = self._pending
        if pending is not None and (commands or pending[0].instance_id != instance_id):
            self._fold_pending()
        kind = type(event)
        if kind is PatchMarked:
            self.markers.add(event)  # type: ignore[arg-type]
        elif kind is WorkflowSuspended:
            self._suspending.add(instance_id)
        expected = self._expected.get(instance_id)
        if expected is None:
            expected = self._expected[instance_id] = deque()
        expected.append(event)
        if commands:
            self._pending = (event, commands, offset)

    def _recorded_admission(self, workflow: str, instance_id: str, limit: int) -> tuple[str, int]:
        """The limiter the decision being folded queued the instance for (its facts are
        read before it is folded), with that limiter's share of the limit."""
        for event in self._expected.get(instance_id, ()):
            if isinstance(event, WorkflowQueued):
                return event.limiter, self._shards.share_of(event.limiter, limit)
        return limiter_key(workflow), limit

    def finish(self) -> PartitionReport:
        """Fold what is left, write the store, and report."""
        if self._pending is not None:
            self._fold_pending()
        self.folder.committed(None)
        for instance_id, left in self._expected.items():
            if left:
                self._diverge(
                    instance_id,
                    f"history holds {len(left)} more facts than the code makes, from "
                    f"{describe(left[0])}",
                )
        self.report.instances = len(self._known)
        self.report.divergences = [Divergence(i, r) for i, r in self._diverged.items()]
        self.report.seconds = time.perf_counter() - self._started
        return self.report

    # -- facts into commands -------------------------------------------------------------

    def _commands(self, event: HistoryEvent) -> list[tuple[Command, int]]:
        # The one fact whose meaning depends on the one before it: a StepFailed right
        # after its attempt's timeout fired was made by that FireTimer, not sent.
        fired = self._fired.pop(event.instance_id, None) if self._fired else None
        kind = type(event)
        if kind in _DECIDED:
            return []  # a decision, never an input: most facts
        if kind is TimerFired:
            self._fired[event.instance_id] = event.timer  # type: ignore[union-attr]
        elif isinstance(event, StepFailed) and fired == attempt_timeout(event.step, event.attempt):
            return []
        return list(input_commands((event,)))

    # -- folding -----------------------------------------------------------------------

    def _fold_pending(self) -> None:
        assert self._pending is not None
        event, commands, offset = self._pending
        self._pending = None
        instance_id = event.instance_id
        folder = self.folder
        if instance_id in self._suspending:
            # Only a coroutine rebuilt from the recorded calls meets a difference from
            # them: the live decision that suspended had one, so this one must too.
            self._suspending.discard(instance_id)
            self.decider.forget(instance_id)
        start = len(folder.records)
        source = ("history", self.partition, offset, instance_id.encode(), None)
        for command, at in commands:
            try:
                self._fold(command, at, source)
            except Exception as exc:  # a bug in user code or engine: report, go on
                self._diverge(
                    instance_id,
                    f"folding {type(command).__name__} failed: {type(exc).__name__}: {exc}",
                )
        self.markers.folded(instance_id)
        made: list[HistoryEvent] = []
        n = 0
        for record in folder.records[start:]:
            message = record.message
            if record.topic == "history":
                made.append(message)
            elif record.topic == "dlq":
                self._diverge(instance_id, f"the fold rejected the input: {message.reason}")
            elif record.topic == "commands" and isinstance(message, AcquireSlot | ReleaseSlot):
                self.report.admissions.append(
                    Admission(event.at, self.partition, offset, n, message)
                )
                n += 1
        self._match(instance_id, made)
        self.report.folded += len(commands)
        self._unwritten += 1
        if self._unwritten >= self._batch:
            folder.committed(None)
            self._unwritten = 0

    def _fold(self, command: Command, at: int, source: Source) -> None:
        if isinstance(command, FireTimer):
            # A timer fires from the index, which the shell then deletes, as live.
            state = self.folder.state(command.instance_id)
            due = None if state is None else dict(state.info.timers).get(command.timer)
            if due is not None:
                self.folder.fire_timer(keys.timer(due, command.instance_id, command.timer), at)
                return
        self.folder.fold(command, at, source)

    def _match(self, instance_id: str, made: list[HistoryEvent]) -> None:
        expected = self._expected.get(instance_id)
        for got in made:
            want = expected.popleft() if expected else None
            if want != got:
                recorded = "nothing more" if want is None else describe(want)
                self._diverge(
                    instance_id, f"history has {recorded}, the code makes {describe(got)}"
                )
        if expected is not None and not expected:
            del self._expected[instance_id]

    def _diverge(self, instance_id: str, reason: str) -> None:
        self._diverged.setdefault(instance_id, reason)  # the first difference says most
