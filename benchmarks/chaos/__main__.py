"""`make chaos [SCENARIO=name]`: run chaos scenarios, print the kill schedule, the
goals, one verdict line per scenario, and write .data/chaos/<scenario>.json.

    python -m benchmarks.chaos [all|list|NAME ...] [--scale F] [--stall-limit S]
                                [--time-limit S]

The scenarios and their checks live in tests/chaos/scenarios.py (shared with the
short versions in the broker tests). Every broker a scenario kills is started by the
run itself (kafka.sh, free ports, data under .data/chaos/<scenario>/); the process
scenarios use KAFKA_BOOTSTRAP when it is set, else a broker of their own too.
Exit status 0 only when every scenario passed.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import sys
from dataclasses import asdict
from pathlib import Path

from tests.chaos.scenarios import SCENARIOS, Run, goals

ROOT = Path(__file__).resolve().parents[2]


def _jsonable(value: object) -> object:
    if isinstance(value, float) and math.isinf(value):
        return None  # "never resumed"
    if isinstance(value, list):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    return value


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="make chaos", description=__doc__.splitlines()[0])
    parser.add_argument("scenarios", nargs="*", default=["all"])
    parser.add_argument("--scale", type=float, default=1.0, help="workload size factor")
    parser.add_argument("--stall-limit", type=float, default=90.0, help="seconds")
    parser.add_argument("--time-limit", type=float, default=1200.0, help="seconds per scenario")
    parser.add_argument("--out", type=Path, default=ROOT / ".data" / "chaos")
    args = parser.parse_args(argv)
    names = list(SCENARIOS) if args.scenarios in (["all"], []) else args.scenarios
    if names == ["list"]:
        for scenario in SCENARIOS.values():
            print(f"{scenario.name:<20} {scenario.description}")
        return 0
    unknown = [n for n in names if n not in SCENARIOS]
    if unknown:
        parser.error(f"unknown scenario(s) {unknown}; one of {sorted(SCENARIOS)}")
    print("goals:")
    for goal in goals():
        print(f"  {goal}")
    verdicts = []
    for name in names:
        scenario = SCENARIOS[name].scaled(args.scale)
        print()
        for line in scenario.schedule():
            print(line)
        folder = args.out / name
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True, exist_ok=True)
        # librdkafka writes a line per failed connection to fd 2 while a broker is
        # down: into the scenario's folder, not over the schedule and the verdict.
        sys.stderr.flush()
        saved = os.dup(2)
        with open(folder / "stderr.log", "ab") as log:
            os.dup2(log.fileno(), 2)
            try:
                result = Run(scenario, folder, args.stall_limit, args.time_limit).execute()
            finally:
                sys.stderr.flush()
                os.dup2(saved, 2)
                os.close(saved)
        args.out.mkdir(parents=True, exist_ok=True)
        out = args.out / f"{name}.json"
        out.write_text(json.dumps(_jsonable(asdict(result)), indent=2) + "\n")
        print(result.line())
        print(f"  -> {out.relative_to(ROOT) if out.is_relative_to(ROOT) else out}")
        verdicts.append(result.verdict)
    print()
    passed = verdicts.count("PASS")
    print(f"chaos: {passed}/{len(verdicts)} scenarios passed")
    return 0 if passed == len(verdicts) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
