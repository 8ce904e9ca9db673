"""`make bench-rebuild`: how fast history is re-folded into fresh orchestrator state.

Goal: 1,000,000 history events rebuilt in <= 30 s on this machine.

1. The history is made in-process by the engine's own fold (rf.testing.Environment,
   the orchestrator's fold shell over a memory store): BASE instances of the workload
   (benchmarks/rebuild_workload.py), most completed, every fifth order still waiting
   for its event. It is then copied under new instance ids until it holds EVENTS
   facts (the workload does not depend on the id, so each copy is a true history),
   and spread over PARTITIONS partitions by murmur2 of the id, copies interleaved as
   concurrent instances are.
2. The rebuild is timed: every partition re-folded through the fold shell into a new
   RocksDB store (replayflow.processors.rebuild_run.rebuild), in worker processes, the
   limiters last; every re-made fact is checked against the recorded one, so the run
   also says the rebuild was exact (0 divergences).
3. With a broker (KAFKA_BOOTSTRAP), a smaller history (BROKER_EVENTS) is produced to a
   namespace's history topic and rebuilt from there, reading included.

Prints the figures, writes benchmarks/results/rebuild.json, exits 1 if a goal is
missed. `python benchmarks/rebuild.py --events 200000 --no-broker` for a quick run.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import resource
import shutil
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks import rebuild_workload as workload  # noqa: E402
from replayflow import codec  # noqa: E402
from replayflow.core.definitions import Registry  # noqa: E402
from replayflow.core.messages import HistoryEvent  # noqa: E402
from replayflow.kafka.partition import murmur2_partition  # noqa: E402
from replayflow.processors.rebuild_run import RebuildPlan, RebuildResult, rebuild  # noqa: E402
from replayflow.testing import Environment  # noqa: E402

GOAL_EVENTS = 1_000_000
GOAL_SECONDS = 30.0
RESULTS = ROOT / "benchmarks" / "results" / "rebuild.json"

# Filled before the worker processes fork: they read their partitions from here.
_GENERATED: dict[int, list[tuple[int, HistoryEvent]]] = {}


def make_registry() -> Registry:
    return Environment(workload).registry


@dataclass(frozen=True)
class Generated:
    """The HistorySource of the generated history (a forked worker inherits it)."""

    def __call__(self, partition: int) -> list[tuple[int, HistoryEvent]]:
        return _GENERATED.get(partition, [])


def record_base(count: int) -> list[HistoryEvent]:
    env = Environment(workload)
    for n in range(count):
        if n % 3 == 2:
            env.start(workload.batch, n, id=f"b{n}")
        else:
            env.start(workload.order, n, id=f"o{n}")
    env.advance("2m")  # the orders' "settle" sleeps end
    for n in range(count):
        if n % 3 != 2 and n % 5 != 0:  # every fifth order keeps waiting
            env.send_event(f"o{n}", "shipped", {"n": n})
    return env.facts


def spread(base: list[HistoryEvent], events: int, partitions: int) -> int:
    """Copy the base history under new ids until it holds `events` facts. The copies
    of each run of one instance's facts follow each other, as concurrent instances'
    decisions do in a partition: the facts of one decision stay together."""
    copies = max(1, -(-events // len(base)))
    runs: list[list[HistoryEvent]] = []
    for event in base:
        if runs and runs[-1][0].instance_id == event.instance_id:
            runs[-1].append(event)
        else:
            runs.append([event])
    _GENERATED.clear()
    offsets = [0] * partitions
    ids: dict[tuple[str, int], tuple[str, int]] = {}
    total = 0
    for run in runs:
        for copy in range(copies):
            key = (run[0].instance_id, copy)
            found = ids.get(key)
            if found is None:
                new_id = f"{run[0].instance_id}.c{copy}"
                found = ids[key] = (new_id, murmur2_partition(new_id.encode(), partitions))
            new_id, partition = found
            rows = _GENERATED.setdefault(partition, [])
            for event in run:
                rows.append((offsets[partition], replace(event, instance_id=new_id)))
                offsets[partition] += 1
            total += len(run)
        if total >= events:
            break
    return total


def timed_rebuild(partitions: int, workers: int, data: Path) -> RebuildResult:
    plan = RebuildPlan(
        partitions=tuple(range(partitions)),
        partition_count=partitions,
        data_dir=data,
        workers=workers,
    )
    context = multiprocessing.get_context("fork")  # no Kafka clients exist yet
    return rebuild(Generated(), make_registry, plan, mp_context=context)


def cpu_seconds() -> float:
    """CPU time of this process and of its ended children (the worker processes)."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def broker_rebuild(
    bootstrap: str, events: int, partitions: int, workers: int, data: Path
) -> dict[str, Any]:
    """Produce `events` generated facts to a fresh namespace and rebuild from it."""
    from benchmarks.engine import delete_namespace
    from replayflow.kafka import clients
    from replayflow.kafka.producing import Record, deliver
    from replayflow.processors.rebuild_kafka import KafkaHistory
    from replayflow.settings import Settings
    from replayflow.topics import Topics, apply_topics, load_topics

    settings = Settings(
        bootstrap=bootstrap, namespace=f"benchrb{uuid.uuid4().hex[:8]}", partitions=partitions
    )
    apply_topics(settings.bootstrap, load_topics(settings))
    topic = Topics(settings).history
    try:
        producer = clients.producer(settings)
        records = [
            Record(topic, codec.encode(event), key=event.instance_id.encode(), partition=p)
            for p, rows in _GENERATED.items()
            for _, event in rows
        ]
        started = time.perf_counter()
        deliver(producer, records, timeout=300)
        produced_s = time.perf_counter() - started
        plan = RebuildPlan(
            partitions=tuple(range(partitions)),
            partition_count=partitions,
            data_dir=data,
            workers=workers,
        )
        result = rebuild(KafkaHistory(settings), make_registry, plan)
        return {
            "events": result.facts,
            "seconds": round(result.seconds, 2),
            "events_per_s": round(result.facts / result.seconds),
            "divergences": len(result.divergences),
            "produce_seconds": round(produced_s, 2),
        }
    finally:
        delete_namespace(settings)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=GOAL_EVENTS)
    parser.add_argument("--base", type=int, default=3000, help="instances made by the fold")
    parser.add_argument("--partitions", type=int, default=12)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--broker-events", type=int, default=100_000)
    parser.add_argument("--no-broker", action="store_true")
    args = parser.parse_args()

    started = time.perf_counter()
    base = record_base(args.base)
    total = spread(base, args.events, args.partitions)
    made_s = time.perf_counter() - started
    print(f"history: {total} events ({len(base)} made by the fold, copied) in {made_s:.1f} s")

    data = Path(tempfile.mkdtemp(prefix="rebuild-bench-"))
    try:
        cpu_before = cpu_seconds()
        result = timed_rebuild(args.partitions, args.workers, data / "memory-source")
        cpu = cpu_seconds() - cpu_before
        rate = result.facts / result.seconds
        load = os.getloadavg()[0]
        print(
            f"rebuild: {result.facts} events, {result.instances} instances, "
            f"{result.folded} commands folded, in {result.seconds:.1f} s with "
            f"{args.workers} processes: {rate:,.0f} events/s; "
            f"{len(result.divergences)} divergences"
        )
        print(
            f"  CPU: {cpu:.1f} s ({result.facts / cpu:,.0f} events per CPU second); "
            f"machine load average {load:.1f} on {os.cpu_count()} cores"
        )
        figures: dict[str, Any] = {
            "events": result.facts,
            "instances": result.instances,
            "commands_folded": result.folded,
            "partitions": args.partitions,
            "workers": args.workers,
            "cores": os.cpu_count(),
            "seconds": round(result.seconds, 2),
            "events_per_s": round(rate),
            "divergences": len(result.divergences),
            "cpu_seconds": round(cpu, 2),
            "events_per_cpu_s": round(result.facts / cpu),
            "load_average": round(load, 2),
            "goal": {"events": GOAL_EVENTS, "seconds": GOAL_SECONDS},
        }
        bootstrap = os.environ.get("KAFKA_BOOTSTRAP", "").strip()
        if not args.no_broker and bootstrap:
            spread(base, args.broker_events, args.partitions)
            broker = broker_rebuild(
                bootstrap, args.broker_events, args.partitions, args.workers, data / "broker"
            )
            print(
                f"from the broker: {broker['events']} events rebuilt in {broker['seconds']} s "
                f"(reading included): {broker['events_per_s']:,} events/s"
            )
            figures["broker"] = broker
    finally:
        shutil.rmtree(data, ignore_errors=True)

    # The goal is a rate: 1,000,000 events in 30 s (a smaller --events run is checked
    # at the same rate).
    needed = GOAL_EVENTS / GOAL_SECONDS
    ok = figures["events_per_s"] >= needed and figures["divergences"] == 0
    figures["ok"] = ok
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(figures, indent=2) + "\n")
    print(f"wrote {RESULTS}")
    verdict = "met" if ok else "MISSED"
    print(
        f"goal {verdict}: {figures['events_per_s']:,} events/s "
        f"(needed {needed:,.0f}: {GOAL_EVENTS:,} events in {GOAL_SECONDS:g} s), "
        f"{figures['divergences']} divergences"
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
