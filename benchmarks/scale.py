"""`make bench-scale`: how many instances one orchestrator holds, and what they cost.

The product's goal: "50,000 concurrent instances and 2,000,000 queued on one node;
queued and waiting instances cost disk, not memory." Two phases, each on a fresh
namespace with its own orchestrator process (so each phase's RSS is its own), run
as in benchmarks/run.py: the broker, an orchestrator and a worker as separate
`python -m replayflow.cli` processes; this process is the client and the observer.

  concurrent  N instances of scale-wait (one trivial step, then wait_for_event("go")).
              Started as fast as the client goes; "waiting" is counted from the
              EventAwaited facts on the history topic. Then "go" is sent to all of them
              and the completions are counted. Orchestrator RSS (now and peak) at each
              point.
  queued      Q instances of scale-queued under `--limit scale-queued=L`, started while
              NO worker runs: L are admitted and hold their slots, Q - L wait in the
              limiter's queue. Measured: the rate starts are queued, RSS and store size
              with Q queued. Then the worker starts and the queue drains: admissions/s
              (from WorkflowAdmitted timestamps), the time an instance holds its slot,
              and per-partition consumption and lag of the commands topic.
              `--admission` picks the engine's admission (REPLAYFLOW_ADMISSION):
              sharded (the default; a limit of at least the partition count is split
              into one shard per partition, processors/admission.py) or global (the
              one limiter). Sharded, an instance is queued in its shard in the same
              transaction as its WorkflowQueued fact, so the facts say when all are
              queued. Through the one limiter every AcquireSlot / ReleaseSlot goes to
              the ONE partition of the limiter key, which is watched apart from the
              others: the limiter has queued them all once the orchestrator's
              committed offset there passes the last AcquireSlot.

The observer reads history, completions and (one limiter) the limiter's commands
partition with a plain consumer (no group), filters on the 8-byte schema fingerprint
of each record and decodes only the facts it counts. The orchestrator's committed
offsets (they are in its transactions) and the partitions' end offsets come from the
admin API.

Prints the figures and writes them as JSON (benchmarks/results/scale.json).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.scale_figures import compact, drain_figures, extrapolate  # noqa: E402
from benchmarks.scale_observe import Monitor, Sampler, partition_window, wait_until  # noqa: E402
from benchmarks.scale_processes import Namespace, Process  # noqa: E402
from replayflow import codec  # noqa: E402
from replayflow.client import Client  # noqa: E402
from replayflow.core.messages import SendEvent  # noqa: E402
from replayflow.kafka import clients  # noqa: E402
from replayflow.kafka.partition import murmur2_partition  # noqa: E402
from replayflow.processors.admission import admission_for, is_shard_key  # noqa: E402
from replayflow.settings import Settings  # noqa: E402

WAIT_WORKFLOW = "scale-wait"
QUEUED_WORKFLOW = "scale-queued"
NOOP_WORKFLOW = "scale-noop"
CHUNK = 1000


# -- driving -----------------------------------------------------------------------------


def start_all(client: Client, workflow: str, ids: list[str]) -> float:
    """Start every id (input = its index), in chunks; returns starts per second."""
    began = time.time()
    for chunk in range(0, len(ids), CHUNK):
        batch = ids[chunk : chunk + CHUNK]
        client.start_many([(workflow, chunk + i, iid) for i, iid in enumerate(batch)])
    return len(ids) / max(1e-9, time.time() - began)


def send_go(settings: Settings, topic: str, ids: list[str]) -> float:
    """Send the event "go" to every id through one producer, flushed once (a
    client.send_event() flushes per call); returns events per second."""
    producer = clients.producer(settings)
    producer.list_topics(topic, timeout=30)  # metadata first: not part of the rate
    began = time.time()
    for i, iid in enumerate(ids):
        value = codec.encode(SendEvent(instance_id=iid, name="go", payload="true"))
        while True:
            try:
                producer.produce(topic, key=iid.encode(), value=value)
                break
            except BufferError:
                producer.poll(0.05)
        if i % 1000 == 0:
            producer.poll(0)
    producer.flush(60)
    return len(ids) / max(1e-9, time.time() - began)


def warm_up(client: Client, monitor: Monitor, timeout: float) -> float:
    """A step-less instance through the orchestrator: its partitions are assigned."""
    began = time.time()
    client.start(NOOP_WORKFLOW, 0, id=f"warmup-{uuid.uuid4().hex}")
    if not monitor.wait(lambda: monitor.completed(NOOP_WORKFLOW) >= 1, began + timeout):
        raise RuntimeError("the warm-up instance did not complete: see the orchestrator log")
    return time.time() - began


def rss(process: Process) -> dict[str, float]:
    status = process.status()
    return {
        "rss_mb": status.get("VmRSS", float("nan")),
        "peak_rss_mb": status.get("VmHWM", float("nan")),
    }


def ms_to_s(ms: int) -> float:
    return ms / 1000


# -- phase 1: concurrent waiting instances ----------------------------------------------


def run_concurrent(args: argparse.Namespace, base: Settings) -> dict[str, Any]:
    n = args.n
    ns = Namespace(base, args.partitions, "c", args.keep_data)
    monitor = Monitor(ns)
    result: dict[str, Any] = {"instances": n, "namespace": ns.settings.namespace}
    sampler: Sampler | None = None
    try:
        orchestrator = ns.start_orchestrator([])
        ns.start_worker(args.worker_concurrency)
        monitor.start()
        sampler = Sampler(ns, monitor, args.sample_interval)
        sampler.start()
        deadline = time.time() + args.phase_timeout
        with Client(ns.settings, watch_completions=False, confirm=False) as client:
            result["warm_up_s"] = round(warm_up(client, monitor, 120), 2)
            result["rss_idle"] = rss(orchestrator)
            ids = [f"c-{i:07d}" for i in range(n)]
            print(f"[concurrent] starting {n} instances of {WAIT_WORKFLOW} ...", flush=True)
            t0 = time.time()
            result["client_start_rate_per_s"] = round(start_all(client, WAIT_WORKFLOW, ids), 1)
            ok = wait_until(
                ns, monitor, lambda: monitor.counts["EventAwaited"] >= n, deadline, "all waiting"
            )
            t_waiting = time.time()
            result["all_waiting"] = ok
            result["waiting_reached"] = monitor.counts["EventAwaited"]
            last = ms_to_s(monitor.last_at.get("EventAwaited", 0))
            result["time_to_all_waiting_s"] = round(last - t0, 2)
            result["instances_to_waiting_per_s"] = round(
                monitor.counts["EventAwaited"] / max(1e-9, last - t0), 1
            )
            result["rss_all_waiting"] = rss(orchestrator)
            result["store_mb_all_waiting"] = ns.stores_mb()
            time.sleep(args.settle)
            result["rss_all_waiting_settled"] = rss(orchestrator)
            result["start_window"] = partition_window(sampler, t0, t_waiting, None)
            print(json.dumps({k: result[k] for k in result if k != "start_window"}), flush=True)
            if not ok:
                return result

            print(f"[concurrent] sending 'go' to {n} instances ...", flush=True)
            t1 = time.time()
            result["event_send_rate_per_s"] = round(
                send_go(ns.settings, ns.topics.commands, ids), 1
            )
            ok = wait_until(
                ns,
                monitor,
                lambda: monitor.completed(WAIT_WORKFLOW) >= n,
                max(deadline, t1 + args.phase_timeout / 2),
                "all completed",
            )
            t_done = time.time()
            completed_at = [monitor.completed_at[i] for i in ids if i in monitor.completed_at]
            result["all_completed"] = ok
            result["completions"] = {
                k: v for k, v in monitor.completions.items() if k.startswith(WAIT_WORKFLOW)
            }
            if completed_at:
                result["time_to_all_completed_s"] = round(ms_to_s(max(completed_at)) - t1, 2)
                result["completions_per_s"] = round(
                    len(completed_at) / max(1e-9, ms_to_s(max(completed_at)) - t1), 1
                )
            result["rss_after_completed"] = rss(orchestrator)
            result["store_mb_after"] = ns.stores_mb()
            time.sleep(args.settle)
            result["rss_after_completed_settled"] = rss(orchestrator)
            result["event_window"] = partition_window(sampler, t1, t_done, None)
            print(
                json.dumps(
                    {k: v for k, v in result.items() if k.startswith(("event", "all_", "rss_a"))}
                    | {"time_to_all_completed_s": result.get("time_to_all_completed_s")}
                ),
                flush=True,
            )
    finally:
        try:
            if sampler is not None:
                sampler.close()
                result["timeline"] = compact(sampler.samples)
            monitor.close()
        finally:
            ns.close()  # whatever happened above: the processes stop
    return result


# -- phase 2: queued instances and the drain --------------------------------------------


def run_queued(args: argparse.Namespace, base: Settings) -> dict[str, Any]:
    q, limit = args.q, args.limit
    ns = Namespace(base, args.partitions, "q", args.keep_data, args.admission)
    partitions = ns.settings.partitions or 12
    # The limiter the engine's admission picks (processors/admission.py): a shard of the
    # instance's partition, or the one limiter (global, or a limit below the partition
    # count). A shard is probed after the run; the one limiter's partition is watched.
    limiter, _ = admission_for(args.admission, partitions)(QUEUED_WORKFLOW, "probe", limit)
    sharded = is_shard_key(limiter)
    limiter_partition = None if sharded else murmur2_partition(limiter.encode(), partitions)
    monitor = Monitor(ns, limiter_partition)
    result: dict[str, Any] = {
        "queued_starts": q,
        "limit": limit,
        "admission": "sharded" if sharded else "one limiter",
        "namespace": ns.settings.namespace,
        "limiter_key": limiter,
        "limiter_partition": limiter_partition,
    }
    sampler: Sampler | None = None
    try:
        orchestrator = ns.start_orchestrator([f"{QUEUED_WORKFLOW}={limit}"])
        monitor.start()
        sampler = Sampler(ns, monitor, args.sample_interval)
        sampler.start()
        deadline = time.time() + args.phase_timeout
        with Client(ns.settings, watch_completions=False, confirm=False) as client:
            result["warm_up_s"] = round(warm_up(client, monitor, 120), 2)
            result["rss_idle"] = rss(orchestrator)
            ids = [f"q-{i:07d}" for i in range(q)]
            print(
                f"[queued] starting {q} instances of {QUEUED_WORKFLOW} (limit {limit}), "
                "no worker running ...",
                flush=True,
            )
            t0 = time.time()
            result["client_start_rate_per_s"] = round(start_all(client, QUEUED_WORKFLOW, ids), 1)

            def all_queued() -> bool:
                return monitor.counts["WorkflowQueued"] >= q and (
                    limiter_partition is None or monitor.counts["AcquireSlot"] >= q
                )

            ok = wait_until(ns, monitor, all_queued, deadline, "all queued")
            t_queued_facts = time.time()
            # Sharded, each shard queued its instances with their facts. The one limiter
            # has queued them once the orchestrator's committed offset on its partition is
            # past the last AcquireSlot.
            enqueued = limiter_partition is None
            while ok and not enqueued and time.time() < deadline:
                committed, _ = sampler.offsets.read()
                assert limiter_partition is not None
                if committed[limiter_partition] > monitor.last_acquire_offset:
                    enqueued = True
                    break
                time.sleep(0.25)
            t_enqueued = time.time()
            result["all_queued"] = ok and enqueued
            result["queued_facts"] = monitor.counts["WorkflowQueued"]
            if limiter_partition is not None:
                result["acquire_slot_commands"] = monitor.counts["AcquireSlot"]
            result["admitted_while_no_worker"] = monitor.counts["WorkflowAdmitted"]
            last_queued = ms_to_s(monitor.last_at.get("WorkflowQueued", 0))
            result["time_to_all_queued_facts_s"] = round(last_queued - t0, 2)
            result["queued_facts_per_s"] = round(q / max(1e-9, last_queued - t0), 1)
            result["time_to_all_enqueued_in_limiter_s"] = round(t_enqueued - t0, 2)
            result["limiter_enqueue_per_s"] = round(q / max(1e-9, t_enqueued - t0), 1)
            result["limiter_lagged_behind_facts_s"] = round(t_enqueued - t_queued_facts, 2)
            result["rss_all_queued"] = rss(orchestrator)
            result["store_mb_all_queued"] = ns.stores_mb()
            time.sleep(args.settle)
            result["rss_all_queued_settled"] = rss(orchestrator)
            result["enqueue_window"] = partition_window(sampler, t0, t_enqueued, limiter_partition)
            print(
                json.dumps({k: v for k, v in result.items() if k != "enqueue_window"}), flush=True
            )
            print(json.dumps({"enqueue_window": result["enqueue_window"]}), flush=True)
            if not result["all_queued"]:
                return result

            print("[queued] starting the worker: the queue drains ...", flush=True)
            t_worker = time.time()
            ns.start_worker(args.worker_concurrency)
            drain_deadline = t_worker + (args.drain_seconds or args.phase_timeout)
            drained = wait_until(
                ns,
                monitor,
                lambda: monitor.completed(QUEUED_WORKFLOW) >= q,
                drain_deadline,
                "drain",
            )
            t_end = time.time()
            result["drained_completely"] = drained
            result["rss_after_drain"] = rss(orchestrator)
            result["store_mb_after_drain"] = ns.stores_mb()
            with monitor.lock:
                admitted = dict(monitor.admitted_at)
                completed = dict(monitor.completed_at)
            result["drain"] = drain_figures(admitted, completed, t_worker, limit, q)
            result["drain_window"] = partition_window(
                sampler, t_worker + 10, t_end, limiter_partition
            )
            print(json.dumps({"drain": result["drain"]}), flush=True)
            print(json.dumps({"drain_window": result["drain_window"]}), flush=True)
    finally:
        try:
            if sampler is not None:
                sampler.close()
                result["timeline"] = compact(sampler.samples)
            monitor.close()
            for process in ns.processes:
                process.stop()
            with contextlib.suppress(Exception):
                result["queue_head_probe"] = probe_queue_head(ns, limiter)
                print(json.dumps({"queue_head_probe": result["queue_head_probe"]}), flush=True)
        finally:
            ns.close()  # whatever happened above: the processes stop
    return result


def probe_queue_head(ns: Namespace, limiter: str) -> dict[str, Any]:
    """With the orchestrator stopped: how long finding the head of the queue of
    `limiter` (the one limiter or a shard) takes in its partition's store as the run left
    it (what each admission does: a scan from the queue's prefix), against a seek
    straight to the head ticket."""
    from replayflow.store import keys, serde
    from replayflow.store.partition import PartitionStore

    partition = murmur2_partition(limiter.encode(), ns.settings.partitions or 12)
    stores = list((ns.data_dir / "stores").glob(f"*/*/p{partition}"))
    if not stores:
        return {}
    copy = ns.data_dir / "probe"
    shutil.copytree(stores[0], copy)
    store = PartitionStore(copy, partition)
    try:
        raw = store.get(keys.limiter(limiter))
        if raw is None:
            return {}
        state = serde.load_limiter(raw)
        head_ticket = state.next_ticket - state.queued
        prefix = keys.queue_prefix(limiter)

        def timed(start: bytes) -> float:
            best = float("inf")
            for _ in range(5):
                began = time.perf_counter()
                rows = store.scan(start, end=prefix + b"\xff")
                next(rows, None)
                rows.close()
                best = min(best, time.perf_counter() - began)
            return round(best * 1000, 3)

        return {
            "dequeued_so_far": head_ticket - 1,
            "still_queued": state.queued,
            "head_from_prefix_ms": timed(prefix),
            "head_by_seek_to_ticket_ms": timed(keys.queue_entry(limiter, head_ticket)),
        }
    finally:
        store.close()


def engine_version() -> dict[str, Any]:
    """Which replayflow the processes run: its path, and the checkout's commit."""
    import replayflow

    def git(*cmd: str) -> str:
        try:
            return subprocess.run(
                ["git", *cmd], cwd=ROOT, capture_output=True, text=True, timeout=10
            ).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            return ""

    commit = git("rev-parse", "HEAD")
    if not commit and (ROOT / "COMMIT").exists():  # an exported snapshot of a commit
        commit = (ROOT / "COMMIT").read_text().strip()
    return {
        "replayflow": str(Path(replayflow.__file__).parent),
        "commit": commit,
        "uncommitted_engine_changes": bool(git("status", "--porcelain", "src")),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("-n", type=int, default=50_000, help="concurrent waiting instances")
    parser.add_argument("-q", type=int, default=200_000, help="queued starts")
    parser.add_argument("--limit", type=int, default=100, help="concurrency limit, queued phase")
    parser.add_argument(
        "--admission",
        choices=("sharded", "global"),
        default="sharded",
        help="the engine's admission (REPLAYFLOW_ADMISSION), queued phase",
    )
    parser.add_argument("--phases", default="concurrent,queued", help="which phases to run")
    parser.add_argument(
        "--drain-seconds",
        type=float,
        default=120.0,
        help="measure the drain this long, then stop (0: until the queue is empty)",
    )
    parser.add_argument("--phase-timeout", type=float, default=540.0, help="seconds per wait")
    parser.add_argument("--partitions", type=int, default=12)
    parser.add_argument("--worker-concurrency", type=int, default=1000)
    parser.add_argument("--sample-interval", type=float, default=1.0)
    parser.add_argument("--settle", type=float, default=3.0, help="seconds before a 2nd RSS read")
    parser.add_argument("--target-queued", type=int, default=2_000_000, help="to extrapolate to")
    parser.add_argument("--keep-data", action="store_true", help="keep stores, logs and topics")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks/results/scale.json")
    args = parser.parse_args()

    # `timeout` and Ctrl-C: stop the child processes by their pids on the way out.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))

    base = Settings.from_env()
    phases = [p.strip() for p in args.phases.split(",") if p.strip()]
    results: dict[str, Any] = {
        "machine": {
            "cpus": os.cpu_count(),
            "load_avg_at_start": os.getloadavg(),
            "mem_total_mb": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**20),
        },
        "partitions": args.partitions,
        "engine": engine_version(),
        "args": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
    }
    began = time.time()
    try:
        if "concurrent" in phases:
            t = time.time()
            results["concurrent"] = run_concurrent(args, base)
            results["concurrent"]["phase_s"] = round(time.time() - t, 1)
        if "queued" in phases:
            t = time.time()
            results["queued"] = run_queued(args, base)
            results["queued"]["phase_s"] = round(time.time() - t, 1)
            results["extrapolation"] = extrapolate(results["queued"], args.target_queued)
            print(json.dumps({"extrapolation": results["extrapolation"]}), flush=True)
    finally:
        results["machine"]["load_avg_at_end"] = os.getloadavg()
        results["total_s"] = round(time.time() - began, 1)
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(results, indent=2) + "\n")
        print(f"written to {args.out}")


if __name__ == "__main__":
    main()
