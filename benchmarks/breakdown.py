"""Where the milliseconds of a workflow go: the latency breakdown of a benchmark run.

After a run the topics hold every timestamp the engine recorded: Kafka's CreateTime on
each record (when its producer took it: the client for a start, the orchestrator for a
task or completion, the worker for a result) and the orchestrator's own time on each
history event (when the batch that folded the command was taken). The orchestrators'
journals add when each transaction's commit returned, the worker's when each step
began and ended, and the client knows when it read each completion (benchmarks/
launch.py, driver.py). For a three-step workflow the path is

  start produced -> taken by the orchestrator -> task produced -> committed
    -> taken by the worker -> step done -> result produced -> taken by the orchestrator
    -> ... (three times) ... -> completion produced -> committed -> read by the client

and every hop of every workflow lands in one of the HOPS below.
"""

from __future__ import annotations

import bisect
import statistics
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from confluent_kafka import TIMESTAMP_NOT_AVAILABLE

from replayflow import codec
from replayflow.kafka import clients
from replayflow.kafka.reading import read_to_end, watermarks
from replayflow.settings import Settings
from replayflow.topics import Topics

HOPS = (
    ("start_taken", "start produced -> taken by the orchestrator"),
    ("fold", "batch taken -> task/completion produced (fold + produce)"),
    ("commit", "produced -> transaction committed"),
    ("task_taken", "committed -> task taken by the worker"),
    ("step", "step ran"),
    ("result_produced", "step done -> result produced"),
    ("result_taken", "result produced -> taken by the orchestrator"),
    ("completion_read", "completion committed -> read by the client"),
)

FINGERPRINTS = {
    codec.fingerprint_of(name): name
    for name in (
        "StartWorkflow",
        "CompleteStep",
        "Task",
        "WorkflowStarted",
        "StepCompleted",
        "WorkflowCompleted",
        "Completion",
    )
}


def offsets(
    settings: Settings, topics: Iterable[str], partitions: int
) -> dict[str, dict[int, int]]:
    """The end offset of every partition of `topics` now: where a run's records begin."""
    consumer = clients.consumer(settings, None)
    try:
        return {
            topic: {p: watermarks(consumer, topic, p)[1] for p in range(partitions)}
            for topic in topics
        }
    finally:
        consumer.close()


@dataclass
class Facts:
    """What the topics say about the instances of one run (ms timestamps)."""

    start_produced: dict[str, int] = field(default_factory=dict)
    result_produced: dict[tuple[str, str], int] = field(default_factory=dict)
    task_produced: dict[tuple[str, str], int] = field(default_factory=dict)
    task_at: dict[tuple[int, int], tuple[str, str]] = field(default_factory=dict)
    started_at: dict[str, int] = field(default_factory=dict)
    step_folded: dict[tuple[str, str], int] = field(default_factory=dict)
    completed_at: dict[str, int] = field(default_factory=dict)
    completion_produced: dict[str, int] = field(default_factory=dict)
    partition_of: dict[str, int] = field(default_factory=dict)


def read_facts(settings: Settings, begin: dict[str, dict[int, int]], ids: set[str]) -> Facts:
    topics = Topics(settings)
    facts = Facts()
    for topic in (topics.commands, topics.tasks, topics.history, topics.completions):
        consumer = clients.consumer(settings, None)
        try:
            for batch in read_to_end(consumer, topic, begin[topic], batch=10_000):
                for message in batch:
                    _note(facts, message, ids)
        finally:
            consumer.close()
    return facts


def _note(facts: Facts, message: Any, ids: set[str]) -> None:
    value = message.value() or b""
    kind = FINGERPRINTS.get(bytes(value[2:10]))
    if kind is None:
        return
    key = (message.key() or b"").decode()
    if key not in ids:
        return
    ts_type, ts = message.timestamp()
    if ts_type == TIMESTAMP_NOT_AVAILABLE:
        return
    record = codec.decode(value)
    if kind == "StartWorkflow":
        facts.start_produced.setdefault(key, ts)
        facts.partition_of[key] = message.partition()
    elif kind == "CompleteStep":
        facts.result_produced.setdefault((key, record.step), ts)
    elif kind == "Task":
        facts.task_produced.setdefault((key, record.step), ts)
        facts.task_at[(message.partition(), message.offset())] = (key, record.step)
    elif kind == "WorkflowStarted":
        facts.started_at.setdefault(key, record.at)
    elif kind == "StepCompleted":
        facts.step_folded.setdefault((key, record.step), record.at)
    elif kind == "WorkflowCompleted":
        facts.completed_at.setdefault(key, record.at)
    elif kind == "Completion":
        facts.completion_produced.setdefault(key, ts)


class Commits:
    """When each orchestrator batch committed: a record produced at t (ms) committed
    with the first batch whose commit returned after t (one loop produces a batch's
    records, then commits, then takes the next)."""

    def __init__(self, journals: list[dict[str, Any]]) -> None:
        self._by_partition: dict[int, list[float]] = {}
        for journal in journals:
            ended = sorted(r[2] for r in journal.get("rows", []))
            for partition in journal.get("partitions", []):
                self._by_partition[partition] = ended

    def committed(self, partition: int, produced_ms: int) -> float | None:
        """When the batch that produced a record at `produced_ms` committed (seconds)."""
        ended = self._by_partition.get(partition)
        if not ended:
            return None
        # CreateTime is in whole ms: the batch before may have committed within the
        # same ms before the record was produced; a commit takes longer than a ms.
        i = bisect.bisect_left(ended, (produced_ms + 1) / 1000)
        return ended[i] if i < len(ended) else None


def breakdown(
    facts: Facts,
    orchestrator_journals: list[dict[str, Any]],
    worker_journals: list[dict[str, Any]],
    read_at: dict[str, float],
    steps: tuple[str, ...] = ("a", "b", "c"),
) -> dict[str, dict[str, float]]:
    """Per hop (HOPS): p50, p99, mean and count in ms over every workflow of the run;
    and "tail": each hop's mean share (ms per workflow) among the slowest 1 % of the
    workflows (by the sum of their hops), which says where a p99 comes from."""
    commits = Commits(orchestrator_journals)
    worker: dict[tuple[str, str], tuple[float, float]] = {}
    for journal in worker_journals:
        for partition, offset, began, done in journal.get("rows", []):
            task = facts.task_at.get((partition, offset))
            if task is not None:
                worker[task] = (began, done)
    hops: dict[str, list[float]] = defaultdict(list)
    per_workflow: list[dict[str, float]] = []

    def fold_and_commit(partition: int, folded_from: float, produced: int) -> float | None:
        """The fold hop up to a record produced, and its commit's: when it committed."""
        hops["fold"].append(produced - folded_from)
        committed = commits.committed(partition, produced)
        if committed is not None:
            hops["commit"].append(committed * 1000 - produced)
        return committed

    for instance_id, produced in facts.start_produced.items():
        mark = {name: len(values) for name, values in hops.items()}
        started = facts.started_at.get(instance_id)
        if started is None:
            continue
        partition = facts.partition_of[instance_id]
        hops["start_taken"].append(started - produced)
        previous = started
        for step in steps:
            key = (instance_id, step)
            task = facts.task_produced.get(key)
            if task is None:
                break
            committed = fold_and_commit(partition, previous, task)
            ran = worker.get(key)
            if ran is not None:
                began, done = ran
                if committed is not None:
                    hops["task_taken"].append((began - committed) * 1000)
                hops["step"].append((done - began) * 1000)
                result = facts.result_produced.get(key)
                if result is not None:
                    hops["result_produced"].append(result - done * 1000)
            result = facts.result_produced.get(key)
            folded = facts.step_folded.get(key)
            if result is None or folded is None:
                break
            hops["result_taken"].append(folded - result)
            previous = folded
        completion = facts.completion_produced.get(instance_id)
        ended = facts.completed_at.get(instance_id)
        if completion is None or ended is None:
            continue
        committed = fold_and_commit(partition, ended, completion)
        if committed is not None:
            read = read_at.get(instance_id)
            if read is not None:
                hops["completion_read"].append((read - committed) * 1000)
        per_workflow.append(
            {name: sum(values[mark.get(name, 0) :]) for name, values in hops.items()}
        )
    out: dict[str, dict[str, float]] = {name: summary(hops.get(name, [])) for name, _ in HOPS}
    out["tail"] = tail(per_workflow)
    return out


def tail(per_workflow: list[dict[str, float]], share: float = 0.01) -> dict[str, float]:
    """The slowest `share` of the workflows (by the sum of their hops): each hop's mean
    ms per workflow among them, and their mean total."""
    ranked = sorted(per_workflow, key=lambda hops: sum(hops.values()), reverse=True)
    slowest = ranked[: max(1, int(len(ranked) * share))] if ranked else []
    if not slowest:
        return {}
    out = {
        name: round(sum(w.get(name, 0.0) for w in slowest) / len(slowest), 2) for name, _ in HOPS
    }
    out["total"] = round(sum(sum(w.values()) for w in slowest) / len(slowest), 2)
    out["count"] = len(slowest)
    return out


def summary(values: list[float]) -> dict[str, float]:
    if not values:
        return {"count": 0}
    ordered = sorted(values)
    return {
        "count": len(ordered),
        "p50": round(statistics.median(ordered), 2),
        "p99": round(ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))], 2),
        "mean": round(statistics.fmean(ordered), 2),
    }


def per_workflow_hops(steps: int) -> dict[str, int]:
    """How many times each hop occurs on the path of one workflow of `steps` steps."""
    return {
        "start_taken": 1,
        "fold": steps + 1,
        "commit": steps + 1,
        "task_taken": steps,
        "step": steps,
        "result_produced": steps,
        "result_taken": steps,
        "completion_read": 1,
    }


def table(hops: dict[str, dict[str, float]], steps: int = 3) -> list[str]:
    """Printable lines: each hop's p50 / p99, and the path's sum of medians."""
    lines = [f"    {'hop':<58} {'p50 ms':>8} {'p99 ms':>8} {'x':>3} {'tail ms':>8}"]
    total = 0.0
    tail_ = hops.get("tail", {})
    for name, label in HOPS:
        figures = hops.get(name, {})
        times = per_workflow_hops(steps)[name]
        in_tail = f"{tail_[name]:>8.2f}" if name in tail_ else f"{'-':>8}"
        if figures.get("count"):
            total += figures["p50"] * times
            lines.append(
                f"    {label:<58} {figures['p50']:>8.2f} {figures['p99']:>8.2f} {times:>3} "
                + in_tail
            )
        else:
            lines.append(f"    {label:<58} {'-':>8} {'-':>8} {times:>3} {in_tail}")
    lines.append(f"    {'sum of medians along the path':<58} {total:>8.1f}")
    if tail_:
        lines.append(
            f"    (tail ms: each hop's ms per workflow, summed over its crossings, among the "
            f"slowest {tail_['count']:.0f} workflows; their mean total {tail_['total']:.1f} ms)"
        )
    return lines
