"""`make bench-kafka-triggers`: a Kafka topic trigger routing records to starts.

Goal (issue "Triggers"): >= 10,000 records/s routed to StartWorkflow commands on this
machine, with its lag. On a fresh namespace (topics applied, a source topic of
--partitions partitions), one trigger (JSON, id from a field, the whole value as
input) runs a TriggerProcessor in a thread of this process, exactly as `replayflow
trigger` runs it: read_committed, one transaction per batch with the source offsets.

  drain   --records records are on the source topic before the trigger starts; the
          rate is records / time from the first committed batch to the last (the
          group join before it is reported apart).
  steady  records arrive at --rate per second for --seconds while the trigger runs;
          lag = end offset of the source minus the group's committed offset, summed
          over partitions, sampled every 100 ms (p50, p99, max), and the time from the
          last record produced to lag 0.

Then the commands topic is read (read_committed): one StartWorkflow per record, each
instance id once. Prints the figures, writes benchmarks/results/triggers_kafka.json,
and exits 1 when a check fails.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from confluent_kafka import TopicPartition  # noqa: E402
from confluent_kafka.admin import NewTopic  # noqa: E402

import replayflow as rf  # noqa: E402
from replayflow.kafka import clients  # noqa: E402
from replayflow.kafka.config import group_name  # noqa: E402
from replayflow.kafka.reading import read_to_end  # noqa: E402
from replayflow.processors.trigger import TriggerProcessor, group_role  # noqa: E402
from replayflow.processors.trigger_mapping import compile_trigger  # noqa: E402
from replayflow.settings import Settings  # noqa: E402
from replayflow.topics import Topics, apply_topics, load_topics  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results" / "triggers_kafka.json"
GOAL_RECORDS_PER_S = 10_000
TRIGGER = "bench-orders"


def produce(settings: Settings, topic: str, first: int, count: int, producer: Any) -> None:
    for i in range(first, first + count):
        value = json.dumps({"orderId": f"order-{i:07d}", "total": i % 997, "lines": [1, 2]})
        while True:
            try:
                producer.produce(topic, value=value.encode(), key=str(i).encode())
                break
            except BufferError:
                producer.poll(0.01)
    producer.poll(0)


class LagProbe:
    """Committed offsets of the trigger's group against the source's end offsets."""

    def __init__(self, settings: Settings, topic: str, partitions: int) -> None:
        group = group_name(settings, group_role(TRIGGER))
        self.consumer = clients.consumer(settings, None, **{"group.id": group})
        self.tps = [TopicPartition(topic, p) for p in range(partitions)]

    def lag(self) -> int:
        committed = {
            tp.partition: max(tp.offset, 0) for tp in self.consumer.committed(self.tps, 10)
        }
        total = 0
        for tp in self.tps:
            _, high = self.consumer.get_watermark_offsets(tp, timeout=10, cached=False)
            total += max(0, high - committed[tp.partition])
        return total

    def close(self) -> None:
        self.consumer.close()


def percentile(values: list[int], q: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return float(ordered[min(len(ordered) - 1, int(q * len(ordered)))])


def count_commands(settings: Settings) -> tuple[int, int]:
    """(records, distinct keys) on the commands topic, read_committed."""
    topic = Topics(settings).commands
    consumer = clients.consumer(settings, None)
    try:
        partitions = sorted(consumer.list_topics(topic, timeout=30).topics[topic].partitions)
        keys: set[bytes] = set()
        total = 0
        for batch in read_to_end(consumer, topic, partitions, timeout=60):
            total += len(batch)
            keys.update(m.key() for m in batch)
        return total, len(keys)
    finally:
        consumer.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--rate", type=int, default=8_000, help="steady phase records/s")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--partitions", type=int, default=12)
    parser.add_argument("--batch-size", type=int, default=2000)
    args = parser.parse_args()

    bootstrap = os.environ.get("KAFKA_BOOTSTRAP", "127.0.0.1:9092")
    namespace = "bench-trig-" + uuid.uuid4().hex[:8]
    settings = Settings(bootstrap=bootstrap, namespace=namespace, partitions=args.partitions)
    apply_topics(settings.bootstrap, load_topics(settings))
    source = settings.topic_name("orders")
    admin = clients.admin(settings)
    for future in admin.create_topics([NewTopic(source, args.partitions, 1)]).values():
        future.result()
    spec = compile_trigger(
        rf.KafkaTrigger(topic="orders", workflow="checkout", id=".orderId", name=TRIGGER)
    )
    try:
        return run(settings, source, spec, args)
    finally:
        topics = [t for t in admin.list_topics(timeout=10).topics if t.startswith(namespace + ".")]
        for future in admin.delete_topics(topics, operation_timeout=30).values():
            with contextlib.suppress(Exception):  # cleanup is best effort
                future.result()


def run(settings: Settings, source: str, spec: Any, args: argparse.Namespace) -> int:
    producer = clients.producer(settings)
    began = time.perf_counter()
    produce(settings, source, 0, args.records, producer)
    producer.flush(60)
    print(f"drain: {args.records:,} records on {source} in {time.perf_counter() - began:.1f} s")

    processor = TriggerProcessor(settings, spec, member_id="bench", batch_size=args.batch_size)
    thread = threading.Thread(target=processor.run, daemon=True)
    started = time.perf_counter()
    thread.start()
    first_batch = None
    while processor.stats.records < args.records:
        if first_batch is None and processor.stats.batches:
            first_batch = time.perf_counter()
        if not thread.is_alive():
            print("the trigger stopped", file=sys.stderr)
            return 1
        time.sleep(0.005)
    drained = time.perf_counter()
    first_batch = first_batch or started
    rate = args.records / max(drained - first_batch, 1e-9)
    print(
        f"drain: {rate:,.0f} records/s routed to starts "
        f"({args.records:,} in {drained - first_batch:.2f} s after the first commit; "
        f"{first_batch - started:.2f} s to join the group and commit the first batch; "
        f"{processor.stats.batches} transactions)"
    )

    # Steady: produce at --rate for --seconds in 20 ms slices, sampling the lag.
    probe = LagProbe(settings, source, args.partitions)
    lags: list[int] = []
    stop_sampling = threading.Event()

    def sample() -> None:
        while not stop_sampling.is_set():
            lags.append(probe.lag())
            stop_sampling.wait(0.1)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    steady_total = int(args.rate * args.seconds)
    slice_s = 0.02
    per_slice = max(1, int(args.rate * slice_s))
    produced = 0
    t0 = time.perf_counter()
    while produced < steady_total:
        count = min(per_slice, steady_total - produced)
        produce(settings, source, args.records + produced, count, producer)
        produced += count
        ahead = t0 + produced / args.rate - time.perf_counter()
        if ahead > 0:
            time.sleep(ahead)
    producer.flush(60)
    produced_at = time.perf_counter()
    total = args.records + steady_total
    while processor.stats.records < total:
        time.sleep(0.005)
    caught_up = time.perf_counter() - produced_at
    stop_sampling.set()
    sampler.join(5)
    processor.stop()
    thread.join(30)
    probe_lag = probe.lag()
    probe.close()
    achieved = steady_total / (produced_at - t0)

    commands, distinct = count_commands(settings)
    result = {
        "records": args.records,
        "partitions": args.partitions,
        "batch_size": args.batch_size,
        "drain_records_per_s": round(rate),
        "drain_seconds": round(drained - first_batch, 3),
        "join_and_first_commit_s": round(first_batch - started, 3),
        "steady_rate_target": args.rate,
        "steady_rate_achieved": round(achieved),
        "steady_seconds": args.seconds,
        "lag_p50": percentile(lags, 0.50),
        "lag_p99": percentile(lags, 0.99),
        "lag_max": max(lags) if lags else 0,
        "lag_samples": len(lags),
        "lag_mean": round(statistics.fmean(lags), 1) if lags else 0.0,
        "catch_up_after_last_record_s": round(caught_up, 3),
        "lag_at_end": probe_lag,
        "commands_written": commands,
        "distinct_instance_ids": distinct,
        "dead_letters": processor.stats.dead_letters,
        "aborts": processor.stats.aborts,
    }
    checks = {
        f"drain >= {GOAL_RECORDS_PER_S:,} records/s": rate >= GOAL_RECORDS_PER_S,
        "one start per record": commands == total and distinct == total,
        "steady lag p99 below one second of input": result["lag_p99"] < args.rate,
        "no dead letters, no aborts": processor.stats.dead_letters == 0
        and processor.stats.aborts == 0,
    }
    result["checks"] = checks
    print(
        f"steady: {achieved:,.0f} records/s in for {args.seconds:g} s; lag p50 "
        f"{result['lag_p50']:.0f}, p99 {result['lag_p99']:.0f}, max {result['lag_max']} "
        f"records ({len(lags)} samples); caught up {caught_up:.2f} s after the last record"
    )
    print(f"commands: {commands:,} written read_committed, {distinct:,} distinct instance ids")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    print(f"written to {RESULTS.relative_to(ROOT)}")
    failed = [name for name, ok in checks.items() if not ok]
    for name, ok in checks.items():
        print(f"  {'PASS' if ok else 'FAIL'}  {name}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
