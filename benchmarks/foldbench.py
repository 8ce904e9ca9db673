"""The fold alone, in this process: the orchestrator's per-command work without Kafka.

Commands are decoded from their Avro bytes, folded by a PartitionFolder over a RocksDB
partition store, their records encoded and the batch written, exactly as in the
orchestrator's loop; the steps' results are computed here and folded in the next
batch. What this leaves out is what librdkafka and the broker do.

  python benchmarks/foldbench.py three   N three-step workflows, B commands a batch
  python benchmarks/foldbench.py long    K instances of S sequential steps: CPU per
                                         step around step S-100, and around step 100 of
                                         K more, folded alternately with them
"""

from __future__ import annotations

import argparse
import gc
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks import workload  # noqa: E402
from replayflow import codec  # noqa: E402
from replayflow.core.decide import Decider  # noqa: E402
from replayflow.core.definitions import Registry  # noqa: E402
from replayflow.core.messages import CompleteStep, StartWorkflow, Task  # noqa: E402
from replayflow.processors.fold import PartitionFolder  # noqa: E402
from replayflow.store.partition import PartitionStore  # noqa: E402

FUNCTIONS = {
    "bench_a": lambda n: n + 1,
    "bench_b": lambda n: n * 2,
    "bench_c": lambda n: n - 1,
    "bench_next": lambda n: n + 1,
}


def _result(task: Task) -> bytes:
    args = json.loads(task.input)["args"]
    value = FUNCTIONS[task.function](*args)
    return codec.encode(
        CompleteStep(
            instance_id=task.instance_id, step=task.step, attempt=task.attempt, result=str(value)
        )
    )


class Fold:
    def __init__(self, folder: PartitionFolder) -> None:
        self.folder = folder
        self.offset = 0
        self.now = int(time.time() * 1000)
        self.commands = 0
        self.completed: dict[str, str | None] = {}

    def batch(self, commands: list[bytes]) -> list[bytes]:
        """Fold one batch; the results of the tasks it produced, for the next."""
        folder = self.folder
        self.now += 1
        for value in commands:
            command = codec.decode(value)
            source = ("commands", 0, self.offset, command.instance_id.encode(), value)
            self.offset += 1
            folder.fold(command, self.now, source)
        folder.fire_due_timers(self.now)
        results = []
        for record in folder.records:
            if record.topic == "tasks":
                results.append(_result(record.message))
            elif record.topic == "completions":
                self.completed[record.message.instance_id] = record.message.output
        # As the orchestrator: the changes go to the changelog as they are (no Record).
        changes = folder.changes()
        folder.committed(len(changes) or None)
        self.commands += len(commands)
        return results


def make_folder(path: Path, cache_size: int = 10_000) -> PartitionFolder:
    registry = Registry()
    registry.add(workload)
    return PartitionFolder(PartitionStore(path, 0), Decider(registry), cache_size)


def _starts(ids: str, workflow: str, n: int, input_of: Any) -> list[bytes]:
    """n encoded StartWorkflow records: instance ids from the `ids` format, input
    `input_of(i)`."""
    return [
        codec.encode(StartWorkflow(instance_id=ids.format(i), workflow=workflow, input=input_of(i)))
        for i in range(n)
    ]


def three(n: int, batch: int, starts_per_batch: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as folder:
        fold = Fold(make_folder(Path(folder)))
        starts = _starts("w-{:07d}", "bench-three-steps", n, str)
        pending: list[bytes] = []
        gc.collect()
        began = time.process_time()
        while starts or pending:
            take = pending[:batch]
            pending = pending[batch:]
            room = min(starts_per_batch, batch - len(take))
            take += starts[:room]
            starts = starts[room:]
            pending += fold.batch(take)
        cpu = time.process_time() - began
        wrong = [
            i
            for i, out in fold.completed.items()
            if out != str(workload.three_steps_result(int(i[2:])))
        ]
        if len(fold.completed) != n or wrong:
            raise RuntimeError(f"{len(fold.completed)} of {n} completed, {len(wrong)} wrong")
        fold.folder.store.close()
        return {
            "workflows": n,
            "commands": fold.commands,
            "cpu_s": round(cpu, 3),
            "cpu_us_per_command": round(cpu * 1e6 / fold.commands, 1),
        }


def long(instances: int, steps: int) -> dict[str, Any]:
    """CPU per step around step `steps`-100 of `instances` long instances, and around
    step 100 of as many instances started when the long ones reach step `steps`-200.

    The two groups fold in alternating batches on one store, each batch timed on its
    own, so both windows are measured in the same second of the run: a machine whose
    speed drifts over the run (a shared host; one run on the lockstep layout this
    replaced gave 52 us early and 94 us late, the next 51 and 56) slows both alike.
    What the ratio then shows is what an instance's own length costs a step, which is
    the question; the store's size is the same for both."""
    if steps < 300:
        raise ValueError(f"--steps {steps}: at least 300 (two windows of 100 steps, apart)")
    window = 100  # steps measured around each centre
    early_steps = 100 + window  # the young group only needs to pass its window
    with tempfile.TemporaryDirectory() as folder:
        fold = Fold(make_folder(Path(folder)))
        pending = {
            "old": _starts("l-{:04d}", "bench-long", instances, lambda _: str(steps)),
            "young": [],
        }
        young_from = steps - 200  # the old group's step when the young one starts
        per_step: dict[str, dict[int, float]] = {"old": {}, "young": {}}
        step = {"old": 0, "young": 0}
        while any(pending.values()):
            for group, batch in list(pending.items()):
                if not batch:
                    continue
                began = time.process_time()
                pending[group] = fold.batch(batch)
                per_step[group][step[group]] = (time.process_time() - began) / len(batch)
                step[group] += 1
            if step["old"] == young_from and not pending["young"]:
                pending["young"] = _starts(
                    "y-{:04d}", "bench-long", instances, lambda _: str(early_steps)
                )
        want = {f"l-{i:04d}": str(steps) for i in range(instances)}
        want.update({f"y-{i:04d}": str(early_steps) for i in range(instances)})
        if fold.completed != want:
            raise RuntimeError("long instances did not complete with the right result")
        fold.folder.store.close()

        def median_us(group: str, centre: int) -> float:
            values = sorted(
                per_step[group][i] for i in range(centre - window // 2, centre + window // 2)
            )
            return round(values[len(values) // 2] * 1e6, 1)

        early, late = median_us("young", 100), median_us("old", steps - 100)
        return {
            "instances": instances,
            "steps": steps,
            "cpu_us_per_step_early": early,
            "cpu_us_per_step_late": late,
            "late_over_early": round(late / early, 2),
        }


def settle() -> None:
    """Garbage collection as the orchestrator sets it up (a checkout from before
    processors/collector.py: frozen start-up only)."""
    try:
        from replayflow.processors import collector
    except ImportError:
        gc.collect()
        gc.freeze()
        return
    collector.settle()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("shape", choices=("three", "long"))
    parser.add_argument("-n", type=int, default=20_000)
    parser.add_argument("--batch", type=int, default=2000)
    parser.add_argument("--starts-per-batch", type=int, default=2000)
    parser.add_argument("--instances", type=int, default=10)
    parser.add_argument("--steps", type=int, default=5000)
    args = parser.parse_args()
    settle()
    if args.shape == "three":
        print(json.dumps(three(args.n, args.batch, args.starts_per_batch)))
    else:
        print(json.dumps(long(args.instances, args.steps)))


if __name__ == "__main__":
    main()
