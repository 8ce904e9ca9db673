"""Short versions of the broker scenarios of `make chaos` (tests/chaos/scenarios.py):
a broker (or three-node cluster) of the test's own, started through kafka.sh on free
ports in a tmp folder; an orchestrator and a worker; a broker node killed with -9 and
restarted. The checks read the topics: every workflow completes once, histories
gap-free, step results accepted once, no dead letter, and completions resume within
10 s of the broker answering again. Every process and broker is stopped by pid."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from tests.chaos.scenarios import SCENARIOS, Kill, Run


def _run(name: str, tmp_path: Path, kills: tuple[Kill, ...]) -> None:
    scenario = replace(SCENARIOS[name], total=300, kills=kills)
    result = Run(scenario, tmp_path / name, stall_limit=30, time_limit=150).execute()
    print("\n".join(result.events))
    print(result.line())
    assert result.verdict == "PASS", result.line()


def test_single_broker_killed_and_restarted(tmp_path: Path) -> None:
    _run("broker-restart", tmp_path, (Kill(0.3, "broker:1", 2.0),))


def test_one_node_of_three_killed_and_restarted(tmp_path: Path) -> None:
    _run("cluster-node-kills", tmp_path, (Kill(0.3, "broker:2", 2.0),))
