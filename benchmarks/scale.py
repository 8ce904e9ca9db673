"""`make bench-scale`: how many instances one orchestrator holds, and what they cost.

The product's goal: "50,000 concurrent instances and 2,000,000 queued on one node;
queued and waiting instances cost disk, not memory." Two phases, each on a fresh
namespace with its own orchestrator process (so each phase's RSS is its own), run
as in benchmarks/run.py: the broker, an orchestrator and a worker as separate
`python -m replayflow.cli` processes; this process is the client and the observer.

  concurrent  N instances of scale-wait (one trivial step, then wait_for_event("go")).
              Started as fast as the client goes; "waiting" is counted from the
              EventAwaited facts on the history topic. Then "go" is sent to all of them
              and the completions are counted. Orchestrator RSS (now and peak) at each
              point.
  queued      Q instances of scale-queued under `--limit scale-queued=L`, started while
              NO worker runs: L are admitted and hold their slots, Q - L wait in the
              limiter's queue. Measured: the rate starts are queued (the instance side:
              WorkflowQueued facts; the limiter side: the orchestrator's committed
              offset on the limiter's partition passing the last AcquireSlot), RSS and
              store size with Q queued. Then the worker starts and the queue drains:
              admissions/s (from WorkflowAdmitted timestamps), the time an instance
              holds its slot, and per-partition consumption and lag of the commands
              topic. Every AcquireSlot / ReleaseSlot goes to the ONE partition of the
              limiter key, so that partition is watched apart from the others.

The observer reads history, completions and the limiter's commands partition with a
plain consumer (no group), filters on the 8-byte schema fingerprint of each record
and decodes only the facts it counts. The orchestrator's committed offsets (they are
in its transactions) and the partitions' end offsets come from the admin API.

Prints the figures and writes them as JSON (benchmarks/results/scale.json).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from confluent_kafka import (  # noqa: E402
    OFFSET_BEGINNING,
    Consumer,
    ConsumerGroupTopicPartitions,
    IsolationLevel,
    Producer,
    TopicPartition,
)
from confluent_kafka.admin import AdminClient, OffsetSpec  # noqa: E402

from replayflow import codec  # noqa: E402
from replayflow.client import Client  # noqa: E402
from replayflow.core.decide import limiter_key  # noqa: E402
from replayflow.core.messages import SendEvent  # noqa: E402
from replayflow.kafka.config import (  # noqa: E402
    consumer_config,
    group_name,
    producer_config,
)
from replayflow.kafka.partition import murmur2_partition  # noqa: E402
from replayflow.settings import Settings  # noqa: E402
from replayflow.topics import Topics, apply_topics, load_topics  # noqa: E402

WAIT_WORKFLOW = "scale-wait"
QUEUED_WORKFLOW = "scale-queued"
NOOP_WORKFLOW = "scale-noop"
MODULE = "benchmarks.scale_workload"
CHUNK = 1000
TICK = os.sysconf("SC_CLK_TCK")

# Facts the observer decodes (everything else on history is only skipped).
DECODED = ("EventAwaited", "WorkflowQueued", "WorkflowAdmitted", "WorkflowCompleted")
SLOT_COMMANDS = ("AcquireSlot", "ReleaseSlot")


def _fingerprints(names: tuple[str, ...]) -> dict[bytes, str]:
    found = {}
    for name in names:
        for version in codec.default_codec().versions(name):
            found[codec.fingerprint_of(name, version)] = name
    return found


# -- the processes under test ----------------------------------------------------------


def proc_status(pid: int) -> dict[str, float]:
    """VmRSS and VmHWM (peak RSS) in MB, and CPU seconds used so far."""
    out: dict[str, float] = {}
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(("VmRSS:", "VmHWM:")):
                out[line.split(":")[0]] = round(int(line.split()[1]) / 1024, 1)
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        out["cpu_s"] = (int(fields[11]) + int(fields[12])) / TICK
    except (OSError, IndexError, ValueError):
        pass
    return out


def dir_mb(path: Path) -> float:
    total = 0
    for root, _, files in os.walk(path):
        for name in files:
            with contextlib.suppress(OSError):
                total += os.stat(os.path.join(root, name)).st_size
    return round(total / 2**20, 1)


class Process:
    """One `replayflow` child process, stopped by its pid."""

    def __init__(self, name: str, args: list[str], env: dict[str, str], logs: Path) -> None:
        self.name = name
        self._log = open(logs / f"{name}.log", "w")  # noqa: SIM115 - closed in stop()
        self.popen = subprocess.Popen(
            [sys.executable, "-m", "replayflow.cli", *args],
            env=env,
            cwd=ROOT,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        self.started = time.time()

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def status(self) -> dict[str, float]:
        return proc_status(self.pid)

    def stop(self) -> None:
        if self.popen.poll() is None:
            self.popen.terminate()
            try:
                self.popen.wait(30)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(10)
        self._log.close()


class Namespace:
    """A fresh namespace with its topics, data folder and child processes."""

    def __init__(self, base: Settings, partitions: int, label: str, keep_data: bool) -> None:
        self.settings = Settings(
            bootstrap=base.bootstrap,
            namespace=f"scale{uuid.uuid4().hex[:8]}{label}",
            partitions=partitions,
        )
        self.topics = Topics(self.settings)
        print(f"[{label}] namespace {self.settings.namespace}:", end=" ", flush=True)
        print(apply_topics(self.settings.bootstrap, load_topics(self.settings)).summary())
        self.data_dir = Path(tempfile.mkdtemp(prefix=f"replayflow-scale-{label}-"))
        self.logs = self.data_dir / "logs"
        self.logs.mkdir()
        self.keep_data = keep_data
        self.env = dict(
            os.environ,
            KAFKA_BOOTSTRAP=self.settings.bootstrap,
            REPLAYFLOW_NAMESPACE=self.settings.namespace,
            REPLAYFLOW_DATA=str(self.data_dir / "stores"),
            # The checkout this script is in first: the processes run its replayflow.
            PYTHONPATH=os.pathsep.join(
                p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p
            ),
        )
        self.processes: list[Process] = []

    def start_orchestrator(self, limits: list[str]) -> Process:
        args = ["orchestrator", "-m", MODULE, "--id", "scale-orchestrator"]
        for limit in limits:
            args += ["--limit", limit]
        return self._start("orchestrator", args)

    def start_worker(self, concurrency: int) -> Process:
        return self._start("worker", ["worker", "-m", MODULE, "--concurrency", str(concurrency)])

    def _start(self, name: str, args: list[str]) -> Process:
        process = Process(name, args, self.env, self.logs)
        self.processes.append(process)
        return process

    def stores_mb(self) -> float:
        return dir_mb(self.data_dir / "stores")

    def close(self) -> None:
        for process in reversed(self.processes):
            process.stop()
        if self.keep_data:
            print(f"data and logs kept in {self.data_dir}")
        else:
            shutil.rmtree(self.data_dir, ignore_errors=True)


# -- observing ---------------------------------------------------------------------------


class Monitor(threading.Thread):
    """Counts facts on history, completions on completions and, for the queued phase,
    the slot commands on the limiter's partition of the commands topic."""

    def __init__(self, ns: Namespace, limiter_partition: int | None = None) -> None:
        super().__init__(name="scale-monitor", daemon=True)
        partitions = ns.settings.partitions or 12
        self._consumer = Consumer(
            consumer_config(ns.settings, None, **{"group.id": f"scale-monitor-{uuid.uuid4().hex}"})
        )
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
        self._admin = AdminClient({"bootstrap.servers": ns.settings.bootstrap})
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


# -- driving -----------------------------------------------------------------------------


def start_all(client: Client, workflow: str, ids: list[str]) -> float:
    """Start every id (input = its index), in chunks; returns starts per second."""
    began = time.time()
    for chunk in range(0, len(ids), CHUNK):
        batch = ids[chunk : chunk + CHUNK]
        client.start_many([(workflow, chunk + i, iid) for i, iid in enumerate(batch)])
    return len(ids) / max(1e-9, time.time() - began)


def send_go(settings: Settings, topic: str, ids: list[str]) -> float:
    """Send the event "go" to every id through one producer, flushed once (a
    client.send_event() flushes per call); returns events per second."""
    producer = Producer(producer_config(settings))
    producer.list_topics(topic, timeout=30)  # metadata first: not part of the rate
    began = time.time()
    for i, iid in enumerate(ids):
        value = codec.encode(SendEvent(instance_id=iid, name="go", payload="true"))
        while True:
            try:
                producer.produce(topic, key=iid.encode(), value=value)
                break
            except BufferError:
                producer.poll(0.05)
        if i % 1000 == 0:
            producer.poll(0)
    producer.flush(60)
    return len(ids) / max(1e-9, time.time() - began)


def warm_up(client: Client, monitor: Monitor, timeout: float) -> float:
    """A step-less instance through the orchestrator: its partitions are assigned."""
    began = time.time()
    client.start(NOOP_WORKFLOW, 0, id=f"warmup-{uuid.uuid4().hex}")
    if not monitor.wait(lambda: monitor.completed(NOOP_WORKFLOW) >= 1, began + timeout):
        raise RuntimeError("the warm-up instance did not complete: see the orchestrator log")
    return time.time() - began


def rss(process: Process) -> dict[str, float]:
    status = process.status()
    return {
        "rss_mb": status.get("VmRSS", float("nan")),
        "peak_rss_mb": status.get("VmHWM", float("nan")),
    }


def check_alive(ns: Namespace) -> None:
    for process in ns.processes:
        if not process.alive():
            raise RuntimeError(
                f"the {process.name} exited ({process.popen.returncode}): see {ns.logs}"
            )


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


def ms_to_s(ms: int) -> float:
    return ms / 1000


# -- phase 1: concurrent waiting instances ----------------------------------------------


def run_concurrent(args: argparse.Namespace, base: Settings) -> dict[str, Any]:
    n = args.n
    ns = Namespace(base, args.partitions, "c", args.keep_data)
    monitor = Monitor(ns)
    result: dict[str, Any] = {"instances": n, "namespace": ns.settings.namespace}
    sampler: Sampler | None = None
    try:
        orchestrator = ns.start_orchestrator([])
        ns.start_worker(args.worker_concurrency)
        monitor.start()
        sampler = Sampler(ns, monitor, args.sample_interval)
        sampler.start()
        deadline = time.time() + args.phase_timeout
        with Client(ns.settings, watch_completions=False, confirm=False) as client:
            result["warm_up_s"] = round(warm_up(client, monitor, 120), 2)
            result["rss_idle"] = rss(orchestrator)
            ids = [f"c-{i:07d}" for i in range(n)]
            print(f"[concurrent] starting {n} instances of {WAIT_WORKFLOW} ...", flush=True)
            t0 = time.time()
            result["client_start_rate_per_s"] = round(start_all(client, WAIT_WORKFLOW, ids), 1)
            ok = wait_until(
                ns, monitor, lambda: monitor.counts["EventAwaited"] >= n, deadline, "all waiting"
            )
            t_waiting = time.time()
            result["all_waiting"] = ok
            result["waiting_reached"] = monitor.counts["EventAwaited"]
            last = ms_to_s(monitor.last_at.get("EventAwaited", 0))
            result["time_to_all_waiting_s"] = round(last - t0, 2)
            result["instances_to_waiting_per_s"] = round(
                monitor.counts["EventAwaited"] / max(1e-9, last - t0), 1
            )
            result["rss_all_waiting"] = rss(orchestrator)
            result["store_mb_all_waiting"] = ns.stores_mb()
            time.sleep(args.settle)
            result["rss_all_waiting_settled"] = rss(orchestrator)
            result["start_window"] = partition_window(sampler, t0, t_waiting, None)
            print(json.dumps({k: result[k] for k in result if k != "start_window"}), flush=True)
            if not ok:
                return result

            print(f"[concurrent] sending 'go' to {n} instances ...", flush=True)
            t1 = time.time()
            result["event_send_rate_per_s"] = round(
                send_go(ns.settings, ns.topics.commands, ids), 1
            )
            ok = wait_until(
                ns,
                monitor,
                lambda: monitor.completed(WAIT_WORKFLOW) >= n,
                max(deadline, t1 + args.phase_timeout / 2),
                "all completed",
            )
            t_done = time.time()
            completed_at = [monitor.completed_at[i] for i in ids if i in monitor.completed_at]
            result["all_completed"] = ok
            result["completions"] = {
                k: v for k, v in monitor.completions.items() if k.startswith(WAIT_WORKFLOW)
            }
            if completed_at:
                result["time_to_all_completed_s"] = round(ms_to_s(max(completed_at)) - t1, 2)
                result["completions_per_s"] = round(
                    len(completed_at) / max(1e-9, ms_to_s(max(completed_at)) - t1), 1
                )
            result["rss_after_completed"] = rss(orchestrator)
            result["store_mb_after"] = ns.stores_mb()
            time.sleep(args.settle)
            result["rss_after_completed_settled"] = rss(orchestrator)
            result["event_window"] = partition_window(sampler, t1, t_done, None)
            print(
                json.dumps(
                    {k: v for k, v in result.items() if k.startswith(("event", "all_", "rss_a"))}
                    | {"time_to_all_completed_s": result.get("time_to_all_completed_s")}
                ),
                flush=True,
            )
    finally:
        try:
            if sampler is not None:
                sampler.close()
                result["timeline"] = _compact(sampler.samples)
            monitor.close()
        finally:
            ns.close()  # whatever happened above: the processes stop
    return result


# -- phase 2: queued instances and the drain --------------------------------------------


def run_queued(args: argparse.Namespace, base: Settings) -> dict[str, Any]:
    q, limit = args.q, args.limit
    ns = Namespace(base, args.partitions, "q", args.keep_data)
    partitions = ns.settings.partitions or 12
    limiter_partition = murmur2_partition(limiter_key(QUEUED_WORKFLOW).encode(), partitions)
    monitor = Monitor(ns, limiter_partition)
    result: dict[str, Any] = {
        "queued_starts": q,
        "limit": limit,
        "namespace": ns.settings.namespace,
        "limiter_key": limiter_key(QUEUED_WORKFLOW),
        "limiter_partition": limiter_partition,
    }
    sampler: Sampler | None = None
    try:
        orchestrator = ns.start_orchestrator([f"{QUEUED_WORKFLOW}={limit}"])
        monitor.start()
        sampler = Sampler(ns, monitor, args.sample_interval)
        sampler.start()
        deadline = time.time() + args.phase_timeout
        with Client(ns.settings, watch_completions=False, confirm=False) as client:
            result["warm_up_s"] = round(warm_up(client, monitor, 120), 2)
            result["rss_idle"] = rss(orchestrator)
            ids = [f"q-{i:07d}" for i in range(q)]
            print(
                f"[queued] starting {q} instances of {QUEUED_WORKFLOW} (limit {limit}), "
                "no worker running ...",
                flush=True,
            )
            t0 = time.time()
            result["client_start_rate_per_s"] = round(start_all(client, QUEUED_WORKFLOW, ids), 1)

            def all_queued() -> bool:
                return monitor.counts["WorkflowQueued"] >= q and monitor.counts["AcquireSlot"] >= q

            ok = wait_until(ns, monitor, all_queued, deadline, "all queued")
            t_queued_facts = time.time()
            # The limiter has queued them once the orchestrator's committed offset on its
            # partition is past the last AcquireSlot.
            enqueued = False
            while ok and time.time() < deadline:
                committed, _ = sampler.offsets.read()
                if committed[limiter_partition] > monitor.last_acquire_offset:
                    enqueued = True
                    break
                time.sleep(0.25)
            t_enqueued = time.time()
            result["all_queued"] = ok and enqueued
            result["queued_facts"] = monitor.counts["WorkflowQueued"]
            result["acquire_slot_commands"] = monitor.counts["AcquireSlot"]
            result["admitted_while_no_worker"] = monitor.counts["WorkflowAdmitted"]
            last_queued = ms_to_s(monitor.last_at.get("WorkflowQueued", 0))
            result["time_to_all_queued_facts_s"] = round(last_queued - t0, 2)
            result["queued_facts_per_s"] = round(q / max(1e-9, last_queued - t0), 1)
            result["time_to_all_enqueued_in_limiter_s"] = round(t_enqueued - t0, 2)
            result["limiter_enqueue_per_s"] = round(q / max(1e-9, t_enqueued - t0), 1)
            result["limiter_lagged_behind_facts_s"] = round(t_enqueued - t_queued_facts, 2)
            result["rss_all_queued"] = rss(orchestrator)
            result["store_mb_all_queued"] = ns.stores_mb()
            time.sleep(args.settle)
            result["rss_all_queued_settled"] = rss(orchestrator)
            result["enqueue_window"] = partition_window(sampler, t0, t_enqueued, limiter_partition)
            print(
                json.dumps({k: v for k, v in result.items() if k != "enqueue_window"}), flush=True
            )
            print(json.dumps({"enqueue_window": result["enqueue_window"]}), flush=True)
            if not result["all_queued"]:
                return result

            print("[queued] starting the worker: the queue drains ...", flush=True)
            t_worker = time.time()
            ns.start_worker(args.worker_concurrency)
            drain_deadline = t_worker + (args.drain_seconds or args.phase_timeout)
            drained = wait_until(
                ns,
                monitor,
                lambda: monitor.completed(QUEUED_WORKFLOW) >= q,
                drain_deadline,
                "drain",
            )
            t_end = time.time()
            result["drained_completely"] = drained
            result["rss_after_drain"] = rss(orchestrator)
            result["store_mb_after_drain"] = ns.stores_mb()
            with monitor.lock:
                admitted = dict(monitor.admitted_at)
                completed = dict(monitor.completed_at)
            result["drain"] = drain_figures(admitted, completed, t_worker, limit, q)
            result["drain_window"] = partition_window(
                sampler, t_worker + 10, t_end, limiter_partition
            )
            print(json.dumps({"drain": result["drain"]}), flush=True)
            print(json.dumps({"drain_window": result["drain_window"]}), flush=True)
    finally:
        try:
            if sampler is not None:
                sampler.close()
                result["timeline"] = _compact(sampler.samples)
            monitor.close()
            for process in ns.processes:
                process.stop()
            with contextlib.suppress(Exception):
                result["queue_head_probe"] = probe_queue_head(ns, limiter_partition)
                print(json.dumps({"queue_head_probe": result["queue_head_probe"]}), flush=True)
        finally:
            ns.close()  # whatever happened above: the processes stop
    return result


def probe_queue_head(ns: Namespace, partition: int) -> dict[str, Any]:
    """With the orchestrator stopped: how long finding the head of the limiter's queue
    takes in its store as the run left it (what each admission does: a scan from the
    queue's prefix), against a seek straight to the head ticket."""
    from replayflow.store import keys, serde
    from replayflow.store.partition import PartitionStore

    stores = list((ns.data_dir / "stores").glob(f"*/*/p{partition}"))
    if not stores:
        return {}
    copy = ns.data_dir / "probe"
    shutil.copytree(stores[0], copy)
    store = PartitionStore(copy, partition)
    try:
        limiter = limiter_key(QUEUED_WORKFLOW)
        raw = store.get(keys.limiter(limiter))
        if raw is None:
            return {}
        state = serde.load_limiter(raw)
        head_ticket = state.next_ticket - state.queued
        prefix = keys.queue_prefix(limiter)

        def timed(start: bytes) -> float:
            best = float("inf")
            for _ in range(5):
                began = time.perf_counter()
                rows = store.scan(start, end=prefix + b"\xff")
                next(rows, None)
                rows.close()
                best = min(best, time.perf_counter() - began)
            return round(best * 1000, 3)

        return {
            "dequeued_so_far": head_ticket - 1,
            "still_queued": state.queued,
            "head_from_prefix_ms": timed(prefix),
            "head_by_seek_to_ticket_ms": timed(keys.queue_entry(limiter, head_ticket)),
        }
    finally:
        store.close()


def drain_figures(
    admitted: dict[str, int], completed: dict[str, int], t_worker: float, limit: int, q: int
) -> dict[str, Any]:
    """Admissions per second after the worker started (orchestrator timestamps), per
    10-second bucket, and how long instances hold their slots."""
    since = int(t_worker * 1000)
    times = sorted(at for at in admitted.values() if at >= since)
    out: dict[str, Any] = {"admitted_after_worker_start": len(times)}
    if len(times) < 2:
        return out
    first, last = times[0], times[-1]
    out["first_admission_after_worker_start_s"] = round((first - since) / 1000, 2)
    # The steady rate: skip the first 5 s after the first admission (the worker's
    # group join and the backlog of the slots held while it was away).
    steady_from = first + 5000
    steady = [t for t in times if t >= steady_from]
    if len(steady) >= 2 and last > steady_from:
        out["admissions_per_s"] = round(len(steady) / ((last - steady_from) / 1000), 1)
    else:
        out["admissions_per_s"] = round(len(times) / max(1e-9, (last - first) / 1000), 1)
    buckets: Counter[int] = Counter((t - first) // 10_000 for t in times)
    # The last bucket may be short: divide by the seconds it covers.
    span = {b: min(10.0, (last - first - b * 10_000) / 1000) or 1.0 for b in buckets}
    out["admissions_per_s_by_10s"] = [
        round(buckets.get(b, 0) / span.get(b, 10.0), 1) for b in range(max(buckets) + 1)
    ]
    # Per bucket: how long the instances admitted then held their slot, and the slot
    # cycle it implies (limit / rate): the rest is the release -> next grant path.
    held: dict[int, list[int]] = {}
    for iid, at in admitted.items():
        if at >= first and iid in completed:
            held.setdefault((at - first) // 10_000, []).append(completed[iid] - at)
    out["slot_hold_ms_mean_by_10s"] = [
        round(statistics.mean(held[b]), 1) if b in held else None for b in range(max(buckets) + 1)
    ]
    out["slot_idle_ms_by_10s"] = [
        round(1000 * limit / (buckets[b] / span[b]) - statistics.mean(held[b]), 1)
        if b in held and buckets.get(b)
        else None
        for b in range(max(buckets) + 1)
    ]
    holds = sorted(
        (completed[i] - a) for i, a in admitted.items() if a >= steady_from and i in completed
    )
    if holds:
        out["slot_hold_ms_p50"] = holds[len(holds) // 2]
        out["slot_hold_ms_p99"] = holds[min(len(holds) - 1, int(0.99 * len(holds)))]
        out["slot_hold_ms_mean"] = round(statistics.mean(holds), 1)
        # Little's law: with every slot busy, one slot turns over in limit / rate
        # seconds; what is not spent admitted->completed is spent between an
        # instance's end and the next admission (ReleaseSlot -> limiter -> GrantSlot).
        cycle_ms = 1000 * limit / out["admissions_per_s"]
        out["slot_cycle_ms"] = round(cycle_ms, 1)
        out["slot_idle_ms_release_to_next_grant"] = round(cycle_ms - out["slot_hold_ms_mean"], 1)
    remaining = q - len(admitted)
    out["still_queued_at_end"] = max(0, remaining)
    return out


def _compact(samples: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The timeline without the per-partition offset lists (kept: the sums and lags)."""
    rows = []
    for row in samples:
        row = dict(row)
        committed, end = row.pop("committed", None), row.pop("end", None)
        if committed is not None and end is not None:
            row["lag"] = [e - c for c, e in zip(committed, end, strict=True)]
            row["committed_total"] = sum(committed)
        rows.append(row)
    return rows


def _queued_slope(queued: dict[str, Any]) -> tuple[float, float] | None:
    """RSS MB per queued instance over the last 40 % of the enqueue (past the states
    cache's bound when Q is large), and the RSS at its end."""
    q = queued.get("queued_starts", 0)
    rows = [
        (r["counts"].get("WorkflowQueued", 0), r["orchestrator"]["VmRSS"])
        for r in queued.get("timeline", [])
        if "orchestrator" in r and "VmRSS" in r["orchestrator"]
    ]
    before = [r for r in rows if r[0] <= 0.6 * q]
    after = [r for r in rows if r[0] >= q]
    if not q or not before or not after or after[0][0] <= before[-1][0]:
        return None
    (q0, m0), (q1, m1) = before[-1], after[0]
    return (m1 - m0) / (q1 - q0), m1


def extrapolate(queued: dict[str, Any], target: int) -> dict[str, Any]:
    out: dict[str, Any] = {"target_queued": target}
    q = queued.get("queued_starts", 0)
    slope = _queued_slope(queued)
    if slope is not None and target > q:
        per, at_q = slope
        out["rss_kb_per_queued_last_40pct"] = round(per * 1024, 2)
        out["rss_mb_at_target_by_last_slope"] = round(at_q + per * (target - q))
    if queued.get("limiter_enqueue_per_s"):
        out["enqueue_minutes"] = round(target / queued["limiter_enqueue_per_s"] / 60, 1)
    if queued.get("client_start_rate_per_s"):
        out["client_send_minutes"] = round(target / queued["client_start_rate_per_s"] / 60, 1)
    rate = queued.get("drain", {}).get("admissions_per_s")
    if rate:
        # A lower bound: the rate falls as the queue drains (admissions_per_s_by_10s).
        out["drain_hours_at_measured_mean_rate"] = round(target / rate / 3600, 2)
    idle = queued.get("rss_idle", {}).get("rss_mb")
    full = queued.get("rss_all_queued", {}).get("rss_mb")
    if idle and full and q:
        per = (full - idle) / q
        out["rss_kb_per_queued_overall"] = round(per * 1024, 2)
        out["rss_mb_at_target_if_linear_overall"] = round(idle + per * target)
    store = queued.get("store_mb_all_queued")
    if store and q:
        out["store_mb_at_target_if_linear"] = round(store / q * target)
    return out


def engine_version() -> dict[str, Any]:
    """Which replayflow the processes run: its path, and the checkout's commit."""
    import replayflow

    def git(*cmd: str) -> str:
        try:
            return subprocess.run(
                ["git", *cmd], cwd=ROOT, capture_output=True, text=True, timeout=10
            ).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            return ""

    commit = git("rev-parse", "HEAD")
    if not commit and (ROOT / "COMMIT").exists():  # an exported snapshot of a commit
        commit = (ROOT / "COMMIT").read_text().strip()
    return {
        "replayflow": str(Path(replayflow.__file__).parent),
        "commit": commit,
        "uncommitted_engine_changes": bool(git("status", "--porcelain", "src")),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("-n", type=int, default=50_000, help="concurrent waiting instances")
    parser.add_argument("-q", type=int, default=200_000, help="queued starts")
    parser.add_argument("--limit", type=int, default=100, help="concurrency limit, queued phase")
    parser.add_argument("--phases", default="concurrent,queued", help="which phases to run")
    parser.add_argument(
        "--drain-seconds",
        type=float,
        default=120.0,
        help="measure the drain this long, then stop (0: until the queue is empty)",
    )
    parser.add_argument("--phase-timeout", type=float, default=540.0, help="seconds per wait")
    parser.add_argument("--partitions", type=int, default=12)
    parser.add_argument("--worker-concurrency", type=int, default=1000)
    parser.add_argument("--sample-interval", type=float, default=1.0)
    parser.add_argument("--settle", type=float, default=3.0, help="seconds before a 2nd RSS read")
    parser.add_argument("--target-queued", type=int, default=2_000_000, help="to extrapolate to")
    parser.add_argument("--keep-data", action="store_true", help="keep stores and logs")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks/results/scale.json")
    args = parser.parse_args()

    # `timeout` and Ctrl-C: stop the child processes by their pids on the way out.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))

    base = Settings.from_env()
    phases = [p.strip() for p in args.phases.split(",") if p.strip()]
    results: dict[str, Any] = {
        "machine": {
            "cpus": os.cpu_count(),
            "load_avg_at_start": os.getloadavg(),
            "mem_total_mb": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**20),
        },
        "partitions": args.partitions,
        "engine": engine_version(),
        "args": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
    }
    began = time.time()
    try:
        if "concurrent" in phases:
            t = time.time()
            results["concurrent"] = run_concurrent(args, base)
            results["concurrent"]["phase_s"] = round(time.time() - t, 1)
        if "queued" in phases:
            t = time.time()
            results["queued"] = run_queued(args, base)
            results["queued"]["phase_s"] = round(time.time() - t, 1)
            results["extrapolation"] = extrapolate(results["queued"], args.target_queued)
            print(json.dumps({"extrapolation": results["extrapolation"]}), flush=True)
    finally:
        results["machine"]["load_avg_at_end"] = os.getloadavg()
        results["total_s"] = round(time.time() - began, 1)
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(results, indent=2) + "\n")
        print(f"written to {args.out}")


if __name__ == "__main__":
    main()
