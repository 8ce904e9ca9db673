"""Structured logs: JSON lines that carry instance and step ids.

Log calls that concern one instance pass its ids with `extra=`:

    log.warning("step failed", extra=fields(instance_id=..., step=..., attempt=...))

With REPLAYFLOW_LOG_FORMAT=json, `configure_logging()` gives the root handlers a
JsonFormatter: one object per line with ts, level, logger, message, those fields when
present, and trace_id / span_id (the current span's, or the instance's derived trace id)
so a log line leads to its trace. Without it, logs stay plain text.
"""

from __future__ import annotations

import json
import logging
import os
import time
from typing import Any

from replayflow.telemetry.ids import instance_trace_id

FIELDS = ("instance_id", "workflow", "step", "function", "attempt", "partition", "offset")
LOG_FORMAT_ENV = "REPLAYFLOW_LOG_FORMAT"


def fields(instance_id: str | None = None, **more: Any) -> dict[str, Any]:
    """The `extra=` of a log call about one instance (None values are left out)."""
    out = {key: value for key, value in more.items() if value is not None}
    if instance_id is not None:
        out["instance_id"] = instance_id
    return out


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        data: dict[str, Any] = {
            "ts": self._timestamp(record.created),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        attrs = record.__dict__
        for name in FIELDS:
            value = attrs.get(name)
            if value is not None:
                data[name] = value
        trace_id, span_id = _current_span_ids()
        if trace_id is None and isinstance(data.get("instance_id"), str):
            trace_id = f"{instance_trace_id(data['instance_id']):032x}"
        if trace_id is not None:
            data["trace_id"] = trace_id
        if span_id is not None:
            data["span_id"] = span_id
        if record.exc_info:
            data["exc"] = self.formatException(record.exc_info)
        if record.stack_info:
            data["stack"] = self.formatStack(record.stack_info)
        return json.dumps(data, default=str, ensure_ascii=False)

    @staticmethod
    def _timestamp(created: float) -> str:
        whole = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(created))
        return f"{whole}.{int(created % 1 * 1000):03d}Z"


def _current_span_ids() -> tuple[str | None, str | None]:
    try:
        from opentelemetry import trace
    except ImportError:  # pragma: no cover - opentelemetry-api is a dependency
        return None, None
    context = trace.get_current_span().get_span_context()
    if not context.is_valid:
        return None, None
    return f"{context.trace_id:032x}", f"{context.span_id:016x}"


def json_logs_wanted() -> bool:
    return os.environ.get(LOG_FORMAT_ENV, "").strip().lower() == "json"


def configure_logging(level: int | None = None) -> None:
    """Give the root logger's handlers the JSON formatter when REPLAYFLOW_LOG_FORMAT=json
    (adds a stderr handler if there is none). Call after logging.basicConfig()."""
    root = logging.getLogger()
    if level is not None:
        root.setLevel(level)
    if not json_logs_wanted():
        return
    if not root.handlers:
        root.addHandler(logging.StreamHandler())
    for handler in root.handlers:
        handler.setFormatter(JsonFormatter())
