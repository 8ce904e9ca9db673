"""The public API is what `import replayflow as rf` offers: a change to it is deliberate."""

from __future__ import annotations

import subprocess
import sys

import replayflow as rf

EXPORTS = {
    "AsyncClient",
    "Cancelled",
    "Client",
    "Context",
    "EventTimeout",
    "KafkaTrigger",
    "LimitExceeded",
    "NonDeterminismError",
    "NonRetryableError",
    "PayloadError",
    "Registry",
    "ReplayflowError",
    "Retry",
    "Schedule",
    "Status",
    "StepContext",
    "StepDef",
    "StepFailed",
    "ValidationError",
    "WorkflowDef",
    "WorkflowError",
    "current_step",
    "step",
    "workflow",
}


def test_the_export_list_is_locked() -> None:
    assert set(rf.__all__) == EXPORTS
    for name in EXPORTS:
        assert getattr(rf, name) is not None


def test_the_testing_module_is_reachable_as_an_attribute() -> None:
    assert rf.testing.Environment.__name__ == "Environment"


def test_declaring_workflows_does_not_load_kafka_clients() -> None:
    code = "import sys, replayflow; print('confluent_kafka' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
