"""The parts of `make bench`, each a function that returns its figures."""

from __future__ import annotations

import itertools
import json
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

from benchmarks.driver import Done, Starter, Watcher
from benchmarks.engine import Engine
from benchmarks.measure import drive
from benchmarks.processes import CpuMeter, Processes, broker_pid, cpu_seconds
from benchmarks.relay import RelayProcess, create_topics
from replayflow import codec
from replayflow.kafka import clients
from replayflow.kafka.reading import read_to_end
from replayflow.settings import Settings

ROOT = Path(__file__).resolve().parent.parent


def _say(text: str) -> None:
    print(text, flush=True)


# -- the fold alone ---------------------------------------------------------------------


def fold_alone(n: int, instances: int, steps: int) -> dict[str, Any]:
    """benchmarks/foldbench.py in a child process (its garbage collection as the
    orchestrator's), three-step workflows and long instances."""
    out: dict[str, Any] = {}
    for shape, args in (
        ("three", ["three", "-n", str(n)]),
        ("long", ["long", "--instances", str(instances), "--steps", str(steps)]),
    ):
        done = subprocess.run(
            [sys.executable, str(ROOT / "benchmarks" / "foldbench.py"), *args],
            capture_output=True,
            text=True,
            check=True,
            cwd=ROOT,
        )
        out[shape] = json.loads(done.stdout.strip().splitlines()[-1])
    return out


# -- the bare relay ----------------------------------------------------------------------


def relay_throughput(base: Settings, n: int, partitions: int) -> dict[str, Any]:
    """input -> output through one transactional relay: records/s and CPU/record."""
    token = uuid.uuid4().hex[:6]
    source, output = f"bench-relay-{token}.in", f"bench-relay-{token}.out"
    create_topics(base, [source, output], partitions)
    producer = clients.producer(base, **{"linger.ms": 5})
    value = b"x" * 64
    for i in range(n):
        while True:
            try:
                producer.produce(source, value, f"r{i}".encode())
                break
            except BufferError:
                producer.poll(0.01)
    producer.flush(60)
    folder = Path(tempfile.mkdtemp(prefix="replayflow-bench-relay-"))
    relay = RelayProcess(base, "relay", {"source": source, "output": output}, folder)
    broker = broker_pid()
    try:
        deadline = time.monotonic() + 300
        first_cpu: dict[str, float] = {}
        counts: dict[str, float] = {}
        while time.monotonic() < deadline:
            counts = relay.counts()
            if counts.get("relay") and not first_cpu:
                first_cpu = {"relay": cpu_seconds(relay.pid)}
                if broker is not None:
                    first_cpu["broker"] = cpu_seconds(broker)
            if counts.get("relay", 0) >= n:
                break
            time.sleep(0.02)
        else:
            raise RuntimeError(f"the relay moved {counts.get('relay', 0)} of {n} records")
        end_cpu = {"relay": cpu_seconds(relay.pid)}
        if broker is not None:
            end_cpu["broker"] = cpu_seconds(broker)
    finally:
        relay.stop()
    moved = counts["relay"] - counts["relay_first"]
    seconds = counts["relay_at"] - counts["relay_first_at"]
    return {
        "records": int(moved),
        "records_per_s": round(moved / seconds, 1),
        "cpu_us_per_record": {
            name: round((end_cpu[name] - first_cpu[name]) * 1e6 / moved, 2) for name in end_cpu
        },
        "python_thread_cpu_us_per_record": round(
            (counts["relay_cpu_s"] - counts["relay_first_cpu_s"]) * 1e6 / moved, 2
        ),
    }


def relay_workflows(
    base: Settings, partitions: int, burst: int, rates: list[tuple[float, float]]
) -> dict[str, Any]:
    """The three-step workflow's path with no engine: relay + echo (relay.py)."""
    token = uuid.uuid4().hex[:6]
    names = {n: f"bench-relay-{token}.{n}" for n in ("source", "tasks", "completions")}
    create_topics(base, list(names.values()), partitions)
    folder = Path(tempfile.mkdtemp(prefix="replayflow-bench-relay-"))
    relay = RelayProcess(base, "engine", names, folder)

    def read(message: Any) -> tuple[str, Done]:
        return (message.key() or b"").decode(), Done(time.time(), True, "")

    starter = Starter(base, names["source"], linger_ms=0)
    watcher = Watcher(base, names["completions"], partitions, read)
    watcher.start()
    processes = Processes(base, folder)
    meter = CpuMeter(processes)
    meter.pids["relay"] = relay.pid
    out: dict[str, Any] = {}
    try:
        warm = [(f"warm-{i}", b"0") for i in range(24)]
        drive(starter, watcher, warm, None, meter, 4, timeout=120)
        records = [(f"burst-{token}-{i}", b"0") for i in range(burst)]
        out["burst"] = drive(starter, watcher, records, None, meter, 4)
        for rate, seconds in rates:
            n = int(rate * seconds)
            records = [(f"rate{int(rate)}-{token}-{i}", b"0") for i in range(n)]
            out[f"rate_{int(rate)}"] = drive(starter, watcher, records, rate, meter, 4)
        counts = relay.counts()
        out["transaction_ms"] = {
            "p50": counts.get("relay_txn_ms_p50"),
            "p90": counts.get("relay_txn_ms_p90"),
            "of_last": 500,
        }
    finally:
        watcher.close()
        relay.stop()
    return out


# -- the engine ------------------------------------------------------------------------


def engine_runs(
    base: Settings,
    partitions: int,
    burst: int,
    rates: list[tuple[float, float]],
    long_instances: int,
    long_steps: int,
    bursts: int = 1,
    rate_runs: int = 1,
) -> dict[str, Any]:
    """One orchestrator and one worker: the burst, the fixed rates, long instances
    (a burst or long instances of 0: none).

    The burst runs `bursts` times, one after another, and the last is the one the goals
    check: a broker fresh from its start spends its first minutes compiling (its JIT
    burned most of a core in the first bursts), and the processes fill their caches,
    so the first burst measures a cold start that a running deployment does not see.
    Every burst is kept in the results ("burst_runs"), the first one included. Each
    fixed rate runs `rate_runs` times in a row, for the same reason (the first 100/s
    after the bursts on a broker three minutes old had p50 38.1 ms, the next two 31.0
    and 31.3; on a broker that had run longer, 31.6, 31.7 and 31.7): the goals check the
    last, and "fixed_rate_runs" keeps them all."""
    engine = Engine(base, partitions, f"one{partitions}")
    out: dict[str, Any] = {}
    try:
        engine.warm_up()
        runs: list[dict[str, Any]] = []
        for i in range(bursts if burst else 0):
            _say(f"engine: burst {i + 1} of {bursts}, {burst} three-step workflows ...")
            figures = engine.run(engine.records(f"burst{i}", burst), with_breakdown=True)
            runs.append(figures)
            _say(_brief(figures))
        if runs:
            out["burst"] = runs[-1]
            out["burst_runs"] = [_burst_summary(f) for f in runs]
        for rate, seconds in rates:
            key = f"rate_{int(rate)}"
            summaries = []
            for i in range(rate_runs):
                _say(f"engine: {rate:g}/s for {seconds:g} s, run {i + 1} of {rate_runs} ...")
                records = engine.records(f"rate{int(rate)}-{i}", int(rate * seconds))
                out[key] = engine.run(records, rate=rate, with_breakdown=True)
                summaries.append(_rate_summary(out[key]))
                _say(_brief(out[key]))
            out.setdefault("fixed_rate_runs", {})[key] = summaries
        if long_instances:
            _say(f"engine: {long_instances} instances of {long_steps} sequential steps ...")
            out["long"] = long_instance_run(engine, long_instances, long_steps)
    finally:
        out["peak_rss_mb"] = engine.close()
    return out


def _burst_summary(figures: dict[str, Any]) -> dict[str, Any]:
    """The figures of one burst that the goals look at."""
    return {
        "workflows_per_s": figures["workflows_per_s"],
        "p50_over_wall": round(figures["latency"]["p50_ms"] / 1000 / figures["wall_s"], 3),
        "first_started_latency_ms": figures["first_started_latency_ms"],
        "cpu_us_per_command": figures["cpu_us_per_command"],
    }


def _rate_summary(figures: dict[str, Any]) -> dict[str, Any]:
    """The figures of one run at a fixed rate that the goals look at."""
    return {"latency": figures["latency"], "cpu_us_per_command": figures["cpu_us_per_command"]}


def _brief(figures: dict[str, Any]) -> str:
    lat = figures["latency"]
    cpu = figures["cpu_us_per_command"]
    return (
        f"  {figures['workflows_per_s']:,.0f} wf/s, {figures['commands_per_s']:,.0f} commands/s,"
        f" latency p50 {lat['p50_ms']} p99 {lat['p99_ms']} max {lat['max_ms']} ms;"
        f" CPU us/command: " + ", ".join(f"{k} {v}" for k, v in sorted(cpu.items()))
    )


class CpuSampler(threading.Thread):
    """The CPU seconds of one process, sampled with wall-clock times."""

    def __init__(self, pid: int, interval: float = 0.1) -> None:
        super().__init__(daemon=True)
        self.pid = pid
        self.interval = interval
        self.samples: list[tuple[float, float]] = []
        self._stop_event = threading.Event()

    def run(self) -> None:
        while not self._stop_event.is_set():
            self.samples.append((time.time(), cpu_seconds(self.pid)))
            time.sleep(self.interval)

    def stop(self) -> None:
        self._stop_event.set()
        self.join(5)

    def at(self, t: float) -> float:
        """CPU seconds at wall time t, interpolated between samples."""
        samples = self.samples
        for (t0, c0), (t1, c1) in itertools.pairwise(samples):
            if t0 <= t <= t1:
                return c0 + (c1 - c0) * (t - t0) / max(1e-9, t1 - t0)
        return samples[-1][1] if t > samples[-1][0] else samples[0][1]


def long_instance_run(engine: Engine, instances: int, steps: int) -> dict[str, Any]:
    """Orchestrator CPU and wall time per step around step 100 and step steps-100 of
    `instances` instances of `steps` sequential steps, run side by side."""
    orchestrator = engine.processes.by_role("orchestrator")[0]
    sampler = CpuSampler(orchestrator.pid)
    sampler.start()
    records = engine.records("long", instances, workflow="bench-long", value=steps)
    for instance_id, _ in records:
        engine.expected[instance_id] = str(steps)
    begin = {engine.topics.history: dict.fromkeys(range(engine.partitions), 0)}
    ids = {i for i, _ in records}
    figures = drive(
        engine.starter,
        engine.watcher,
        records,
        None,
        engine.meter,
        steps + 1,
        alive=engine.processes.check_alive,
        timeout=1800,
    )
    sampler.stop()
    folded = _step_fold_times(engine, begin, ids)
    windows = {}
    for label, centre in (("early", 100), ("late", steps - 100)):
        lo, hi = centre - 50, centre + 50
        t_lo = statistics.median(folded[lo])
        t_hi = statistics.median(folded[hi])
        cpu = sampler.at(t_hi / 1000) - sampler.at(t_lo / 1000)
        commands = instances * (hi - lo)
        windows[label] = {
            "steps": f"{lo}-{hi}",
            "orchestrator_cpu_us_per_step": round(cpu * 1e6 / commands, 1),
            "wall_ms_per_step": round((t_hi - t_lo) / (hi - lo), 2),
        }
    early, late = windows["early"], windows["late"]
    return {
        "instances": instances,
        "steps": steps,
        "wall_s": figures["wall_s"],
        "windows": windows,
        "cpu_late_over_early": round(
            late["orchestrator_cpu_us_per_step"] / early["orchestrator_cpu_us_per_step"], 2
        ),
        "wall_late_over_early": round(late["wall_ms_per_step"] / early["wall_ms_per_step"], 2),
    }


def _step_fold_times(
    engine: Engine, begin: dict[str, dict[int, int]], ids: set[str]
) -> dict[int, list[int]]:
    """Per step number (1-based), the orchestrator times its result was folded at."""
    wanted = codec.fingerprint_of("StepCompleted")
    out: dict[int, list[int]] = {}
    consumer = clients.consumer(engine.settings, None)
    try:
        topic = engine.topics.history
        for batch in read_to_end(consumer, topic, begin[topic], batch=10_000):
            for message in batch:
                value = message.value() or b""
                if bytes(value[2:10]) != wanted or (message.key() or b"").decode() not in ids:
                    continue
                event = codec.decode(value)
                _name, _, count = event.step.partition("#")
                out.setdefault(int(count or 1), []).append(event.at)
    finally:
        consumer.close()
    return out
