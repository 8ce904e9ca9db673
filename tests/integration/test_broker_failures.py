"""Short versions of the broker scenarios of `make chaos` (tests/chaos/scenarios.py):
a broker (or three-node cluster) of the test's own, started through kafka.sh on free
ports in a tmp folder; an orchestrator and a worker; a broker node killed with -9 and
restarted. The checks read the topics: every workflow completes once, histories
gap-free, step results accepted once, no dead letter, and completions resume within
10 s of the broker answering again. Every process and broker is stopped by pid."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from tests.chaos.scenarios import SCENARIOS, Kill, Run


def _run(name: str, tmp_path: Path, kills: tuple[Kill, ...]) -> None:
    scenario = replace(SCENARIOS[name], total=300, kills=kills)
    result = Run(scenario, tmp_path / name, stall_limit=30, time_limit=150).execute()
    print("\n".join(result.events))
    assert result.verdict == "PASS", result.line()


@pytest.mark.xfail(
    strict=True,
    raises=AssertionError,
    reason="issue 10 item 1: after the single broker restarts, the orchestrator hangs in "
    "send_offsets_to_transaction and never resumes (no watchdog yet)",
)
def test_single_broker_killed_and_restarted(tmp_path: Path) -> None:
    _run("broker-restart", tmp_path, (Kill(0.3, "broker:1", 2.0),))


# Not strict: today the orchestrator hangs after some node kills and not after others
# (one `make chaos` run passed, the next test run stalled); a strict mark would flip at
# random. Remove the mark with the watchdog of item 1.
@pytest.mark.xfail(
    strict=False,
    raises=AssertionError,
    reason="issue 10 item 1: the orchestrator sometimes hangs in a transactional call "
    "when a cluster node dies",
)
def test_one_node_of_three_killed_and_restarted(tmp_path: Path) -> None:
    _run("cluster-node-kills", tmp_path, (Kill(0.3, "broker:2", 2.0),))
