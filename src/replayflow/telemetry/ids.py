"""Trace ids of workflow instances and the W3C trace context in Kafka headers.

An instance's trace id is derived from its instance id (the first 16 bytes of a
SHA-256), so the fold stores nothing for tracing and stays a pure function of its
input: every process (orchestrator, worker, API, UI, a `replayflow` command) computes
the same id for an instance, a sleep of a month or a restarted orchestrator does not
break the trace, and a log line or a UI page can link to the trace from the id alone.

The root span id of an instance is derived the same way; the orchestrator emits that
root span ("workflow <name>") when the start commits, and every task it produces
carries `traceparent: 00-<instance trace>-<root span>-01`, the parent of the worker's
span for that attempt. Nothing here depends on the OpenTelemetry SDK.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence

TRACEPARENT = "traceparent"

# Kafka headers as confluent-kafka hands them over (a list of pairs), or a mapping.
Headers = Sequence[tuple[str, bytes | str | None]] | Mapping[str, bytes | str | None]
# Headers as we hand them to Producer.produce.
KafkaHeaders = list[tuple[str, str | bytes | None]]


def _pairs(headers: Headers | None) -> Sequence[tuple[str, bytes | str | None]]:
    if headers is None:
        return ()
    if isinstance(headers, Mapping):
        return list(headers.items())
    return headers


def _derive(label: bytes, instance_id: str, size: int) -> int:
    digest = hashlib.sha256(label + instance_id.encode()).digest()
    return int.from_bytes(digest[:size], "big") or 1  # all zeros is the invalid id


def instance_trace_id(instance_id: str) -> int:
    """The 128-bit trace id of an instance: the first 16 bytes of sha256(instance id)."""
    return int.from_bytes(hashlib.sha256(instance_id.encode()).digest()[:16], "big") or 1


def root_span_id(instance_id: str, run: int = 0) -> int:
    """The 64-bit span id of an instance's root span (of its `run`-th restart)."""
    label = b"replayflow/root/" if run == 0 else f"replayflow/root/{run}/".encode()
    return _derive(label, instance_id, 8)


def format_traceparent(trace_id: int, span_id: int, sampled: bool = True) -> str:
    return f"00-{trace_id:032x}-{span_id:016x}-{'01' if sampled else '00'}"


def instance_traceparent(instance_id: str) -> str:
    """The traceparent a task of this instance carries: the instance's root span."""
    return format_traceparent(instance_trace_id(instance_id), root_span_id(instance_id))


def parse_traceparent(value: str | bytes | None) -> tuple[int, int, bool] | None:
    """(trace id, span id, sampled) of a W3C traceparent; None when it is not valid."""
    if value is None:
        return None
    if isinstance(value, bytes):
        try:
            value = value.decode("ascii")
        except UnicodeDecodeError:
            return None
    parts = value.strip().split("-")
    if len(parts) < 4 or len(parts[0]) != 2 or parts[0] == "ff":
        return None
    version, trace_hex, span_hex, flags_hex = parts[:4]
    if version == "00" and len(parts) != 4:
        return None
    if len(trace_hex) != 32 or len(span_hex) != 16 or len(flags_hex) != 2:
        return None
    try:
        trace_id, span_id, flags = int(trace_hex, 16), int(span_hex, 16), int(flags_hex, 16)
        int(version, 16)
    except ValueError:
        return None
    if (
        trace_id == 0
        or span_id == 0
        or trace_hex != trace_hex.lower()
        or span_hex != span_hex.lower()
    ):
        return None
    return trace_id, span_id, bool(flags & 1)


def header(headers: Headers | None, name: str) -> bytes | None:
    """The last value of header `name` (Kafka allows repeats; the last one wins)."""
    found: bytes | None = None
    for key, value in _pairs(headers):
        if key == name:
            found = value.encode() if isinstance(value, str) else value
    return found


def headers_to_carrier(headers: Headers | None) -> dict[str, str]:
    """Kafka headers as a text carrier for an OpenTelemetry propagator."""
    carrier: dict[str, str] = {}
    for key, value in _pairs(headers):
        if value is None:
            continue
        if isinstance(value, bytes):
            try:
                value = value.decode("utf-8")
            except UnicodeDecodeError:
                continue
        carrier[key.lower()] = value
    return carrier


def carrier_to_headers(carrier: dict[str, str]) -> KafkaHeaders:
    return [(key, value.encode()) for key, value in carrier.items()]
