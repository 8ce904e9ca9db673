"""`make bench-schedules`: many schedules on one orchestrator.

The goal: 100,000 schedules that fire every 5 minutes on one orchestrator, fire lag
from slot time to StartWorkflow accepted p99 <= 1 s, orchestrator RSS <= 1 GB.

Setup: a fresh namespace; the orchestrator as its own process (`python -m
replayflow.cli orchestrator -m benchmarks.triggers_workload`, so its RSS is its own);
no worker (the started workflow has no step). N schedules are created through the
client: schedule i fires every 5 minutes at offset (i mod 300) s, so 1/300 of them
fire each second (schedules spread over their period, as jitter or offsets spread them
in practice; `--aligned` puts them all on the same second instead, the worst case).

Measured over one full period after every schedule exists (`--observe` seconds):
  lag accepted  WorkflowStarted.at - slot: when the orchestrator folded the start the
                schedule produced for that slot (the instance's fact records its slot)
  lag visible   when this process read that fact (read_committed) - slot: the fire,
                the start and both transactions committed, end to end
  fires         slots of the window started (late ones are waited for, up to 2 minutes
                after the window, and count with their lag), against those due;
                duplicates (a slot started twice) must be 0
  RSS           the orchestrator's VmRSS sampled each second, and its VmHWM (peak)
Also: how long creating the schedules took, and the store's size on disk.

Prints the figures, writes benchmarks/results/triggers_schedules.json and checks each
goal (exit status 1 when one is missed). Needs a broker at KAFKA_BOOTSTRAP.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from confluent_kafka import OFFSET_END, TopicPartition  # noqa: E402

import replayflow as rf  # noqa: E402
from benchmarks.scale_processes import dir_mb, proc_status  # noqa: E402
from replayflow import codec  # noqa: E402
from replayflow.core.entities import route  # noqa: E402
from replayflow.core.messages import WorkflowStarted  # noqa: E402
from replayflow.kafka import clients  # noqa: E402
from replayflow.kafka.producing import Record, deliver  # noqa: E402
from replayflow.settings import Settings  # noqa: E402
from replayflow.topics import Topics, apply_topics, load_topics  # noqa: E402

WORKFLOW = "bench-scheduled"
MODULE = "benchmarks.triggers_workload"
GOAL_P99_MS = 1000
GOAL_RSS_MB = 1024


def _fingerprints(name: str) -> set[bytes]:
    return {codec.fingerprint_of(name, v) for v in codec.default_codec().versions(name)}


STARTED = _fingerprints("WorkflowStarted")
CREATED = _fingerprints("ScheduleCreated")
FIRED = _fingerprints("ScheduleFired")


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


class Observer(threading.Thread):
    """Reads the history topic from its end (read_committed) and keeps, for every start
    made by a schedule, its slot, its fact's time and when it was read."""

    def __init__(self, settings: Settings) -> None:
        super().__init__(daemon=True, name="observer")
        topic = Topics(settings).history
        self.consumer = clients.consumer(settings, None)
        partitions = self.consumer.list_topics(topic, timeout=30).topics[topic].partitions
        self.consumer.assign([TopicPartition(topic, p, OFFSET_END) for p in partitions])
        self.starts: dict[str, tuple[int, int, int]] = {}  # id -> (slot, at, read at)
        self.duplicates = 0
        self.created = 0  # ScheduleCreated facts seen
        self.fired: dict[str, int] = {}  # instance id -> when its slot's fire was folded
        self.stop = threading.Event()
        self.lock = threading.Lock()

    def run(self) -> None:
        while not self.stop.is_set():
            for message in self.consumer.consume(5000, timeout=0.1):
                value = message.value()
                if message.error() is not None or not value:
                    continue
                if value[2:10] in CREATED:
                    self.created += 1
                    continue
                if value[2:10] in FIRED:
                    fired = codec.decode(value)
                    with self.lock:
                        self.fired[fired.instance_id] = fired.at
                    continue
                if value[2:10] not in STARTED:
                    continue
                seen = int(time.time() * 1000)
                event = codec.decode(value)
                if isinstance(event, WorkflowStarted) and event.schedule_slot is not None:
                    with self.lock:
                        if event.instance_id in self.starts:
                            self.duplicates += 1
                        self.starts[event.instance_id] = (event.schedule_slot, event.at, seen)
        self.consumer.close()


def _by_bucket(window: list[tuple[int, int, int]], start: int, size: int) -> list[int]:
    """The accepted lag's p99 per `size` ms of slot time: when the lag came."""
    buckets: dict[int, list[float]] = {}
    for slot, at, _ in window:
        buckets.setdefault((slot - start) // size, []).append(at - slot)
    return [round(percentile(buckets[b], 99)) for b in sorted(buckets)]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--schedules", type=int, default=100_000)
    parser.add_argument("--period", type=int, default=300, help="seconds between fires")
    parser.add_argument("--observe", type=int, default=None, help="seconds (default: period)")
    parser.add_argument("--aligned", action="store_true", help="all on the same second")
    parser.add_argument(
        "--out", type=Path, default=ROOT / "benchmarks/results/triggers_schedules.json"
    )
    args = parser.parse_args()
    observe = args.observe or args.period
    settings = Settings.from_env().replace(namespace=f"bsched{uuid.uuid4().hex[:6]}")
    report = apply_topics(settings.bootstrap, load_topics(settings))
    assert report.ok, report.summary()
    data = Path(tempfile.mkdtemp(prefix="bench-schedules-"))
    env = {
        **os.environ,
        "KAFKA_BOOTSTRAP": settings.bootstrap,
        "REPLAYFLOW_NAMESPACE": settings.namespace,
    }
    log = open(data / "orchestrator.log", "wb")  # noqa: SIM115  # closed in the finally
    orchestrator = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "replayflow.cli",
            "orchestrator",
            "-m",
            MODULE,
            "--id",
            "bench",
            "--data",
            str(data),
        ],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    samples: list[float] = []
    sampling = threading.Event()

    def sample() -> None:
        while not sampling.is_set():
            rss = proc_status(orchestrator.pid).get("VmRSS")
            if rss is not None:
                samples.append(rss)
            time.sleep(1)

    threading.Thread(target=sample, daemon=True).start()
    observer = Observer(settings)
    observer.start()
    results: dict[str, Any] = {
        "load_average_1m_start": round(os.getloadavg()[0], 2),
        "schedules": args.schedules,
        "period_s": args.period,
        "spread": "aligned" if args.aligned else f"offsets 0..{min(args.period, 300) - 1} s",
        "namespace": settings.namespace,
        "bootstrap": settings.bootstrap,
    }
    try:
        created_at = time.time()
        commands = Topics(settings).commands
        producer = clients.producer(settings)
        # One acknowledged batch of creates per 5,000.
        for first in range(0, args.schedules, 5000):
            records = []
            for i in range(first, min(first + 5000, args.schedules)):
                offset = 0 if args.aligned else i % min(args.period, 300)
                schedule = rf.Schedule(every=args.period, offset=offset, overlap="allow_all")
                command = schedule.create_command(f"s{i:06d}", WORKFLOW)
                key = route(command).record_key
                records.append(Record(commands, codec.encode(command), key=key))
            deliver(producer, records)
        sent_s = time.time() - created_at
        print(f"{args.schedules} creates sent in {sent_s:.1f} s", flush=True)
        while observer.created < args.schedules:
            time.sleep(0.5)
        folded_s = time.time() - created_at
        # Every schedule exists: count the slots from the next whole second on.
        window_start = (int(time.time()) + 1) * 1000
        print(f"... and folded after {folded_s:.1f} s; observing {observe} s", flush=True)
        time.sleep(max(0.0, window_start / 1000 - time.time()) + observe)
        window_end = window_start + observe * 1000
        due = args.schedules * observe // args.period
        # Starts that come late still count, with their lag: wait for them (a while).
        deadline = time.time() + 120
        while time.time() < deadline:
            with observer.lock:
                seen = sum(1 for v in observer.starts.values() if window_start <= v[0] < window_end)
            if seen >= due:
                break
            time.sleep(1)
        with observer.lock:
            window = [v for v in observer.starts.values() if window_start <= v[0] < window_end]
            fire_lags = [
                observer.fired[i] - v[0]
                for i, v in observer.starts.items()
                if window_start <= v[0] < window_end and i in observer.fired
            ]
            duplicates = observer.duplicates
        accepted = [at - slot for slot, at, _ in window]
        visible = [seen - slot for slot, _, seen in window]
        per_period = args.schedules * observe / args.period
        results.update(
            {
                "create_send_s": round(sent_s, 1),
                "create_folded_s": round(folded_s, 1),
                "window_s": observe,
                "fires_due": round(per_period),
                "fires_seen": len(window),
                "duplicate_starts": duplicates,
                "lag_accepted_ms": {
                    "p50": percentile(accepted, 50),
                    "p99": percentile(accepted, 99),
                    "max": max(accepted, default=float("nan")),
                    "mean": round(statistics.fmean(accepted), 1) if accepted else None,
                },
                "lag_visible_ms": {
                    "p50": percentile(visible, 50),
                    "p99": percentile(visible, 99),
                    "max": max(visible, default=float("nan")),
                },
                # The first part of the accepted lag: slot to the fire folded (the timer's
                # wait for the loop); the rest is the start's way through the log.
                "lag_fire_folded_ms": {
                    "p50": percentile(fire_lags, 50),
                    "p99": percentile(fire_lags, 99),
                    "max": max(fire_lags, default=float("nan")),
                },
                "lag_p99_ms_by_30s": _by_bucket(window, window_start, 30_000),
                "load_average_1m_end": round(os.getloadavg()[0], 2),
                "orchestrator_rss_mb": {
                    "last": samples[-1] if samples else None,
                    "max_sampled": max(samples, default=None),
                    "peak_vmhwm": proc_status(orchestrator.pid).get("VmHWM"),
                },
                "orchestrator_cpu_s": proc_status(orchestrator.pid).get("cpu_s"),
                "store_mb": round(dir_mb(data), 1),
            }
        )
    finally:
        sampling.set()
        observer.stop.set()
        orchestrator.send_signal(signal.SIGTERM)
        try:
            orchestrator.wait(60)
        except subprocess.TimeoutExpired:
            orchestrator.kill()
        log.close()
    lag = results["lag_accepted_ms"]
    peak = results["orchestrator_rss_mb"]["peak_vmhwm"] or 0
    checks = {
        "every due slot started": results["fires_seen"] >= results["fires_due"],
        "no slot started twice": results["duplicate_starts"] == 0,
        f"fire lag p99 <= {GOAL_P99_MS} ms": lag["p99"] <= GOAL_P99_MS,
        f"orchestrator RSS <= {GOAL_RSS_MB} MB": peak <= GOAL_RSS_MB,
    }
    results["checks"] = checks
    print(json.dumps(results, indent=2))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    for name, ok in checks.items():
        print(f"{'PASS' if ok else 'FAIL'}  {name}")
    return 0 if all(checks.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
