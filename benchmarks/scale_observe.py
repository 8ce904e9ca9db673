"""The scale benchmark's observer (benchmarks/scale.py): facts counted from history,
completions and the limiter's commands partition with a plain reader (no group, only
the facts it counts decoded, by their 8-byte schema fingerprint), and samples of the
processes and of the orchestrator's committed and end offsets once a second."""

from __future__ import annotations

import statistics
import threading
import time
from collections import Counter
from typing import Any

from confluent_kafka import (
    OFFSET_BEGINNING,
    ConsumerGroupTopicPartitions,
    IsolationLevel,
    TopicPartition,
)
from confluent_kafka.admin import OffsetSpec

from benchmarks.scale_processes import Namespace, check_alive
from replayflow import codec
from replayflow.kafka import clients
from replayflow.kafka.config import group_name

# Facts the observer decodes (everything else on history is only skipped).
DECODED = ("EventAwaited", "WorkflowQueued", "WorkflowAdmitted", "WorkflowCompleted")
SLOT_COMMANDS = ("AcquireSlot", "ReleaseSlot")


def _fingerprints(names: tuple[str, ...]) -> dict[bytes, str]:
    found = {}
    for name in names:
        for version in codec.default_codec().versions(name):
            found[codec.fingerprint_of(name, version)] = name
    return found


class Monitor(threading.Thread):
    """Counts facts on history, completions on completions and, for the queued phase,
    the slot commands on the limiter's partition of the commands topic."""

    def __init__(self, ns: Namespace, limiter_partition: int | None = None) -> None:
        super().__init__(name="scale-monitor", daemon=True)
        partitions = ns.settings.partitions or 12
        self._consumer = clients.consumer(ns.settings, None)
        assignment = [
            TopicPartition(topic, p, OFFSET_BEGINNING)
            for topic in (ns.topics.history, ns.topics.completions)
            for p in range(partitions)
        ]
        if limiter_partition is not None:
            assignment.append(
                TopicPartition(ns.topics.commands, limiter_partition, OFFSET_BEGINNING)
            )
        self._consumer.assign(assignment)
        self._history = ns.topics.history
        self._completions = ns.topics.completions
        self._commands = ns.topics.commands
        self._decoded = _fingerprints(DECODED)
        self._slots = _fingerprints(SLOT_COMMANDS)
        self._completion_fp = codec.fingerprint_of("Completion")
        self.lock = threading.Condition()
        self.counts: Counter[str] = Counter()
        self.completions: Counter[str] = Counter()  # "<workflow> <status>"
        self.first_at: dict[str, int] = {}
        self.last_at: dict[str, int] = {}
        self.admitted_at: dict[str, int] = {}
        self.completed_at: dict[str, int] = {}
        self.last_acquire_offset = -1
        self._stopping = threading.Event()

    def run(self) -> None:
        decode = codec.decode
        while not self._stopping.is_set():
            messages = self._consumer.consume(10_000, timeout=0.2)
            if not messages:
                continue
            with self.lock:
                for m in messages:
                    if m.error() is not None:
                        continue
                    value = m.value() or b""
                    fp = value[2:10]
                    topic = m.topic()
                    if topic == self._history:
                        name = self._decoded.get(fp)
                        if name is None:
                            continue
                        event = decode(value)
                        self.counts[name] += 1
                        self.first_at.setdefault(name, event.at)
                        self.last_at[name] = max(self.last_at.get(name, 0), event.at)
                        if name == "WorkflowAdmitted":
                            self.admitted_at[event.instance_id] = event.at
                    elif topic == self._completions:
                        if fp != self._completion_fp:
                            continue
                        completion = decode(value)
                        self.completions[f"{completion.workflow} {completion.status}"] += 1
                        self.completed_at[completion.instance_id] = completion.at
                    elif topic == self._commands:
                        name = self._slots.get(fp)
                        if name is not None:
                            self.counts[name] += 1
                            if name == "AcquireSlot":
                                self.last_acquire_offset = max(
                                    self.last_acquire_offset, m.offset() or 0
                                )
                self.lock.notify_all()
        self._consumer.close()

    def snapshot(self) -> dict[str, int]:
        with self.lock:
            return {**self.counts, **{f"completed {k}": v for k, v in self.completions.items()}}

    def completed(self, workflow: str) -> int:
        with self.lock:
            return sum(v for k, v in self.completions.items() if k.split(" ")[0] == workflow)

    def wait(self, predicate: Any, deadline: float) -> bool:
        with self.lock:
            while not predicate():
                left = deadline - time.time()
                if left <= 0:
                    return False
                self.lock.wait(min(left, 1.0))
            return True

    def close(self) -> None:
        self._stopping.set()
        self.join(10)


class Offsets:
    """The orchestrator group's committed offsets and the end (last stable) offsets of
    each partition of the commands topic, from the admin API."""

    def __init__(self, ns: Namespace) -> None:
        self._admin = clients.admin(ns.settings)
        self._group = group_name(ns.settings, "orchestrator")
        self._tps = [
            TopicPartition(ns.topics.commands, p) for p in range(ns.settings.partitions or 12)
        ]

    def read(self) -> tuple[list[int], list[int]]:
        request = [ConsumerGroupTopicPartitions(self._group, list(self._tps))]
        committed_result = self._admin.list_consumer_group_offsets(request)[self._group]
        ends = self._admin.list_offsets(
            {tp: OffsetSpec.latest() for tp in self._tps},
            isolation_level=IsolationLevel.READ_COMMITTED,
        )
        committed = [0] * len(self._tps)
        for tp in committed_result.result(15).topic_partitions:
            committed[tp.partition] = max(0, tp.offset)
        end = [0] * len(self._tps)
        for tp, future in ends.items():
            end[tp.partition] = future.result(15).offset
        return committed, end


class Sampler(threading.Thread):
    """Once per interval: RSS and CPU of the processes, the observer's counts, and the
    commands topic's committed and end offsets per partition."""

    def __init__(self, ns: Namespace, monitor: Monitor, interval: float) -> None:
        super().__init__(name="scale-sampler", daemon=True)
        self.ns = ns
        self.monitor = monitor
        self.interval = interval
        self.offsets = Offsets(ns)
        self.t0 = time.time()
        self.samples: list[dict[str, Any]] = []
        self._stopping = threading.Event()

    def sample(self) -> dict[str, Any]:
        row: dict[str, Any] = {"t": round(time.time() - self.t0, 2)}
        for process in self.ns.processes:
            if process.alive():
                row[process.name] = process.status()
        row["counts"] = self.monitor.snapshot()
        try:
            row["committed"], row["end"] = self.offsets.read()
        except Exception as exc:  # an admin hiccup must not end the run
            row["offsets_error"] = str(exc)
        return row

    def run(self) -> None:
        while not self._stopping.wait(self.interval):
            self.samples.append(self.sample())

    def close(self) -> None:
        self._stopping.set()
        self.join(30)

    def at(self, t: float) -> dict[str, Any] | None:
        """The first sample taken at or after wall time t."""
        rel = t - self.t0
        for row in self.samples:
            if row["t"] >= rel and "committed" in row:
                return row
        return None

    def before(self, t: float) -> dict[str, Any] | None:
        """The last sample taken at or before wall time t."""
        rel = t - self.t0
        found = None
        for row in self.samples:
            if row["t"] <= rel and "committed" in row:
                found = row
        return found


def partition_window(
    sampler: Sampler, start: float, end: float, limiter_partition: int | None
) -> dict[str, Any]:
    """Commands consumed per partition, consumption rates, max lag and orchestrator CPU
    between two wall times (from the nearest samples)."""
    a, b = sampler.before(start) or sampler.at(start), sampler.before(end)
    if a is None or b is None or b["t"] <= a["t"]:
        return {}
    dt = b["t"] - a["t"]
    consumed = [y - x for x, y in zip(a["committed"], b["committed"], strict=True)]
    window = [r for r in sampler.samples if a["t"] <= r["t"] <= b["t"] and "committed" in r]
    lags = [[e - c for c, e in zip(r["committed"], r["end"], strict=True)] for r in window]
    max_lag = [max(lag[p] for lag in lags) for p in range(len(consumed))]
    out: dict[str, Any] = {
        "seconds": round(dt, 1),
        "consumed_per_partition": consumed,
        "consumed_per_s_per_partition": [round(c / dt, 1) for c in consumed],
        "max_lag_per_partition": max_lag,
        "lag_at_end_per_partition": lags[-1] if lags else [],
    }
    orch_a, orch_b = a.get("orchestrator", {}), b.get("orchestrator", {})
    if "cpu_s" in orch_a and "cpu_s" in orch_b:
        out["orchestrator_cpu_pct"] = round(100 * (orch_b["cpu_s"] - orch_a["cpu_s"]) / dt, 1)
    work_a, work_b = a.get("worker", {}), b.get("worker", {})
    if "cpu_s" in work_a and "cpu_s" in work_b:
        out["worker_cpu_pct"] = round(100 * (work_b["cpu_s"] - work_a["cpu_s"]) / dt, 1)
    if limiter_partition is not None:
        others = [c for p, c in enumerate(consumed) if p != limiter_partition]
        out["limiter_partition"] = limiter_partition
        out["limiter_partition_consumed"] = consumed[limiter_partition]
        out["limiter_partition_share"] = round(
            consumed[limiter_partition] / max(1, sum(consumed)), 3
        )
        out["other_partitions_mean_consumed"] = round(statistics.mean(others), 1)
        out["limiter_partition_max_lag"] = max_lag[limiter_partition]
        out["other_partitions_max_lag"] = max(
            (lag for p, lag in enumerate(max_lag) if p != limiter_partition), default=0
        )
    return out


def wait_until(ns: Namespace, monitor: Monitor, predicate: Any, deadline: float, what: str) -> bool:
    """Wait for predicate, printing progress every 10 s; False on the deadline."""
    next_report = time.time() + 10
    while True:
        if monitor.wait(predicate, min(deadline, next_report)):
            return True
        check_alive(ns)
        if time.time() >= deadline:
            print(f"  timed out waiting for {what}: {monitor.snapshot()}", flush=True)
            return False
        print(f"  ... {what}: {monitor.snapshot()}", flush=True)
        next_report = time.time() + 10
