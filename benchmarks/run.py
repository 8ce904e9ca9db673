"""`make bench`: throughput, latency and CPU of the engine on this machine, against a
bare Kafka transactional relay on the same broker in the same run.

The broker, the orchestrator(s) and the worker run here as separate processes
(benchmarks/launch.py: what `replayflow orchestrator|worker` runs, with a journal for
the latency breakdown); this process is the client (benchmarks/driver.py). Sections:

  engine      one orchestrator, one worker: bursts of N three-step workflows (three
              in a row, the goals check the last: the first find a cold broker), fixed
              offered rates (100/s and 500/s), each with the latency breakdown
              (benchmarks/breakdown.py); long instances (per-step cost late vs early)
  partitions  the fixed rates again on topics of fewer partitions (--few-partitions):
              a transaction's cost grows with the partitions it writes (four topics
              per partition of its batch), so this shows what the count costs
  verification  the fixed rates again on a broker that does not check each
              transactional write with the transaction coordinator (Kafka checks by
              default; benchmarks/broker_settings.py says why both are measured)
  relay       the bare relay: records/s and CPU per record; and the three-step
              workflow's path with no engine (relay + echo): burst and fixed rates
              (measured after the engine's sections; a warm-up before them all runs
              the relay's path unmeasured, so that every section meets a warm broker)
  scale_out   starts folded per second by one and by two orchestrators (no worker),
              and the burst with two orchestrators
  admission   a limited workflow's queue draining: admissions/s, busiest partition
  fold        the fold alone, in a child process (benchmarks/foldbench.py): CPU per
              command of the three-step workflow, and per step of long instances at
              step 100 against step steps-100 (no Kafka: the decision's own cost)

Every workflow's result is checked. Prints the figures and the goals (benchmarks/
goals.py: met / not met) and writes benchmarks/results/bench.json.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks import breakdown, broker_settings, goals, scaleout, sections  # noqa: E402
from replayflow.settings import Settings  # noqa: E402

SECTIONS = ("fold", "relay", "engine", "partitions", "verification", "scale_out", "admission")
KAFKA_SECTIONS = set(SECTIONS) - {"fold"}


def _rates(text: str) -> list[tuple[float, float]]:
    """'100x20,500x10' -> [(100, 20), (500, 10)]: rate per second x seconds."""
    out = []
    for part in text.split(","):
        rate, _, seconds = part.partition("x")
        out.append((float(rate), float(seconds or 10)))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("-n", type=int, default=20_000, help="workflows in a burst")
    parser.add_argument(
        "--bursts",
        type=int,
        default=3,
        help="bursts run one after another; the goals check the last (the first ones "
        "find the broker compiling and the processes' caches cold)",
    )
    parser.add_argument("--rates", type=_rates, default=_rates("100x20,500x10"))
    parser.add_argument(
        "--rate-runs",
        type=int,
        default=2,
        help="runs of each fixed rate in the engine section, one after another; the "
        "goals check the last (the first one after the bursts finds the broker cooler)",
    )
    parser.add_argument("--partitions", type=int, default=12)
    parser.add_argument("--few-partitions", type=int, default=4)
    parser.add_argument("--relay-records", type=int, default=100_000)
    parser.add_argument("--long-instances", type=int, default=10)
    parser.add_argument("--long-steps", type=int, default=5000)
    parser.add_argument("--queued", type=int, default=10_000, help="admission: instances")
    parser.add_argument("--limit", type=int, default=100, help="admission: concurrency limit")
    parser.add_argument("--only", default=",".join(SECTIONS), help="sections to run")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks/results/bench.json")
    args = parser.parse_args()
    only = set(args.only.split(","))

    base = Settings.from_env()
    gc.freeze()  # the client's start-up objects are never garbage: stop scanning them
    results: dict[str, Any] = {
        "command": " ".join(["benchmarks/run.py", *sys.argv[1:]]),
        "started": time.strftime("%Y-%m-%d %H:%M:%S"),
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
        },
        "partitions": args.partitions,
        "partitions_few": args.few_partitions,
    }
    say = sections._say
    if "fold" in only:
        say("fold alone: three-step workflows, then long instances ...")
        results["fold"] = sections.fold_alone(args.n, args.long_instances, args.long_steps)
        say(f"  {json.dumps(results['fold'])}")
    if only & KAFKA_SECTIONS:
        # A broker fresh from its start spends its first minutes compiling (its JIT took
        # most of a core), and whatever runs then is measured on a slow broker: the
        # relay's p50 at 100 chains/s was 36-43 ms then, about 20 ms on a warm broker,
        # and the engine's first burst after a shorter warm-up, or none, ran 10-30 %
        # slower. So the relay's whole section runs first, unmeasured, and again
        # after the engine's sections, measured: every figure meets a warm broker.
        results["broker_verifies_transactional_writes"] = broker_settings.verification(base)
        say("broker warm-up: the relay's section, not kept ...")
        sections.relay_throughput(base, args.relay_records, args.partitions)
        sections.relay_workflows(base, args.partitions, args.n, args.rates)
    if "engine" in only:
        results["engine"] = sections.engine_runs(
            base,
            args.partitions,
            args.n,
            args.rates,
            args.long_instances,
            args.long_steps,
            bursts=args.bursts,
            rate_runs=args.rate_runs,
        )
    if "partitions" in only:
        say(f"engine on {args.few_partitions} partitions: the fixed rates ...")
        results["few_partitions"] = sections.engine_runs(
            base, args.few_partitions, 0, args.rates, 0, 0
        )
    if "verification" in only:
        say(
            "engine on a broker that does not verify transactional writes "
            f"({broker_settings.VERIFICATION}=false): the fixed rates ..."
        )
        with broker_settings.verification_set(base, False):
            results["verification_off"] = sections.engine_runs(
                base, args.partitions, 0, args.rates, 0, 0
            )
    if "relay" in only:
        say(f"relay: {args.relay_records:,} records through a bare transactional relay ...")
        results["relay"] = {
            "throughput": sections.relay_throughput(base, args.relay_records, args.partitions)
        }
        say(f"  {json.dumps(results['relay']['throughput'])}")
        say("relay: the three-step path with no engine (relay + echo) ...")
        results["relay"].update(sections.relay_workflows(base, args.partitions, args.n, args.rates))
        for key, figures in results["relay"].items():
            if key not in ("throughput", "transaction_ms"):
                say(f"  {key}: " + sections._brief(figures).strip())
    if "scale_out" in only:
        say(f"scale-out: {args.n:,} starts folded by one, then two orchestrators (no worker) ...")
        results["scale_out"] = {
            "fold_one": scaleout.fold_capacity(base, args.partitions, 1, args.n),
            "fold_two": scaleout.fold_capacity(base, args.partitions, 2, args.n),
        }
        say(f"scale-out: burst of {args.n:,} with two orchestrators ...")
        results["scale_out"]["burst_two"] = scaleout.two_orchestrators_burst(
            base, args.partitions, args.n
        )
    if "admission" in only:
        say(f"admission: {args.queued:,} instances limited to {args.limit} at once ...")
        results["admission"] = scaleout.admission_drain(
            base, args.partitions, args.queued, args.limit
        )
        say("admission: the same through the one limiter (REPLAYFLOW_ADMISSION=global) ...")
        results["admission_global"] = scaleout.admission_drain(
            base, args.partitions, args.queued, args.limit, admission="global"
        )
        say("admission: the same with two orchestrators ...")
        results["admission_two"] = scaleout.admission_drain(
            base, args.partitions, args.queued, args.limit, orchestrators=2
        )
    results["percent_of_relay"] = percent_of_relay(results)
    checked = goals.check(results)
    results["goals"] = [
        {"goal": g.name, "figure": g.figure, "target": g.target, "met": g.met} for g in checked
    ]
    report(results, checked)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"written to {args.out}")


def percent_of_relay(results: dict[str, Any]) -> dict[str, Any]:
    relay, engine = results.get("relay", {}), results.get("engine", {})
    out: dict[str, Any] = {}
    throughput = relay.get("throughput", {}).get("records_per_s")
    burst = engine.get("burst", {})
    if throughput and burst:
        out["commands_per_s_of_relay_records_per_s"] = round(
            100 * burst["commands_per_s"] / throughput, 1
        )
    if relay.get("burst") and burst:
        out["burst_workflows_per_s"] = round(
            100 * burst["workflows_per_s"] / relay["burst"]["workflows_per_s"], 1
        )
    for key in engine:
        if key.startswith("rate_") and key in relay:
            out[f"{key}_p50_latency_relay_over_engine"] = round(
                100 * relay[key]["latency"]["p50_ms"] / engine[key]["latency"]["p50_ms"], 1
            )
    return out


def report(results: dict[str, Any], checked: list[goals.Goal]) -> None:
    print()
    print("== summary ==")
    relay, engine = results.get("relay", {}), results.get("engine", {})
    for name, figures in (
        [("relay " + k, v) for k, v in relay.items() if k not in ("throughput", "transaction_ms")]
        + [
            ("engine " + k, v)
            for k, v in engine.items()
            if k in ("burst",) or k.startswith("rate_")
        ]
        + [
            (f"engine on {results['partitions_few']} partitions {k}", v)
            for k, v in results.get("few_partitions", {}).items()
            if k.startswith("rate_")
        ]
        + [
            (f"engine, broker not verifying transactional writes, {k}", v)
            for k, v in results.get("verification_off", {}).items()
            if k.startswith("rate_")
        ]
        + [("two orchestrators burst", results.get("scale_out", {}).get("burst_two"))]
    ):
        if figures:
            print(f"{name}: " + sections._brief(figures).strip())
    few = {
        f"{k} on {results.get('partitions_few')} partitions": v
        for k, v in results.get("few_partitions", {}).items()
    }
    unverified = {
        f"{k}, broker not verifying transactional writes": v
        for k, v in results.get("verification_off", {}).items()
    }
    for key, figures in {**engine, **few, **unverified}.items():
        if isinstance(figures, dict) and "breakdown_ms" in figures:
            print(f"latency breakdown, engine {key}:")
            for line in breakdown.table(figures["breakdown_ms"]):
                print(line)
    for i, run in enumerate(engine.get("burst_runs", []), 1):
        print(f"burst {i} of {len(engine['burst_runs'])}: {json.dumps(run)}")
    for key, runs in engine.get("fixed_rate_runs", {}).items():
        for i, run in enumerate(runs, 1):
            print(f"{key} run {i} of {len(runs)}: {json.dumps(run)}")
    if "long" in engine:
        print(f"long instances: {json.dumps(engine['long']['windows'])}")
    if "scale_out" in results:
        so = results["scale_out"]
        each = {
            key: ", ".join(f"{r:,.0f}" for r in so[key].get("starts_folded_per_s_each", []))
            for key in ("fold_one", "fold_two")
        }
        print(
            "fold capacity (median of the bursts): one orchestrator "
            f"{so['fold_one']['starts_folded_per_s']:,.0f} starts/s ({each['fold_one']}), two "
            f"{so['fold_two']['starts_folded_per_s']:,.0f} starts/s ({each['fold_two']})"
        )
    if "admission" in results:
        adm = results["admission"]
        print(
            f"admission: {adm['admissions_per_s']:,.0f} admissions/s, busiest partition "
            f"{100 * adm['busiest_partition_share']:.0f} % of commands"
        )
        if adm.get("breakdown_ms"):
            for line in breakdown.table(adm["breakdown_ms"], steps=1):
                print(line)
    if "admission_global" in results:
        glob = results["admission_global"]
        print(
            f"admission through the one limiter: {glob['admissions_per_s']:,.0f} admissions/s, "
            f"busiest partition {100 * glob['busiest_partition_share']:.0f} % of commands"
        )
    if "admission_two" in results:
        print(
            "admission with two orchestrators: "
            f"{results['admission_two']['admissions_per_s']:,.0f} admissions/s"
        )
    print(f"percent of the relay: {json.dumps(results['percent_of_relay'])}")
    print("goals:")
    for goal in checked:
        print(goal.line())


if __name__ == "__main__":
    main()
