"""`make bench`: throughput and latency of three-step workflows on this machine.

The broker, one orchestrator process and one worker process run here (the orchestrator
and worker as separate `replayflow` processes, so their peak RSS is measured apart);
this process is the client. Two runs:

  burst  N workflows started as fast as the client allows
  rate   workflows started at a fixed offered rate (default 100/s) for a while

Prints the figures and writes them as JSON (benchmarks/results/bench.json).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from replayflow.client import Client  # noqa: E402
from replayflow.settings import Settings  # noqa: E402
from replayflow.topics import apply_topics, load_topics  # noqa: E402

WORKFLOW = "bench-three-steps"


def peak_rss_mb(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return float("nan")


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


class Processes:
    """The orchestrator and worker as child processes, stopped by their pids."""

    def __init__(self, settings: Settings, data_dir: Path) -> None:
        env = dict(
            os.environ,
            KAFKA_BOOTSTRAP=settings.bootstrap,
            REPLAYFLOW_NAMESPACE=settings.namespace,
            REPLAYFLOW_DATA=str(data_dir),
            PYTHONPATH=str(ROOT),
        )
        cli = [sys.executable, "-m", "replayflow.cli"]
        logs = data_dir / "logs"
        logs.mkdir(parents=True, exist_ok=True)
        # The processes outlive this constructor; stop() closes the log files.
        self._logs = [open(logs / name, "w") for name in ("orchestrator.log", "worker.log")]  # noqa: SIM115
        self.orchestrator = subprocess.Popen(
            [*cli, "orchestrator", "-m", "benchmarks.workload", "--id", "bench-orchestrator"],
            env=env,
            cwd=ROOT,
            stdout=self._logs[0],
            stderr=subprocess.STDOUT,
        )
        self.worker = subprocess.Popen(
            [*cli, "worker", "-m", "benchmarks.workload", "--concurrency", "1000"],
            env=env,
            cwd=ROOT,
            stdout=self._logs[1],
            stderr=subprocess.STDOUT,
        )

    def rss(self) -> dict[str, float]:
        return {
            "orchestrator": peak_rss_mb(self.orchestrator.pid),
            "worker": peak_rss_mb(self.worker.pid),
        }

    def stop(self) -> None:
        for process in (self.orchestrator, self.worker):
            if process.poll() is None:
                process.terminate()
        for process in (self.orchestrator, self.worker):
            try:
                process.wait(20)
            except subprocess.TimeoutExpired:
                process.kill()
        for log in self._logs:
            log.close()


def warm_up(client: Client) -> None:
    handle = client.start(WORKFLOW, 1, id=f"warmup-{uuid.uuid4().hex}")
    handle.result(timeout=120)


def run_burst(client: Client, n: int) -> dict[str, float]:
    ids = [f"burst-{uuid.uuid4().hex}" for _ in range(n)]
    sent: dict[str, float] = {}
    started = time.time()
    for chunk in range(0, n, 1000):
        batch = ids[chunk : chunk + 1000]
        now = time.time()
        client.start_many([(WORKFLOW, i, instance_id) for i, instance_id in enumerate(batch)])
        for instance_id in batch:
            sent[instance_id] = now
    start_rate = n / (time.time() - started)
    return _collect(client, sent, started, start_rate)


def run_rate(client: Client, rate: float, seconds: float) -> dict[str, float]:
    n = int(rate * seconds)
    sent: dict[str, float] = {}
    started = time.time()
    for i in range(n):
        due = started + i / rate
        delay = due - time.time()
        if delay > 0:
            time.sleep(delay)
        instance_id = f"rate-{uuid.uuid4().hex}"
        sent[instance_id] = time.time()
        client.start(WORKFLOW, i, id=instance_id)
    return _collect(client, sent, started, n / (time.time() - started))


def _collect(
    client: Client, sent: dict[str, float], started: float, start_rate: float
) -> dict[str, float]:
    latencies = []
    last = started
    for instance_id, at in sent.items():
        completion = client.completion(instance_id, timeout=600, since=at)
        if completion.status != "COMPLETED":
            raise RuntimeError(f"{instance_id} ended {completion.status}: {completion.error}")
        finished = completion.at / 1000
        latencies.append((finished - at) * 1000)
        last = max(last, finished)
    elapsed = last - started
    n = len(sent)
    return {
        "workflows": n,
        "seconds": round(elapsed, 3),
        "start_rate_per_s": round(start_rate, 1),
        "workflows_per_s": round(n / elapsed, 1),
        "steps_per_s": round(3 * n / elapsed, 1),
        "latency_p50_ms": round(statistics.median(latencies), 1),
        "latency_p99_ms": round(percentile(latencies, 0.99), 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("-n", type=int, default=20_000, help="workflows in the burst run")
    parser.add_argument("--rate", type=float, default=100.0, help="offered rate, per second")
    parser.add_argument("--rate-seconds", type=float, default=20.0)
    parser.add_argument("--partitions", type=int, default=12)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks/results/bench.json")
    args = parser.parse_args()

    base = Settings.from_env()
    settings = Settings(
        bootstrap=base.bootstrap,
        namespace=f"bench{uuid.uuid4().hex[:8]}",
        partitions=args.partitions,
    )
    print(apply_topics(settings.bootstrap, load_topics(settings)).summary())
    data_dir = Path(tempfile.mkdtemp(prefix="replayflow-bench-"))
    processes = Processes(settings, data_dir)
    results: dict[str, object] = {
        "machine": {"cpus": os.cpu_count()},
        "partitions": args.partitions,
    }
    try:
        with Client(settings, confirm=False) as client:  # measure the engine, not replies
            warm_up(client)
            print(f"burst: {args.n} three-step workflows ...", flush=True)
            results["burst"] = run_burst(client, args.n)
            print(json.dumps(results["burst"], indent=2), flush=True)
            print(f"rate: {args.rate}/s for {args.rate_seconds} s ...", flush=True)
            results["rate"] = run_rate(client, args.rate, args.rate_seconds)
            print(json.dumps(results["rate"], indent=2), flush=True)
        results["peak_rss_mb"] = processes.rss()
        results["peak_rss_mb"]["client"] = peak_rss_mb(os.getpid())  # type: ignore[index]
        print("peak RSS (MB):", json.dumps(results["peak_rss_mb"]))
    finally:
        processes.stop()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"written to {args.out}")


if __name__ == "__main__":
    main()
