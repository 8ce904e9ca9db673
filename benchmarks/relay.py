"""The bare transactional relay: what Kafka transactions allow on this machine, to
measure the engine against ("percent of the relay").

A relay consumes a topic and, in one Kafka transaction per batch, produces a record
for each record consumed, sends the consumed offsets and commits: the orchestrator's
commit protocol with nothing folded. It runs with the engine's client settings
(replayflow.kafka.config) and the orchestrator's cadence (block for the first record,
take what else is fetched). Two shapes, each in a child process so its CPU is its own:

  relay   input -> output, N records preloaded: records/s and CPU per record
  engine  the three-step workflow with no engine: the relay folds commands into tasks
          (hop 1-3) or a completion (hop 4); an echo thread, like a worker, consumes
          tasks and produces the next command. The benchmark client starts and
          watches "workflows" exactly as it does the engine's.

`python benchmarks/relay.py relay|engine ...` is the child; run.py calls `relay_*`.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from confluent_kafka import Message, TopicPartition  # noqa: E402
from confluent_kafka.admin import NewTopic  # noqa: E402

from benchmarks.processes import wait_or_kill  # noqa: E402
from replayflow.kafka import clients  # noqa: E402
from replayflow.settings import Settings  # noqa: E402

BATCH = 2000
STEPS = 3


def _relay_loop(
    settings: Settings,
    source: str,
    route: Any,
    stop: threading.Event,
    counts: dict[str, float],
    name: str,
) -> None:
    """Consume `source`; per batch, one transaction with route(message) produced for
    every record and the offsets sent."""
    consumer = clients.consumer(
        settings, f"relay-{source}", **{"group.instance.id": f"relay-{os.getpid()}"}
    )
    producer = clients.transactional_producer(settings, f"relay-{source}-{os.getpid()}")
    consumer.subscribe([source])
    relayed = 0
    took: list[float] = []
    try:
        while not stop.is_set():
            first = consumer.poll(0.05)
            if first is None:
                continue
            messages = [first, *consumer.consume(BATCH - 1, timeout=0)]
            began = time.perf_counter()
            producer.begin_transaction()
            offsets: dict[int, int] = {}
            for message in messages:
                if message.error() is None:
                    offsets[message.partition()] = message.offset() + 1
            # Offsets first, as the orchestrator sends them (processors/orchestrator.py).
            producer.send_offsets_to_transaction(
                [TopicPartition(source, p, o) for p, o in offsets.items()],
                consumer.consumer_group_metadata(),
                30,
            )
            for message in messages:
                if message.error() is None:
                    topic, value = route(message)
                    producer.produce(topic, value, message.key())
            producer.commit_transaction(60)
            took.append((time.perf_counter() - began) * 1000)
            if len(took) % 50 == 0:
                recent = sorted(took[-500:])
                counts[f"{name}_txn_ms_p50"] = round(recent[len(recent) // 2], 2)
                counts[f"{name}_txn_ms_p90"] = round(recent[int(len(recent) * 0.9)], 2)
            relayed += len(messages)
            counts[name] = relayed
            counts[f"{name}_at"] = time.time()
            counts[f"{name}_cpu_s"] = time.thread_time()
            if f"{name}_first" not in counts:
                counts[f"{name}_first"] = relayed
                counts[f"{name}_first_at"] = counts[f"{name}_at"]
                counts[f"{name}_first_cpu_s"] = counts[f"{name}_cpu_s"]
    finally:
        consumer.close()


def _echo_loop(
    settings: Settings, tasks: str, commands: str, stop: threading.Event, counts: dict[str, float]
) -> None:
    """The worker's part: each task back to the commands topic with the next count."""
    consumer = clients.consumer(settings, "relay-echo")
    producer = clients.producer(settings, **{"linger.ms": 0})
    consumer.subscribe([tasks])
    echoed = 0
    try:
        while not stop.is_set():
            first = consumer.poll(0.05)
            if first is None:
                producer.poll(0)
                continue
            for message in [first, *consumer.consume(BATCH - 1, timeout=0)]:
                if message.error() is not None:
                    continue
                step = int(message.value() or b"0")
                producer.produce(commands, str(step + 1).encode(), message.key())
                echoed += 1
            producer.poll(0)
            counts["echo"] = echoed
            counts["echo_cpu_s"] = time.thread_time()
    finally:
        producer.flush(10)
        consumer.close()


def child(argv: list[str]) -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("shape", choices=("relay", "engine"))
    parser.add_argument("--source", required=True)
    parser.add_argument("--output", default="")
    parser.add_argument("--tasks", default="")
    parser.add_argument("--completions", default="")
    parser.add_argument("--report", type=Path, required=True)
    args = parser.parse_args(argv)
    settings = Settings.from_env()
    stop = threading.Event()
    counts: dict[str, float] = {}
    threads = []
    if args.shape == "relay":

        def route(message: Message) -> tuple[str, bytes | None]:
            return args.output, message.value()

        threads.append(
            threading.Thread(
                target=_relay_loop, args=(settings, args.source, route, stop, counts, "relay")
            )
        )
    else:

        def route(message: Message) -> tuple[str, bytes | None]:
            step = int(message.value() or b"0")
            if step < STEPS:
                return args.tasks, str(step).encode()
            return args.completions, b"done"

        threads += [
            threading.Thread(
                target=_relay_loop, args=(settings, args.source, route, stop, counts, "relay")
            ),
            threading.Thread(
                target=_echo_loop, args=(settings, args.tasks, args.source, stop, counts)
            ),
        ]
    import signal

    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    for thread in threads:
        thread.start()
    while not stop.is_set():
        time.sleep(0.05)
        args.report.write_text(json.dumps(counts))
    for thread in threads:
        thread.join(30)
    args.report.write_text(json.dumps(counts))


# -- the harness (run.py) ----------------------------------------------------------------


class RelayProcess:
    """A relay child process on its own topics; stopped by its pid."""

    def __init__(
        self, settings: Settings, shape: str, topics: dict[str, str], folder: Path
    ) -> None:
        self.report = folder / f"relay-{shape}.json"
        self.report.unlink(missing_ok=True)
        args = [sys.executable, str(Path(__file__)), shape, "--report", str(self.report)]
        args += [f"--{name}={topic}" for name, topic in topics.items()]
        env = dict(os.environ, KAFKA_BOOTSTRAP=settings.bootstrap, PYTHONPATH=str(ROOT))
        self._log = open(folder / f"relay-{shape}.log", "w")  # noqa: SIM115
        self.process = subprocess.Popen(
            args, env=env, cwd=ROOT, stdout=self._log, stderr=subprocess.STDOUT
        )

    @property
    def pid(self) -> int:
        return self.process.pid

    def counts(self) -> dict[str, float]:
        try:
            return dict(json.loads(self.report.read_text()))
        except (OSError, ValueError):
            return {}

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
        wait_or_kill(self.process)
        self._log.close()


def create_topics(settings: Settings, names: list[str], partitions: int) -> None:
    admin = clients.admin(settings)
    futures = admin.create_topics([NewTopic(n, partitions, 1) for n in names])
    for future in futures.values():
        future.result(30)


if __name__ == "__main__":
    child(sys.argv[1:])
