"""examples/pipeline.yaml runs on the in-memory engine."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from replayflow import dsl
from replayflow.testing import Environment

EXAMPLES = Path(__file__).parents[3] / "examples"
sys.path.insert(0, str(EXAMPLES.parent))

from examples.dsl_pipeline import DOCUMENT, OrdersService, write_report  # noqa: E402


def test_pipeline(tmp_path: Path) -> None:
    workflow = dsl.workflow_from_file(DOCUMENT)
    env = Environment(workflow, write_report)
    report = tmp_path / "report.json"
    with OrdersService() as service:
        handle = env.start(
            workflow.name, {"source": f"{service.url}/orders", "report": str(report)}
        )
        output = handle.result()
    assert output == {"report": str(report), "summaryAccepted": True}
    written = json.loads(report.read_text())
    assert written["revenue"] == 46
    assert {c["customer"]: c["total"] for c in written["customers"]} == {"ada": 25, "cy": 21}
    assert service.summaries == [{"customers": 2, "revenue": 46}]
    assert env.replay(handle.id).identical
