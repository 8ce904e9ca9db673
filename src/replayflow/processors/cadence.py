"""Which consumed commands the orchestrator folds next: instances already running
advance ahead of new starts, and starts are admitted at the pace the engine keeps up
with.

A burst of starts used to fill every batch, and the step results of the instances it
had started queued behind it on the same partitions: nothing completed for seconds,
then everything. Here the consumer reads ahead; each command it hands over is

  progress  a step's result (CompleteStep, FailStep) and a start the orchestrator
            itself made (a child's, a schedule's run): folded in the next batch, ahead
            of starts read before it;
  start     a StartWorkflow from outside: held in its partition's queue and admitted
            in order, at most `StartBudget.per_batch()` a batch;
  other     anything else (events, cancels, admission, bad input): folded in its
            partition's order, so it waits behind starts held before it.

Why this keeps one total order per instance: an instance's commands are never
reordered among themselves. A progress command goes ahead only when its partition
holds nothing for the same instance; otherwise it queues behind that instance's held
command. Commands of different instances commute (each folds into its own state).

Why it stays exactly once: the offset committed for a partition never passes its first
held (or not yet folded) command, so after a crash everything from there is read
again. Progress commands folded ahead of it are read again too, and fold as no-ops:
a step's result may come twice anyway (a worker runs a task at least once), and the
fold keeps only the first result of an attempt (a second CompleteStep or FailStep
finds the call resolved, or a later attempt, restarts included); a second start of an
existing instance changes nothing (a schedule's run that ended is told to its schedule
again, which ignores a run it has closed). Only such commands may go ahead; an event,
whose second delivery would count, never does, nor does a command whose caller waits
for a reply (a second reply could contradict the first), nor a GrantSlot (a second
one, read again after its instance ended, was restarted and queued anew, would admit
it without a slot; a limiter shard's grants stay in the batch anyway, see
processors/admission.py). After an abort the consumer rewinds to the committed
offsets and the queues are dropped.

The start budget (`StartBudget`) keeps both queues short: each batch is filled with
starts only up to what folds in about 50 ms of CPU, and the share given to starts
follows (AIMD, as TCP paces its window) how long results' tasks waited for a worker.
"""

from __future__ import annotations

import contextlib
from collections import deque
from collections.abc import Collection, Iterable
from dataclasses import dataclass, field

from confluent_kafka import Message

from replayflow import codec
from replayflow.core.replies import REQUEST_ID_HEADER
from replayflow.processors.intake import ORIGIN_HEADER

__all__ = ["ORIGIN_HEADER", "WAITED_HEADER", "Intake", "StartBudget", "kind", "waited_ms"]

#: Header a worker puts on a result: ms its task waited in the tasks topic.
WAITED_HEADER = "replayflow-waited-ms"

START, PROGRESS, OTHER = 0, 1, 2


def _fingerprints(*names: str) -> frozenset[bytes]:
    """Every version's: a client or worker built on older schemas is recognised too."""
    c = codec.default_codec()
    return frozenset(c.fingerprint_of(n, v) for n in names for v in c.versions(n))


_STARTS = _fingerprints("StartWorkflow")
_RESULTS = _fingerprints("CompleteStep", "FailStep")


def kind(message: Message) -> int:
    """START, PROGRESS or OTHER, from the record's schema fingerprint and headers (no
    decoding)."""
    value = message.value()
    if value is None or len(value) < codec.HEADER_SIZE:
        return OTHER
    fingerprint = value[2 : codec.HEADER_SIZE]
    if fingerprint in _RESULTS:
        headers = message.headers()
        if headers and any(h[0] == REQUEST_ID_HEADER for h in headers):
            return OTHER  # its caller waits for one reply
        return PROGRESS
    if fingerprint in _STARTS:
        return PROGRESS if ORIGIN_HEADER in (message.headers() or ()) else START
    return OTHER


def waited_ms(message: Message) -> int | None:
    """How long a result's task waited for a worker (the worker's header), or None for
    a command that is no result or carries no such header."""
    value = message.value()
    if value is None or value[2 : codec.HEADER_SIZE] not in _RESULTS:
        return None
    headers = message.headers() or ()
    for name, raw in headers.items() if isinstance(headers, dict) else headers:
        if name == WAITED_HEADER and raw:
            with contextlib.suppress(ValueError):
                return max(0, int(raw))
            break
    return None


@dataclass
class StartBudget:
    """How many held starts the next batch may admit.

    Two measures decide it. The orchestrator's own: a batch should take about
    `batch_ms` of CPU to fold (every command of an instance waits for the whole batch,
    and every batch is a transaction, whose commit markers cost the broker the same
    however few commands it holds), so the batch is filled with starts up to what that
    much CPU folds, at the cost per command measured on recent batches. CPU, not wall
    time: on a busy machine wall time per command grows, and batches shrinking with it
    would only add transactions where the CPU is already short.

    The workers': every result carries how long its task waited in the tasks topic.
    While the typical (median) wait of a batch's results stays under `target_wait_ms`
    (or four times the smallest typical wait seen lately: a machine too busy to answer
    sooner raises the floor, a growing queue does not), the share of the fill given to
    starts grows; above it the share halves, at most once per `cooldown_ms` (the starts
    admitted before a cut need that long to show in the waits). The wait counts from
    the task's production, so it includes the commit and the fetch: the target leaves
    room for them on a busy machine. A slow step is no wait: slow workflows are never
    throttled, queues are.

    A backlog of starts (more held than a full batch admits) that follows a time
    without one begins at `restart_share` of the fill, and the share doubles each batch
    until a cut or the whole fill (TCP's slow start after idle). The first instances of
    a burst then cross their hops in small batches, ahead of the rest of the burst,
    instead of each hop waiting for a batch of the fullest size (docs/performance.md:
    the first workflow of a 20,000 burst completes in about half the time)."""

    low: int = 8
    high: int = 2000
    batch_ms: float = 50.0
    target_wait_ms: int = 250
    cooldown_ms: int = 1000
    ms_per_command: float = 0.2  # measured; a cautious first guess until then
    share: float = 1.0
    restart_share: float = 1 / 64
    idle_ms: int = 1000
    _waits: list[int] = field(default_factory=list)
    _recent: deque[int] = field(default_factory=lambda: deque(maxlen=64))
    _last_cut: int = -(10**12)
    _last_backlog: int = -(10**12)
    _slow: bool = False  # doubling, since a backlog began

    def observe(self, waited: int) -> None:
        """A result's task waited `waited` ms for a worker."""
        self._waits.append(waited)

    def folded(self, commands: int, seconds: float) -> None:
        """A batch of `commands` took `seconds` of CPU to fold."""
        if commands >= 8:
            per = seconds * 1000 / commands
            self.ms_per_command += 0.2 * (per - self.ms_per_command)

    def per_batch(self, now: int, ready: int, held: int = 0) -> int:
        """The budget for the batch taken at `now` (ms) that folds `ready` results
        while `held` commands wait in the partitions' queues."""
        waits, self._waits = self._waits, []
        cut = False
        if waits:
            waits.sort()
            typical = waits[len(waits) // 2]
            self._recent.append(typical)
            if typical > max(self.target_wait_ms, 4 * min(self._recent)):
                if now - self._last_cut >= self.cooldown_ms:
                    self.share = max(1 / 64, self.share / 2)
                    self._last_cut, self._slow, cut = now, False, True
            elif not self._slow:
                self.share = min(1.0, self.share + 1 / 8)
        fill = min(self.high, self.batch_ms / max(self.ms_per_command, 1e-3))
        if held > fill:
            if now - self._last_backlog > self.idle_ms:
                self.share, self._slow = self.restart_share, True
            elif self._slow and not cut:
                self.share = min(1.0, self.share * 2)
                self._slow = self.share < 1.0
            self._last_backlog = now
        return max(self.low, int(fill * self.share) - ready)


class _Partition:
    __slots__ = ("committed", "held", "held_keys", "next_offset", "ready")

    def __init__(self, first: int) -> None:
        self.ready: deque[Message] = deque()  # progress, folded next batch
        self.held: deque[tuple[int, Message]] = deque()  # (kind, message), offset order
        self.held_keys: dict[bytes | None, int] = {}
        self.next_offset = -1  # past the last command read
        # The offset committed for the partition: where reading began (the consumer
        # starts at the committed offset, or is rewound to it), then what commits sent.
        self.committed = first

    def first_unfolded(self) -> int:
        offsets = [self.next_offset]
        if self.ready:
            offsets.append(self.ready[0].offset() or 0)
        if self.held:
            offsets.append(self.held[0][1].offset() or 0)
        return min(offsets)


class Intake:
    """Commands read but not yet folded, per partition; `take()` makes each batch."""

    def __init__(self, batch_size: int, max_held: int = 100_000) -> None:
        self.batch_size = batch_size
        self.max_held = max_held
        self._partitions: dict[int, _Partition] = {}
        self.held = 0
        self._rotation = 0
        self._turn = 0

    def wants_more(self) -> bool:
        """Whether to read on: the queues have room. Reading far ahead is what lets a
        result overtake the starts before it in its partition."""
        return self.held < self.max_held

    def has_work(self) -> bool:
        return any(p.ready or p.held for p in self._partitions.values())

    def ready(self) -> int:
        """Commands the next batch folds whatever the budget."""
        return sum(len(p.ready) for p in self._partitions.values())

    def waiting(self) -> int:
        """Commands read and not yet taken."""
        return self.ready() + self.held

    def add(self, messages: Iterable[Message]) -> list[Message]:
        """File consumed commands; returns the ones carrying an error (not filed)."""
        errors = []
        for message in messages:
            if message.error() is not None:
                errors.append(message)
                continue
            number = message.partition()
            assert number is not None
            partition = self._partitions.get(number)
            if partition is None:
                partition = self._partitions[number] = _Partition(message.offset() or 0)
            partition.next_offset = (message.offset() or 0) + 1
            what = kind(message)
            key = message.key()
            if what == PROGRESS and key not in partition.held_keys:
                partition.ready.append(message)
                continue
            partition.held.append((what, message))
            partition.held_keys[key] = partition.held_keys.get(key, 0) + 1
            self.held += 1
        return errors

    def take(
        self, start_budget: int, busy: Collection[int] = (), split_at: int | None = None
    ) -> list[Message]:
        """The next batch: ready commands first (up to the batch size, round robin over
        partitions); then, if every ready one fits, held ones in each partition's
        order while the batch has room, a held start admitted only while
        `start_budget` lasts. (Were a held command taken while an earlier ready one of
        the same instance waited, the instance's order would break: so none is.)

        Partitions in `busy` (whose previous batch still commits) give nothing. With
        more than `split_at` ready commands, a batch takes from half the partitions
        that have some, in turn: the other half makes the next batch, folded while
        this one commits (processors/orchestrator.py). Only ready commands count: the
        batch folded meanwhile admits no start, so held starts give it nothing to fold,
        and a queue of them (a burst, or a limited workflow's backlog) split every
        batch and made the results on the other half wait a commit more."""
        batch: list[Message] = []
        room = self.batch_size
        chosen = [
            (n, p) for n, p in self._partitions.items() if (p.ready or p.held) and n not in busy
        ]
        if split_at is not None and len(chosen) > 1 and self.ready() > split_at:
            self._turn = (self._turn + 1) % len(chosen)
            chosen = (chosen[self._turn :] + chosen[: self._turn])[: (len(chosen) + 1) // 2]
        partitions = [p for _, p in chosen]
        readies = [p.ready for p in partitions if p.ready]
        while readies and room > 0:
            still = []
            for ready in readies:
                batch.append(ready.popleft())
                room -= 1
                if ready and room > 0:
                    still.append(ready)
            readies = still
        if readies or any(p.ready for p in partitions):
            return batch
        queues = [p for p in partitions if p.held]
        if not queues:
            return batch
        room = max(room, min(start_budget, self.batch_size))
        starts = start_budget
        self._rotation = (self._rotation + 1) % len(queues)
        queues = queues[self._rotation :] + queues[: self._rotation]
        while room > 0 and queues:
            still_held = []
            for partition in queues:
                what, message = partition.held[0]
                if what == START:
                    if starts <= 0:
                        continue
                    starts -= 1
                partition.held.popleft()
                self.held -= 1
                key = message.key()
                left = partition.held_keys[key] - 1
                if left:
                    partition.held_keys[key] = left
                else:
                    del partition.held_keys[key]
                batch.append(message)
                room -= 1
                if partition.held and room > 0:
                    still_held.append(partition)
            queues = still_held
        return batch

    def positions(self) -> dict[int, int]:
        """Per partition read from: the offset to commit, the first not yet folded."""
        return {
            number: partition.first_unfolded()
            for number, partition in self._partitions.items()
            if partition.next_offset >= 0
        }

    def to_commit(self) -> dict[int, int]:
        """The positions that moved since the last commit: the offsets to send."""
        return {
            number: offset
            for number, offset in self.positions().items()
            if offset != self._partitions[number].committed
        }

    def committed(self, offsets: dict[int, int]) -> None:
        """A transaction with these offsets committed."""
        for number, offset in offsets.items():
            partition = self._partitions.get(number)
            if partition is not None:
                partition.committed = offset

    def rewind(self) -> dict[int, int]:
        """After an abort: per partition read from, the committed offset to read again
        from; every queue is dropped."""
        points = {number: p.committed for number, p in self._partitions.items()}
        self.drop()
        return points

    def drop(self, partitions: Iterable[int] | None = None) -> None:
        """Forget what was read of these partitions (all when None): revoked, or
        rewound after an abort."""
        numbers = list(self._partitions) if partitions is None else list(partitions)
        for number in numbers:
            partition = self._partitions.pop(number, None)
            if partition is not None:
                self.held -= len(partition.held)
