"""replayflow: durable workflows for Python, event-sourced on Apache Kafka.

import replayflow as rf

@rf.step(retry=rf.Retry(limit=5, delay="10s"))
async def charge(order): ...

@rf.workflow(name="checkout", version="1")
async def checkout(ctx: rf.Context, order):
    return await ctx.step("charge", charge, order)
"""

from importlib.metadata import version as _distribution_version

from replayflow.core.context import Context
from replayflow.core.definitions import Registry, StepDef, WorkflowDef, step, workflow
from replayflow.core.errors import (
    Cancelled,
    EventTimeout,
    LimitExceeded,
    NonDeterminismError,
    NonRetryableError,
    PayloadError,
    ReplayflowError,
    StepFailed,
    ValidationError,
    WorkflowError,
)
from replayflow.core.policy import Retry
from replayflow.core.schedule_declaration import Schedule
from replayflow.core.state import Status
from replayflow.core.triggers import KafkaTrigger
from replayflow.execution import StepContext, current_step

# Loaded on first use: `import replayflow` stays free of Kafka clients for code that only
# declares workflows; rf.Client, rf.AsyncClient and rf.testing work as attributes.
_LAZY = {"Client": "replayflow.client", "AsyncClient": "replayflow.client"}


def __getattr__(name: str) -> object:
    import importlib

    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    if name == "testing":
        return importlib.import_module("replayflow.testing")
    raise AttributeError(f"module 'replayflow' has no attribute {name!r}")


__all__ = [
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
]

# The version is declared once, in pyproject.toml; the installed distribution carries it.
__version__ = _distribution_version("replayflow")
