"""Scale-out and admission: two orchestrators against one, and how fast a limited
workflow's queue drains."""

from __future__ import annotations

import time
from typing import Any

from benchmarks.driver import Done, Watcher
from benchmarks.engine import THREE_STEPS, Engine
from replayflow import codec
from replayflow.kafka import clients
from replayflow.kafka.reading import read_to_end
from replayflow.settings import Settings

LIMITED = "bench-limited"


def _say(text: str) -> None:
    print(text, flush=True)


def _event_times(engine: Engine, names: tuple[str, ...], ids: set[str]) -> dict[str, list[int]]:
    """The orchestrator times (ms) of the named history events of `ids`."""
    wanted = {codec.fingerprint_of(n): n for n in names}
    out: dict[str, list[int]] = {n: [] for n in names}
    consumer = clients.consumer(engine.settings, None)
    try:
        for batch in read_to_end(consumer, engine.topics.history, range(engine.partitions)):
            for message in batch:
                value = message.value() or b""
                name = wanted.get(bytes(value[2:10]))
                if name is None or (message.key() or b"").decode() not in ids:
                    continue
                out[name].append(codec.decode(value).at)
    finally:
        consumer.close()
    return out


def fold_capacity(
    base: Settings, partitions: int, orchestrators: int, n: int, repeats: int = 3
) -> dict[str, Any]:
    """Starts folded per second with no worker: the fold alone, spread over
    `orchestrators` processes. Each start is decided and its first task committed; the
    time runs from the first start produced to the last task read. The same processes
    fold `repeats` bursts of `n` one after another, and the figures are the median
    burst's (every burst's rate is listed): one fold lasts a second or two, short
    enough for a stall of the machine to halve a single measurement."""
    engine = Engine(base, partitions, f"fold{orchestrators}", orchestrators=orchestrators)
    tasks = None
    try:
        engine.warm_up(workflow="bench-noop")
        worker = engine.processes.by_role("worker")[0]
        worker.process.terminate()
        worker.process.wait(30)
        engine.meter.pids.pop(worker.name, None)
        engine.processes.children.remove(worker)
        worker.log.close()

        def read(message: Any) -> tuple[str, Done]:
            return (message.key() or b"").decode(), Done(time.time(), True, "")

        tasks = Watcher(engine.settings, engine.topics.tasks, partitions, read)
        tasks.start()
        runs = []
        for burst in range(repeats):
            records = engine.records(f"fold{burst}", n)
            tasks.expect([i for i, _ in records])
            folded_before = engine.commands_folded()
            engine.meter.begin()
            engine.starter.send(records)
            engine.starter.flush()
            if not tasks.wait(600, engine.processes.check_alive):
                raise RuntimeError(f"{tasks.missing()} of {n} starts were not folded")
            cpu = engine.meter.end()
            folded = [a - b for a, b in zip(engine.commands_folded(), folded_before, strict=True)]
            first = min(engine.starter.produced_at[i] for i, _ in records)
            seconds = max(tasks.done[i].read_at for i, _ in records) - first
            runs.append(
                {
                    "orchestrators": orchestrators,
                    "starts": n,
                    "seconds": round(seconds, 3),
                    "starts_folded_per_s": round(n / max(seconds, 1e-9), 1),
                    "starts_by_orchestrator": folded,
                    "partitions_by_orchestrator": [len(p) for p in engine.partitions_held()],
                    "cpu_us_per_start": {k: round(v * 1e6 / n, 1) for k, v in cpu.items()},
                }
            )
        rates = [run["starts_folded_per_s"] for run in runs]
        median = sorted(runs, key=lambda run: run["starts_folded_per_s"])[len(runs) // 2]
        return {**median, "bursts": repeats, "starts_folded_per_s_each": rates}
    finally:
        if tasks is not None:
            tasks.close()
        engine.close()


def two_orchestrators_burst(base: Settings, partitions: int, n: int) -> dict[str, Any]:
    """The whole pipeline's burst with two orchestrator processes."""
    engine = Engine(base, partitions, "two", orchestrators=2)
    try:
        engine.warm_up()
        held = [len(p) for p in engine.partitions_held()]
        folded_before = engine.commands_folded()
        figures = engine.run(engine.records("burst2", n))
        figures["partitions_per_orchestrator"] = held
        figures["commands_by_orchestrator"] = [
            a - b for a, b in zip(engine.commands_folded(), folded_before, strict=True)
        ]
        return figures
    finally:
        engine.close()


def admission_drain(
    base: Settings,
    partitions: int,
    queued: int,
    limit: int,
    orchestrators: int = 1,
    admission: str = "sharded",
) -> dict[str, Any]:
    """`queued` instances of a workflow limited to `limit` at once, started together:
    admissions per second while the queue drains, and the busiest partition's share of
    all commands. `admission` "global" is the one limiter the sharded admission
    replaced (REPLAYFLOW_ADMISSION): the baseline, measured in the same run."""
    engine = Engine(
        base,
        partitions,
        f"limit{orchestrators}{admission[0]}",
        orchestrators=orchestrators,
        limits=(f"{LIMITED}={limit}",),
        admission=admission,
    )
    try:
        engine.warm_up()
        records = engine.records("limited", queued, workflow=LIMITED)
        for i, (instance_id, _) in enumerate(records):
            engine.expected[instance_id] = str(i + 1)
        ids = {i for i, _ in records}
        before = _end_offsets(engine)
        figures = engine.run(records, commands_per_workflow=1, with_breakdown=True, steps=("a",))
        after = _end_offsets(engine)
        per_partition = [after[p] - before[p] for p in range(partitions)]
        admitted = sorted(_event_times(engine, ("WorkflowAdmitted",), ids)["WorkflowAdmitted"])
        lo, hi = admitted[len(admitted) // 10], admitted[(len(admitted) * 9) // 10]
        return {
            "admission": admission,
            "orchestrators": orchestrators,
            "queued": queued,
            "limit": limit,
            "wall_s": figures["wall_s"],
            "admitted": len(admitted),
            "admissions_per_s": round(0.8 * len(admitted) / max(1e-9, (hi - lo) / 1000), 1),
            "completed_per_s": figures["workflows_per_s"],
            "commands_by_partition": per_partition,
            "busiest_partition_share": round(max(per_partition) / max(1, sum(per_partition)), 3),
            "latency": figures["latency"],
            "breakdown_ms": figures.get("breakdown_ms"),
            "cpu_us_per_instance": figures["cpu_us_per_command"],
        }
    finally:
        engine.close()


def _end_offsets(engine: Engine) -> list[int]:
    from benchmarks.breakdown import offsets

    ends = offsets(engine.settings, [engine.topics.commands], engine.partitions)
    return [ends[engine.topics.commands][p] for p in range(engine.partitions)]


__all__ = ["THREE_STEPS", "admission_drain", "fold_capacity", "two_orchestrators_burst"]
