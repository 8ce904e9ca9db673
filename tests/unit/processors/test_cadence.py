"""Which commands a batch takes (processors/cadence.py): results ahead of starts, one
order per instance kept, offsets never past what was not folded, starts paced."""

from __future__ import annotations

from confluent_kafka import Message
from hypothesis import given, settings
from hypothesis import strategies as st

from replayflow import codec
from replayflow.core.messages import CompleteStep, GrantSlot, SendEvent, StartWorkflow
from replayflow.core.replies import REQUEST_ID_HEADER
from replayflow.processors.cadence import (
    ORIGIN_HEADER,
    WAITED_HEADER,
    Intake,
    StartBudget,
    waited_ms,
)


class Log:
    """Records of replayflow.commands, offsets counted per partition."""

    def __init__(self) -> None:
        self.offsets: dict[int, int] = {}

    def message(self, command: object, partition: int = 0, headers: list | None = None) -> Message:
        offset = self.offsets.get(partition, 0)
        self.offsets[partition] = offset + 1
        key = command.instance_id.encode()  # type: ignore[attr-defined]
        return Message(
            topic="commands",
            partition=partition,
            offset=offset,
            key=key,
            value=codec.encode(command),
            headers=headers,
            timestamp=(1, 1000),
        )

    def start(self, instance_id: str, partition: int = 0, internal: bool = False) -> Message:
        command = StartWorkflow(instance_id=instance_id, workflow="w")
        return self.message(command, partition, [ORIGIN_HEADER] if internal else None)

    def result(self, instance_id: str, partition: int = 0, waited: int | None = None) -> Message:
        command = CompleteStep(instance_id=instance_id, step="a", attempt=1, result="1")
        headers = None if waited is None else [(WAITED_HEADER, str(waited).encode())]
        return self.message(command, partition, headers)

    def event(self, instance_id: str, partition: int = 0) -> Message:
        return self.message(SendEvent(instance_id=instance_id, name="e"), partition)


def ids(batch: list[Message]) -> list[str]:
    return [f"{(m.key() or b'').decode()}@{m.offset()}" for m in batch]


def test_results_overtake_held_starts_and_offsets_stay_behind_them() -> None:
    log = Log()
    intake = Intake(batch_size=100)
    intake.add([log.start(f"s{n}") for n in range(5)] + [log.result("r1"), log.result("r2")])
    batch = intake.take(start_budget=2)
    # Both results first, then two of the five starts.
    assert ids(batch) == ["r1@5", "r2@6", "s0@0", "s1@1"]
    # The committed offset stays at the first start not yet folded.
    assert intake.positions() == {0: 2}
    assert ids(intake.take(start_budget=10)) == ["s2@2", "s3@3", "s4@4"]
    assert intake.positions() == {0: 7}


def test_an_instance_with_a_held_command_keeps_its_order() -> None:
    log = Log()
    intake = Intake(batch_size=100)
    # s0's start is held; its result (impossible before a start in real life, but the
    # rule is per instance) and an event for r must wait behind what r has held.
    intake.add([log.start("s0"), log.event("r"), log.result("r"), log.result("x")])
    batch = intake.take(start_budget=0)
    assert ids(batch) == ["x@3"]
    assert intake.positions() == {0: 0}
    assert ids(intake.take(start_budget=1)) == ["s0@0", "r@1", "r@2"]


def test_starts_made_by_the_orchestrator_are_progress() -> None:
    log = Log()
    intake = Intake(batch_size=100)
    intake.add([log.start("s"), log.start("child", internal=True)])
    assert ids(intake.take(start_budget=0)) == ["child@1"]


def test_only_commands_whose_second_fold_changes_nothing_go_ahead() -> None:
    log = Log()
    intake = Intake(batch_size=100)
    asked = CompleteStep(instance_id="asked", step="a", attempt=1)
    intake.add(
        [
            log.start("s"),
            # A caller waits for its reply: a second fold would answer it again.
            log.message(asked, headers=[(REQUEST_ID_HEADER, b"req-1")]),
            # A second grant could admit an instance restarted and queued anew.
            log.message(GrantSlot(instance_id="g"), headers=[ORIGIN_HEADER]),
            log.result("r"),
        ]
    )
    assert ids(intake.take(start_budget=0)) == ["r@3"]
    assert ids(intake.take(start_budget=1)) == ["s@0", "asked@1", "g@2"]


def test_offsets_to_commit_and_the_rewind_after_an_abort() -> None:
    log = Log()
    intake = Intake(batch_size=100)
    log.offsets[0] = 40  # the consumer starts at the committed offset, 40
    intake.add([log.start("s0"), log.start("s1"), log.result("r")])
    intake.take(start_budget=1)  # r (ahead) and s0
    assert intake.to_commit() == {0: 41}  # s1 is held: not past it
    intake.committed({0: 41})
    assert intake.to_commit() == {}
    intake.take(start_budget=1)  # s1, in a transaction that then aborts
    assert intake.to_commit() == {0: 43}
    assert intake.rewind() == {0: 41}  # read again from what was committed
    assert intake.held == 0 and intake.positions() == {}


def test_a_batch_never_takes_held_commands_while_ready_ones_wait() -> None:
    log = Log()
    intake = Intake(batch_size=3)
    intake.add([log.start("s"), *(log.result(f"r{n}") for n in range(5))])
    assert ids(intake.take(start_budget=10)) == ["r0@1", "r1@2", "r2@3"]
    assert ids(intake.take(start_budget=10)) == ["r3@4", "r4@5", "s@0"]


def test_partitions_are_taken_round_robin_and_dropped_on_revoke() -> None:
    log = Log()
    intake = Intake(batch_size=100)
    intake.add([log.start(f"a{n}", partition=0) for n in range(3)])
    intake.add([log.start(f"b{n}", partition=1) for n in range(3)])
    batch = intake.take(start_budget=4)
    assert sorted(ids(batch)) == ["a0@0", "a1@1", "b0@0", "b1@1"]
    intake.drop([1])
    assert intake.positions() == {0: 2}
    assert intake.held == 1


def test_partitions_whose_batch_commits_give_nothing() -> None:
    log = Log()
    intake = Intake(batch_size=100)
    intake.add([log.result("a", partition=0), log.result("b", partition=1)])
    assert ids(intake.take(start_budget=10, busy={0})) == ["b@0"]
    assert intake.positions() == {0: 0, 1: 1}  # partition 0's result waits, unfolded
    assert ids(intake.take(start_budget=10, busy={1})) == ["a@0"]


def test_a_long_queue_is_taken_half_the_partitions_at_a_time() -> None:
    log = Log()
    intake = Intake(batch_size=1000)
    for partition in range(4):
        intake.add([log.result(f"p{partition}-{n}", partition=partition) for n in range(10)])
    first = intake.take(start_budget=0, split_at=20)
    taken = {m.partition() for m in first}
    assert len(taken) == 2 and len(first) == 20  # two of the four partitions, whole
    # The next batch (while the first commits) takes the other two.
    second = intake.take(start_budget=0, busy=taken, split_at=20)
    assert {m.partition() for m in second} == {0, 1, 2, 3} - taken and len(second) == 20
    # A short queue is taken whole: splitting would only delay it.
    intake.add([log.result(f"q{partition}", partition=partition) for partition in range(4)])
    assert len(intake.take(start_budget=0, split_at=20)) == 4


def test_held_starts_do_not_split_a_batch() -> None:
    # A backlog of starts (a limited workflow's, say) is no reason to split: the batch
    # folded while this one commits admits no start, so the results of every partition
    # are taken now instead of waiting a commit more.
    log = Log()
    intake = Intake(batch_size=1000)
    for partition in range(4):
        intake.add([log.start(f"s{partition}-{n}", partition=partition) for n in range(100)])
        intake.add([log.result(f"r{partition}", partition=partition)])
    assert intake.waiting() > 20
    batch = intake.take(start_budget=0, split_at=20)
    assert sorted(ids(batch)) == [f"r{p}@100" for p in range(4)]


def test_waited_reads_the_workers_header() -> None:
    log = Log()
    assert waited_ms(log.result("r", waited=37)) == 37
    assert waited_ms(log.result("r")) is None
    assert waited_ms(log.start("s")) is None


def test_start_budget_fills_batches_and_halves_on_queued_results() -> None:
    budget = StartBudget(batch_ms=50.0)
    budget.folded(100, 0.02)  # 0.2 ms of CPU a command: 250 commands fill 50 ms
    assert budget.per_batch(0, ready=0) == 250
    assert budget.per_batch(0, ready=200) == 50
    for _ in range(10):
        budget.observe(10)
    budget.per_batch(0, ready=0)
    for _ in range(10):
        budget.observe(2000)  # tasks waited 2 s for a worker: a queue
    assert budget.per_batch(10_000, ready=0) == 125
    for _ in range(10):
        budget.observe(2000)
    # At most one cut per cooldown.
    assert budget.per_batch(10_100, ready=0) == 125
    budget.observe(10)
    assert budget.per_batch(10_200, ready=0) > 125


def test_a_backlog_after_idle_begins_small_and_doubles_each_batch() -> None:
    budget = StartBudget(batch_ms=50.0)
    budget.folded(100, 0.02)  # a full batch admits 250 starts
    # A few held starts are no backlog: all of them may go.
    assert budget.per_batch(0, ready=0, held=5) == 250
    sizes = [budget.per_batch(5_000 + 10 * i, ready=0, held=20_000) for i in range(8)]
    assert sizes == [8, 8, 15, 31, 62, 125, 250, 250]
    # The backlog goes on: no new slow start while it lasts.
    assert budget.per_batch(5_900, ready=0, held=10_000) == 250
    # A backlog after more than a second without one starts small again.
    assert budget.per_batch(7_000, ready=0, held=20_000) == 8


def test_a_cut_ends_the_doubling() -> None:
    budget = StartBudget(batch_ms=50.0)
    budget.folded(100, 0.02)
    budget.observe(10)  # the lowest typical wait seen: 10 ms
    for i in range(5):
        budget.per_batch(5_000 + 10 * i, ready=0, held=20_000)  # share 1/4: 62
    for _ in range(10):
        budget.observe(2000)  # tasks waited 2 s for a worker
    assert budget.per_batch(5_050, ready=0, held=20_000) == 31
    # From here the share grows by an eighth a batch, no longer doubles.
    budget.observe(10)
    assert budget.per_batch(5_060, ready=0, held=20_000) == 62
    assert budget.per_batch(5_070, ready=0, held=20_000) == 62


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(st.sampled_from(["start", "result", "event"]), st.integers(0, 5)),
        max_size=40,
    ),
    st.integers(1, 8),
    st.integers(0, 4),
)
def test_any_interleaving_keeps_each_instance_in_order(
    commands: list[tuple[str, int]], batch_size: int, budget: int
) -> None:
    """Whatever arrives, each instance's commands are folded in their log order, every
    command exactly once, and no committed offset passes an unfolded command."""
    log = Log()
    intake = Intake(batch_size=batch_size)
    sent: dict[str, list[int]] = {}
    messages = []
    for kind, instance in commands:
        instance_id = f"i{instance}"
        partition = instance % 3  # an instance lives on one partition
        maker = {"start": log.start, "result": log.result, "event": log.event}[kind]
        message = maker(instance_id, partition)
        messages.append(message)
        sent.setdefault(instance_id, []).append(message.offset() or 0)
    folded: dict[str, list[int]] = {}
    unfolded = {(m.partition(), m.offset()) for m in messages}
    for chunk in range(0, len(messages), 3):
        intake.add(messages[chunk : chunk + 3])
        batch = intake.take(budget)
        for message in batch:
            folded.setdefault((message.key() or b"").decode(), []).append(message.offset() or 0)
            unfolded.discard((message.partition(), message.offset()))
        for partition, position in intake.positions().items():
            assert all(o >= position for p, o in unfolded if p == partition)
    for _ in range(len(messages) + 1):
        for message in intake.take(max(budget, 1)):
            folded.setdefault((message.key() or b"").decode(), []).append(message.offset() or 0)
    assert folded == sent
