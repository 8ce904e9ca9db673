"""`make bench-streams`: durable streams, end to end, on this machine.

An orchestrator and a worker run in child processes of their own, as deployed; a step
in the worker writes values to a stream and this process reads them with the Client,
as any caller would. Each
value carries the time it was written; the reader subtracts it from the time it got
the value (one clock: same machine).

  rate        values written at a fixed rate (default 1,000/s for 10 s): latency from
              write to reader, p50 / p95 / p99 / max. Goal: p99 <= 20 ms. Run `--runs`
              times (default 3); the goal is checked on the median p99.
  busy        the same while other instances on the stream's partition write and end
              (`--background`/s): the orchestrator then writes its markers to that
              partition in transactions, which a read_committed reader would wait behind.
  throughput  values written as fast as the step can: values/s through to the reader.

Before each rate run a bare confluent-kafka producer and consumer (benchmarks/
streams_bare.py) send the same values through the same topic: the floor under the
engine's figure. The machine's load average is printed with each run: on a shared
machine a busy CPU, not the code, sets the tail (the bare pair's tail grows with it).
Prints the figures, writes benchmarks/results/streams.json,
exits 1 when a goal fails.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import statistics
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import replayflow as rf  # noqa: E402
from benchmarks.streams_bare import bare_run  # noqa: E402
from replayflow.client import Client  # noqa: E402
from replayflow.core.definitions import Registry  # noqa: E402
from replayflow.kafka import clients  # noqa: E402
from replayflow.kafka.admin import topic_partitions  # noqa: E402
from replayflow.kafka.partition import murmur2_partition  # noqa: E402
from replayflow.processors.orchestrator import Orchestrator  # noqa: E402
from replayflow.processors.worker import Worker  # noqa: E402
from replayflow.settings import Settings  # noqa: E402
from replayflow.topics import Topics, apply_topics, load_topics  # noqa: E402

GOAL_P99_MS = 20.0


@rf.step(name="bench_stream_writer", timeout="10m")
def writer(count: int, rate: float | None) -> int:
    """Writes `count` values ({"i", "t"}: t = time written, ns), paced at `rate`/s."""
    stream = rf.current_step().stream("values")
    started = time.perf_counter()
    for i in range(count):
        if rate:
            due = started + i / rate
            while (left := due - time.perf_counter()) > 0:
                time.sleep(min(left, 0.0005) if left < 0.002 else left - 0.001)
        stream.write({"i": i, "t": time.time_ns()})
    stream.close()
    return count


@rf.workflow(name="bench-streams")
async def bench_streams(ctx: rf.Context, spec: dict[str, Any]) -> int:
    return int(await ctx.step("write", writer, spec["count"], spec.get("rate")))


@rf.step(name="bench_stream_chatter")
def chatter() -> int:
    stream = rf.current_step().stream("chatter")
    for i in range(5):
        stream.write(i)
    return 5


@rf.workflow(name="bench-streams-chatter")
async def bench_chatter(ctx: rf.Context) -> int:
    return int(await ctx.step("chat", chatter))


def serve(role: str, settings: Settings, stop: Any, ready: Any) -> None:
    """One engine process, as deployed: the orchestrator or the worker, until `stop`.
    (In one process, as `replayflow dev` runs them, the writer's thread would share the
    interpreter lock with the orchestrator's folding.)"""
    registry = Registry.of(writer, bench_streams, chatter, bench_chatter)
    process: Orchestrator | Worker = (
        Orchestrator(settings, registry) if role == "orchestrator" else Worker(settings, registry)
    )
    runner = threading.Thread(target=process.run, daemon=True)
    runner.start()
    ready.set()
    stop.wait()
    process.stop()
    runner.join(30)


def read(
    client: Client, instance_id: str, count: int, arrivals: dict[int, int] | None = None
) -> tuple[list[float], float]:
    """Latencies (ms) of every value, and the seconds from the first to the last;
    `arrivals` gets each value's arrival (ns) by its index."""
    latencies: list[float] = []
    first = last = 0.0
    for item in client.stream(instance_id, "values", idle_timeout=120):
        if item.kind != "value":
            continue
        now = time.time_ns()
        latencies.append((now - item.value["t"]) / 1e6)
        if arrivals is not None:
            arrivals[item.value["i"]] = now
        last = time.monotonic()
        if len(latencies) == 1:
            first = last
    if len(latencies) != count:
        raise SystemExit(f"read {len(latencies)} values of {count}")
    return latencies, last - first


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rate", type=float, default=1000.0, help="values/s of the rate run")
    parser.add_argument("--seconds", type=float, default=10.0, help="length of the rate run")
    parser.add_argument("--runs", type=int, default=3, help="rate runs (the median counts)")
    parser.add_argument(
        "--background", type=float, default=20.0, help="instances/s ending beside the busy run"
    )
    parser.add_argument("--burst", type=int, default=50_000, help="values of the throughput run")
    parser.add_argument(
        "--breakdown",
        action="store_true",
        help="split each latency into writer / transport / reader (a plain consumer "
        "process watches beside the reader)",
    )
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks/results/streams.json")
    args = parser.parse_args()

    base = Settings.from_env()
    settings = base.replace(
        namespace=base.namespace or f"bench{uuid.uuid4().hex[:8]}",
        data_dir=Path(tempfile.mkdtemp(prefix="replayflow-bench-streams-")),
    )
    report = apply_topics(settings.bootstrap, load_topics(settings))
    if not report.ok:
        raise SystemExit(report.summary())
    results: dict[str, Any] = {"bootstrap": settings.bootstrap, "goal_p99_ms": GOAL_P99_MS}
    context = multiprocessing.get_context("spawn")
    stop = context.Event()
    engines = []
    for role in ("orchestrator", "worker"):
        ready = context.Event()
        engine = context.Process(target=serve, args=(role, settings, stop, ready), daemon=True)
        engine.start()
        if not ready.wait(120):
            raise SystemExit(f"the {role} did not start")
        engines.append(engine)
    try:
        run(settings, args, results)
    finally:
        stop.set()
        for engine in engines:
            engine.join(60)
    return finish(args, results)


def load() -> float:
    return round(os.getloadavg()[0], 2)


def same_partition_ids(settings: Settings, like: str, count: int) -> list[str]:
    """Ids whose streams share `like`'s partition (so their markers land there)."""
    admin = clients.admin(settings)
    partitions = len(topic_partitions(admin, Topics(settings).streams))
    target = murmur2_partition(like.encode(), partitions)
    out: list[str] = []
    while len(out) < count:
        candidate = f"bench-chatter-{uuid.uuid4().hex[:12]}"
        if murmur2_partition(candidate.encode(), partitions) == target:
            out.append(candidate)
    return out


def observe(settings: Settings, instance_id: str, count: int, out: Any, ready: Any) -> None:
    """A plain consumer in a process of its own: when each value reached the broker's
    consumers (its librdkafka create time, its arrival), for the breakdown."""
    from confluent_kafka import TopicPartition

    from replayflow import codec
    from replayflow.processors.stream_reader import LOW_LATENCY

    consumer = clients.consumer(
        settings, None, **{**LOW_LATENCY, "isolation.level": "read_uncommitted"}
    )
    partitions = len(topic_partitions(consumer, Topics(settings).streams))
    partition = murmur2_partition(instance_id.encode(), partitions)
    consumer.assign([TopicPartition(Topics(settings).streams, partition, 0)])
    key, seen = instance_id.encode(), []
    ready.set()
    deadline = time.monotonic() + 300
    while len(seen) < count and time.monotonic() < deadline:
        message = consumer.poll(0.1)
        if message is None or message.error() is not None or message.key() != key:
            continue
        now = time.time_ns()
        record = codec.decode(message.value() or b"")
        if getattr(record, "stream", None) == "values":
            value = json.loads(record.value)
            seen.append((value["i"], value["t"], message.timestamp()[1] * 1_000_000, now))
    consumer.close()
    out.put(seen)


def breakdown(seen: list[tuple[int, int, int, int]], arrivals: dict[int, int]) -> dict[str, Any]:
    """Each value's latency in three parts: in the writer before librdkafka took it
    (GIL, encoding), librdkafka to broker to a plain consumer (batching, network,
    broker, fetch), and that consumer to the Stream reader (its Python). The create
    time has 1 ms resolution."""
    parts: dict[str, list[float]] = {"writer": [], "transport": [], "reader": []}
    totals = []
    for index, written, created, observed in seen:
        if index not in arrivals:
            continue
        parts["writer"].append((created - written) / 1e6)
        parts["transport"].append((observed - created) / 1e6)
        parts["reader"].append((arrivals[index] - observed) / 1e6)
        totals.append((arrivals[index] - written) / 1e6)
    worst = sorted(range(len(totals)), key=totals.__getitem__)[-max(1, len(totals) // 100) :]
    return {
        name: {
            "p50": round(percentile(values, 0.5), 2),
            "p99": round(percentile(values, 0.99), 2),
            "mean_in_worst_1pct": round(statistics.mean(values[i] for i in worst), 2),
        }
        for name, values in parts.items()
    }


def rate_run(
    client: Client, settings: Settings, args: argparse.Namespace, background: float
) -> dict[str, Any]:
    count = int(args.rate * args.seconds)
    instance_id = f"bench-rate-{uuid.uuid4().hex[:12]}"
    stop = threading.Event()
    started: list[str] = []

    def chatter_load() -> None:
        ids = same_partition_ids(settings, instance_id, int(background * (args.seconds + 5)))
        begin = time.monotonic()
        for n, chatter_id in enumerate(ids):
            if stop.wait(max(0.0, begin + n / background - time.monotonic())):
                return
            client.start(bench_chatter, None, id=chatter_id)
            started.append(chatter_id)

    load_thread = threading.Thread(target=chatter_load, daemon=True) if background else None
    observer, seen = None, None
    if args.breakdown:
        context = multiprocessing.get_context("spawn")
        seen, ready = context.Queue(), context.Event()
        observer = context.Process(target=observe, args=(settings, instance_id, count, seen, ready))
        observer.start()
        ready.wait(60)
    before = load()
    if load_thread is not None:
        load_thread.start()
    handle = client.start(bench_streams, {"count": count, "rate": args.rate}, id=instance_id)
    arrivals: dict[int, int] = {}
    try:
        latencies, took = read(client, handle.id, count, arrivals)
    finally:
        stop.set()
        if load_thread is not None:
            load_thread.join(30)
    parts = None
    if observer is not None and seen is not None:
        parts = breakdown(seen.get(timeout=120), arrivals)
        observer.join(30)
    return {
        "offered_per_s": args.rate,
        "values": count,
        "background_instances": len(started),
        "received_per_s": round(count / took, 1) if took else None,
        "latency_ms": {
            "p50": round(statistics.median(latencies), 2),
            "p95": round(percentile(latencies, 0.95), 2),
            "p99": round(percentile(latencies, 0.99), 2),
            "max": round(max(latencies), 2),
        },
        "load_average": [before, load()],
        **({"breakdown_ms": parts} if parts else {}),
    }


def run(settings: Settings, args: argparse.Namespace, results: dict[str, Any]) -> None:
    with Client(settings) as client:
        warm = client.start(bench_streams, {"count": 100, "rate": None})
        read(client, warm.id, 100)

        for name, background, runs in (("rate", 0.0, args.runs), ("busy", args.background, 1)):
            if runs < 1 or (name == "busy" and not background):
                continue
            each, bare = [], []
            for _ in range(runs):
                # The bare pair right before each engine run: the same machine state. (Run
                # beside the busy run, its process added to the load it measured.)
                bare.append(bare_run(settings, args.rate, args.seconds))
                each.append(rate_run(client, settings, args, background))
                print(json.dumps({name: each[-1], "bare_kafka_ms": bare[-1]}), flush=True)
            results[name] = {
                "runs": each,
                "bare_kafka_runs": bare,
                "median_p50_ms": statistics.median(r["latency_ms"]["p50"] for r in each),
                "median_p99_ms": statistics.median(r["latency_ms"]["p99"] for r in each),
                "bare_kafka_median_p99_ms": statistics.median(r["p99"] for r in bare),
            }

        handle = client.start(bench_streams, {"count": args.burst, "rate": None})
        started = time.monotonic()
        latencies, _ = read(client, handle.id, args.burst)
        took = time.monotonic() - started
        results["throughput"] = {
            "values": args.burst,
            "seconds": round(took, 2),
            "values_per_s": round(args.burst / took, 1),
            "latency_p99_ms": round(percentile(latencies, 0.99), 2),
            "load_average": load(),
        }
        print(json.dumps({"throughput": results["throughput"]}, indent=2), flush=True)


def finish(args: argparse.Namespace, results: dict[str, Any]) -> int:
    checks = {}
    lines = []
    for name in ("rate", "busy"):
        if name not in results:
            continue
        p99 = results[name]["median_p99_ms"]
        checks[f"{name}_p99_within_goal"] = p99 <= GOAL_P99_MS
        runs = len(results[name]["runs"])
        verdict = "ok" if p99 <= GOAL_P99_MS else "FAIL"
        lines.append(
            f"{verdict}: {name}: median p99 {p99} ms over {runs} run(s) at {args.rate:g} "
            f"values/s (goal <= {GOAL_P99_MS} ms; median p50 {results[name]['median_p50_ms']} "
            f"ms; a bare Kafka producer and consumer in the same run: median p99 "
            f"{results[name]['bare_kafka_median_p99_ms']} ms; load average "
            f"{os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs)"
        )
    results["checks"] = checks
    results["cpus"] = os.cpu_count()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {args.out}")
    print("\n".join(lines))
    return 0 if all(checks.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
