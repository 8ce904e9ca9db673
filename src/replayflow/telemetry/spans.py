"""Spans with derived ids, and the parent context of a task."""

from __future__ import annotations

import contextvars
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from opentelemetry import trace as trace_api
from opentelemetry.context import Context
from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags

from replayflow.telemetry.ids import (
    TRACEPARENT,
    Headers,
    header,
    instance_trace_id,
    parse_traceparent,
    root_span_id,
)

# (trace id, span id) the next span of our tracer must take, set around one start_span.
_forced: contextvars.ContextVar[tuple[int, int] | None] = contextvars.ContextVar(
    "replayflow_forced_ids", default=None
)


class _DerivedIds:
    """Wraps the SDK tracer's IdGenerator: ids come from `_forced` while it is set."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner

    def generate_span_id(self) -> int:
        forced = _forced.get()
        return forced[1] if forced is not None else int(self.inner.generate_span_id())

    def generate_trace_id(self) -> int:
        forced = _forced.get()
        return forced[0] if forced is not None else int(self.inner.generate_trace_id())

    def is_trace_id_random(self) -> bool:
        if _forced.get() is not None:
            return False
        check = getattr(self.inner, "is_trace_id_random", None)
        return bool(check()) if check is not None else False


def wrap_id_generator(tracer: Any) -> None:
    """Let our (SDK) tracer create spans with derived ids. Only this tracer changes; an
    application's own tracers keep their generator."""
    inner = getattr(tracer, "id_generator", None)
    if inner is not None and not isinstance(inner, _DerivedIds):
        tracer.id_generator = _DerivedIds(inner)


@contextmanager
def forced_ids(trace_id: int, span_id: int) -> Iterator[None]:
    token = _forced.set((trace_id, span_id))
    try:
        yield
    finally:
        _forced.reset(token)


def remote_context(trace_id: int, span_id: int, sampled: bool = True) -> Context:
    span_context = SpanContext(
        trace_id,
        span_id,
        is_remote=True,
        trace_flags=TraceFlags(TraceFlags.SAMPLED if sampled else 0),
    )
    return trace_api.set_span_in_context(NonRecordingSpan(span_context))


def instance_root(instance_id: str, run: int = 0) -> SpanContext:
    return SpanContext(
        instance_trace_id(instance_id),
        root_span_id(instance_id, run),
        is_remote=True,
        trace_flags=TraceFlags(TraceFlags.SAMPLED),
    )


def task_parent(instance_id: str, headers: Headers | None) -> Context:
    """The parent of a step attempt's span: the task's traceparent header, or (a task
    from a producer that added none) the instance's root span, derived from its id."""
    parsed = parse_traceparent(header(headers, TRACEPARENT))
    if parsed is not None:
        return remote_context(*parsed)
    return remote_context(instance_trace_id(instance_id), root_span_id(instance_id))
