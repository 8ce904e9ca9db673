"""`make bench-scale` measures what it says on a small run: its queued phase sees every
instance queued and drained, with the engine's sharded admission and with the one
limiter. (Sharded, a shard and its instances exchange their slot commands within the
batch and none reaches the commands topic; the phase once waited for them there and
timed out without measuring anything.)"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.kafka

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    ("admission", "shown"), [("sharded", "sharded"), ("global", "one limiter")]
)
def test_queued_phase_queues_and_drains(
    kafka_bootstrap: str, tmp_path: Path, admission: str, shown: str
) -> None:
    out = tmp_path / "scale.json"
    queued, limit = 240, 24  # a limit of at least the 12 partitions: sharded
    run = subprocess.run(
        [
            sys.executable,
            "benchmarks/scale.py",
            "--phases",
            "queued",
            "-q",
            str(queued),
            "--limit",
            str(limit),
            "--admission",
            admission,
            "--drain-seconds",
            "0",
            "--phase-timeout",
            "180",
            "--settle",
            "0",
            "--out",
            str(out),
        ],
        cwd=REPO,
        env={**os.environ, "KAFKA_BOOTSTRAP": kafka_bootstrap},
        capture_output=True,
        text=True,
        timeout=400,
    )
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    result = json.loads(out.read_text())["queued"]
    assert result["admission"] == shown
    assert result["all_queued"] is True
    assert result["queued_facts"] == queued
    # Without a worker no instance ends, so no more than the limit are admitted (the one
    # limiter's grants may still be on their way, all of them, when the queue is complete).
    assert result["admitted_while_no_worker"] <= limit
    assert result["drained_completely"] is True
    assert result["drain"]["still_queued_at_end"] == 0
    if admission == "global":
        assert result["acquire_slot_commands"] == queued
    else:
        assert result["admitted_while_no_worker"] == limit
        assert "acquire_slot_commands" not in result
