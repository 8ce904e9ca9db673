"""Serverless Workflow DSL 1.0: load, validate, deploy and interpret YAML/JSON workflows
on the replayflow core (see docs/dsl.md).

    from replayflow import dsl
    wf = dsl.workflow_from_file("pipeline.yaml")      # a WorkflowDef; validates first
    env = rf.testing.Environment(wf)
    env.start(wf.name, {...}).result()

Names are imported on first use, so `replayflow.dsl.records` (which the codec loads)
stays cheap.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "DocumentInvalid": "replayflow.dsl.validate",
    "Report": "replayflow.dsl.validate",
    "load_valid": "replayflow.dsl.validate",
    "validate_file": "replayflow.dsl.validate",
    "validate_source": "replayflow.dsl.validate",
    "validate_text": "replayflow.dsl.validate",
    "LoadError": "replayflow.dsl.loader",
    "Source": "replayflow.dsl.loader",
    "parse_text": "replayflow.dsl.loader",
    "read_file": "replayflow.dsl.loader",
    "WorkflowFault": "replayflow.dsl.errors",
    "problem_of": "replayflow.dsl.errors",
    "build": "replayflow.dsl.interpreter",
    "capture_events": "replayflow.dsl.builtins",
    "event_name": "replayflow.dsl.tasks.events",
    "DocumentStore": "replayflow.dsl.documents",
    "deploy": "replayflow.dsl.documents",
    "workflow_from_text": "replayflow.dsl.documents",
    "workflow_from_file": "replayflow.dsl.documents",
    "workflow_from_dict": "replayflow.dsl.documents",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'replayflow.dsl' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
