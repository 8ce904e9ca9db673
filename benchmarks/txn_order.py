"""`make bench-txn`: back-to-back transactions with the orchestrator's producer settings,
the records sent before the offsets (the orchestrator's order until this benchmark) and
after them (its order now).

Each transaction carries four records on a topic of 12 partitions and the offset of one
input partition, with `--work-ms` of Python work (the fold's place), through the
orchestrator's own TransactionalProducer: records first is begin, work, records,
offsets, commit; offsets first is begin and offsets started on the producer's helper
thread, work meanwhile, records, commit (processors/orchestrator.py). After a warm-up
of both, the two orders alternate, `--rounds` times; p50/p90/p99 of the transaction's
time (begin to commit returned) are printed for each and written to
benchmarks/results/txn_order.json. The check: offsets first has the lower p99 in the
medians over rounds, and a p50 within 1 ms of records first.

Why the order matters: a first record for a partition makes librdkafka send
AddPartitionsToTxn; when the previous transaction's commit markers are still being
written the coordinator answers CONCURRENT_TRANSACTIONS, and librdkafka tries that
request again only after a fixed 20 ms. AddOffsetsToTxn is tried again after
retry.backoff.ms (1 ms). Offsets first, the partitions are added once the coordinator
is ready for them.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from confluent_kafka import TopicPartition  # noqa: E402

from benchmarks.relay import create_topics  # noqa: E402
from replayflow.kafka import clients  # noqa: E402
from replayflow.kafka.config import TRANSACTION_RETRY_BACKOFF_MS  # noqa: E402
from replayflow.kafka.membership import close_consumer  # noqa: E402
from replayflow.kafka.transactional import TransactionalProducer  # noqa: E402
from replayflow.settings import Settings  # noqa: E402

ORDERS = ("records first", "offsets first")


def _work(ms: float) -> None:
    end = time.perf_counter() + ms / 1000
    while time.perf_counter() < end:
        pass


def run_order(
    settings: Settings, order: str, output: str, source: str, group: Any, n: int, work_ms: float
) -> dict[str, float]:
    """`n` transactions through the orchestrator's own TransactionalProducer."""
    name = f"txn-order-{uuid.uuid4().hex[:8]}"
    producer = TransactionalProducer(clients.transactional_producer(settings, name), name)
    took = []
    for i in range(n):
        began = time.perf_counter()
        offsets = [TopicPartition(source, 0, i + 1)]
        if order == "offsets first":
            pending = producer.begin_with_offsets(offsets, group)
            _work(work_ms)
            pending.wait()
        else:
            producer.begin()
            _work(work_ms)
        for k in range(4):
            producer.producer.produce(output, b"x", f"{i}-{k}".encode())
        if order == "records first":
            producer.send_offsets(offsets, group)
        producer.commit()
        took.append((time.perf_counter() - began) * 1000)
    producer.close()
    took.sort()
    quantiles = (("p50", 0.5), ("p90", 0.9), ("p99", 0.99))
    return {q: round(took[int(len(took) * f)], 2) for q, f in quantiles}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("-n", type=int, default=300, help="transactions per order and round")
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--warmup", type=int, default=600, help="transactions per order first")
    parser.add_argument("--work-ms", type=float, default=1.0)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks/results/txn_order.json")
    args = parser.parse_args()
    base = Settings.from_env()
    settings = base.replace(namespace=f"bench-txn-{uuid.uuid4().hex[:6]}")
    output, source = settings.topic_name("out"), settings.topic_name("in")
    create_topics(settings, [output], 12)
    create_topics(settings, [source], 1)
    # The offsets are sent for a consumer group: any group metadata will do.
    consumer = clients.consumer(settings, "txn-order")
    consumer.assign([TopicPartition(source, 0, 0)])
    consumer.poll(0.5)
    group = consumer.consumer_group_metadata()
    rounds: dict[str, list[dict[str, float]]] = {order: [] for order in ORDERS}
    try:
        # A broker just started compiles its hot paths for a minute: warm it first.
        for order in ORDERS:
            run_order(settings, order, output, source, group, args.warmup, args.work_ms)
        for r in range(args.rounds):
            for order in ORDERS if r % 2 == 0 else reversed(ORDERS):
                figures = run_order(settings, order, output, source, group, args.n, args.work_ms)
                rounds[order].append(figures)
                print(f"round {r + 1}, {order}: {figures}", flush=True)
    finally:
        close_consumer(consumer)
    medians = {
        order: {q: statistics.median(f[q] for f in rounds[order]) for q in ("p50", "p90", "p99")}
        for order in ORDERS
    }
    first, now = medians["records first"], medians["offsets first"]
    checks = {
        "offsets first: lower p99": now["p99"] < first["p99"],
        "offsets first: p50 within 1 ms": now["p50"] <= first["p50"] + 1.0,
    }
    for order in ORDERS:
        print(f"median over rounds, {order}: {medians[order]}")
    for name, ok in checks.items():
        print(f"  [{'met    ' if ok else 'NOT met'}] {name}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(
        json.dumps(
            {
                "command": " ".join(["benchmarks/txn_order.py", *sys.argv[1:]]),
                "retry_backoff_ms": TRANSACTION_RETRY_BACKOFF_MS,
                "work_ms": args.work_ms,
                "rounds": rounds,
                "medians": medians,
                "checks": checks,
            },
            indent=2,
        )
        + "\n"
    )
    print(f"written to {args.out}")
    if not all(checks.values()):
        raise SystemExit(1)


if __name__ == "__main__":
    main()
