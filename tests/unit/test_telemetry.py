"""Telemetry's pure parts: trace ids, traceparent headers, JSON logs, the instance
gauge's counting (from decisions and from a store), spans and counters from decisions."""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
from opentelemetry.trace import StatusCode

import replayflow as rf
from replayflow.core.decide import Decider
from replayflow.core.decision import Decision
from replayflow.core.messages import (
    Completion,
    ErrorInfo,
    StartWorkflow,
    StepFailed,
    WorkflowStarted,
)
from replayflow.core.state import Call, CallKind, CallStatus, Info, InstanceState, Status
from replayflow.processors.fold import PartitionFolder
from replayflow.store import counts, keys, serde
from replayflow.store.partition import PartitionStore
from replayflow.telemetry import ids
from replayflow.telemetry.logs import JsonFormatter, configure_logging, fields
from replayflow.telemetry.orchestrator import (
    NULL_OBSERVER,
    OrchestratorTelemetry,
    PartitionObserver,
    classify,
)
from replayflow.telemetry.setup import Telemetry
from replayflow.telemetry.spans import task_parent
from replayflow.telemetry.testing import InMemoryTelemetry

# -- ids and headers --------------------------------------------------------------------


def test_trace_id_is_the_first_16_bytes_of_sha256_of_the_instance_id() -> None:
    expected = int.from_bytes(hashlib.sha256(b"order-1").digest()[:16], "big")
    assert ids.instance_trace_id("order-1") == expected
    assert ids.instance_trace_id("order-1") != ids.instance_trace_id("order-2")
    assert ids.root_span_id("order-1") == ids.root_span_id("order-1") != 0
    assert ids.root_span_id("order-1") < 2**64


def test_traceparent_round_trip() -> None:
    text = ids.instance_traceparent("order-1")
    assert text == (
        f"00-{ids.instance_trace_id('order-1'):032x}-{ids.root_span_id('order-1'):016x}-01"
    )
    assert ids.parse_traceparent(text) == (
        ids.instance_trace_id("order-1"),
        ids.root_span_id("order-1"),
        True,
    )
    assert ids.parse_traceparent(text.encode()) == ids.parse_traceparent(text)
    assert (
        ids.format_traceparent(1, 2, sampled=False)
        == "00-00000000000000000000000000000001-0000000000000002-00"
    )


@pytest.mark.parametrize(
    "bad",
    [
        None,
        "",
        "garbage",
        b"\xff\xfe",
        "00-00000000000000000000000000000000-0000000000000002-01",  # zero trace id
        "00-00000000000000000000000000000001-0000000000000000-01",  # zero span id
        "00-0000000000000000000000000000001-0000000000000002-01",  # short trace id
        "ff-00000000000000000000000000000001-0000000000000002-01",  # forbidden version
        "00-0000000000000000000000000000000G-0000000000000002-01",  # not hex
        "00-000000000000000000000000000000AB-0000000000000002-01",  # upper case
        "00-00000000000000000000000000000001-0000000000000002-01-extra",
    ],
)
def test_invalid_traceparents_are_ignored(bad: str | bytes | None) -> None:
    assert ids.parse_traceparent(bad) is None


def test_a_later_version_may_add_fields() -> None:
    assert ids.parse_traceparent(
        "01-00000000000000000000000000000001-0000000000000002-01-what"
    ) == (1, 2, True)


def test_header_helpers() -> None:
    headers = [("traceparent", b"a"), ("other", None), ("traceparent", "b")]
    assert ids.header(headers, "traceparent") == b"b"  # the last one wins
    assert ids.header(None, "traceparent") is None
    assert ids.header({"traceparent": b"c"}, "traceparent") == b"c"
    assert ids.headers_to_carrier([("TraceParent", b"x"), ("bin", b"\xff"), ("n", None)]) == {
        "traceparent": "x"
    }
    assert ids.carrier_to_headers({"traceparent": "x"}) == [("traceparent", b"x")]


def test_task_parent_prefers_the_header_and_falls_back_to_the_derived_root() -> None:
    from opentelemetry import trace

    derived = trace.get_current_span(task_parent("order-1", None)).get_span_context()
    assert (derived.trace_id, derived.span_id) == (
        ids.instance_trace_id("order-1"),
        ids.root_span_id("order-1"),
    )
    assert derived.is_remote
    given = ids.format_traceparent(7, 9)
    carried = trace.get_current_span(
        task_parent("order-1", [("traceparent", given.encode())])
    ).get_span_context()
    assert (carried.trace_id, carried.span_id) == (7, 9)


# -- logs -------------------------------------------------------------------------------


def _record(**extra: object) -> logging.LogRecord:
    record = logging.LogRecord(
        "replayflow.worker", logging.INFO, __file__, 1, "step %s failed", ("charge",), None
    )
    record.__dict__.update(extra)
    return record


def test_json_log_lines_carry_instance_and_step() -> None:
    line = JsonFormatter().format(
        _record(**fields("order-1", step="charge", attempt=2, workflow=None))
    )
    data = json.loads(line)
    assert data["message"] == "step charge failed"
    assert data["level"] == "INFO" and data["logger"] == "replayflow.worker"
    assert data["instance_id"] == "order-1" and data["step"] == "charge"
    assert data["attempt"] == 2 and "workflow" not in data
    assert data["trace_id"] == f"{ids.instance_trace_id('order-1'):032x}"
    assert data["ts"].endswith("Z")


def test_json_log_lines_without_fields_and_with_an_exception() -> None:
    try:
        raise ValueError("boom")
    except ValueError:
        import sys

        record = _record(exc_info=sys.exc_info())
    data = json.loads(JsonFormatter().format(record))
    assert "instance_id" not in data and "trace_id" not in data
    assert "ValueError: boom" in data["exc"]


def test_json_logs_inside_a_span_use_its_ids() -> None:
    with InMemoryTelemetry() as otel:
        tracer = otel.tracer_provider.get_tracer("t")
        with tracer.start_as_current_span("s") as span:
            data = json.loads(JsonFormatter().format(_record(instance_id="order-1")))
        context = span.get_span_context()
    assert data["trace_id"] == f"{context.trace_id:032x}"
    assert data["span_id"] == f"{context.span_id:016x}"


def test_configure_logging_switches_on_the_env(monkeypatch: pytest.MonkeyPatch) -> None:
    root = logging.getLogger()
    handler = logging.StreamHandler()
    root.addHandler(handler)
    try:
        monkeypatch.delenv("REPLAYFLOW_LOG_FORMAT", raising=False)
        configure_logging()
        assert not isinstance(handler.formatter, JsonFormatter)
        monkeypatch.setenv("REPLAYFLOW_LOG_FORMAT", "json")
        configure_logging()
        assert isinstance(handler.formatter, JsonFormatter)
    finally:
        root.removeHandler(handler)


# -- instance gauge -----------------------------------------------------------------------


def _info(instance_id: str, status: Status = Status.RUNNING, **more: object) -> Info:
    return Info(
        instance_id=instance_id,
        workflow="wf",
        version="1",
        status=status,
        input="null",
        started_at=1_000,
        **more,
    )  # type: ignore[arg-type]


def _call(index: int, kind: CallKind, status: CallStatus, key: str = "s") -> Call:
    return Call(
        index=index,
        kind=kind,
        key=f"{key}{index}",
        status=status,
        function="fn" if kind is CallKind.STEP else "",
    )


def _state(instance_id: str, status: Status = Status.RUNNING, *calls: Call) -> InstanceState:
    return InstanceState(info=_info(instance_id, status), calls=tuple(calls))


STEP_OUT = _call(0, CallKind.STEP, CallStatus.SCHEDULED)
STEP_DONE = _call(0, CallKind.STEP, CallStatus.COMPLETED)
SLEEPING = _call(1, CallKind.SLEEP, CallStatus.WAITING)
BACKOFF = _call(2, CallKind.STEP, CallStatus.BACKOFF)


@pytest.mark.parametrize(
    ("state", "expected"),
    [
        (None, None),
        (_state("a"), "running"),
        (_state("a", Status.RUNNING, STEP_OUT), "running"),
        (_state("a", Status.RUNNING, STEP_DONE, SLEEPING), "waiting"),
        (_state("a", Status.RUNNING, STEP_DONE, SLEEPING, BACKOFF), "running"),
        (_state("a", Status.QUEUED), "queued"),
        (_state("a", Status.SUSPENDED, STEP_OUT), "suspended"),
        (_state("a", Status.COMPLETED, STEP_DONE), None),
        (_state("a", Status.FAILED), None),
    ],
)
def test_classify(state: InstanceState | None, expected: str | None) -> None:
    assert classify(state) == expected


@pytest.fixture
def otel() -> Iterator[InMemoryTelemetry]:
    with InMemoryTelemetry() as installed:
        yield installed


@pytest.fixture
def store(tmp_path: Path) -> Iterator[PartitionStore]:
    opened = PartitionStore(tmp_path / "p0", 0)
    yield opened
    opened.close()


def _write(store: PartitionStore, state: InstanceState) -> None:
    changes: dict[bytes, bytes | None] = {
        keys.info(state.info.instance_id): serde.dump_info(state.info)
    }
    for call in state.calls:
        changes[keys.call(state.info.instance_id, call.index)] = serde.dump_call(call)
    store.write(changes, None)


def _gauge(otel: InMemoryTelemetry) -> dict[str, float]:
    out: dict[str, float] = {}
    for point in otel.metrics().get("replayflow.instances", []):
        status = point.attributes["status"]
        assert status == status.upper()  # labels are upper case, as statuses everywhere
        out[status.lower()] = out.get(status.lower(), 0) + point.value
    return out


def test_a_store_without_counts_is_counted_on_assignment(
    otel: InMemoryTelemetry, store: PartitionStore
) -> None:
    # A store written before the counts existed. Ids with '/' interleave their keys
    # with other instances' call keys.
    _write(store, _state("a", Status.RUNNING, STEP_DONE, SLEEPING))
    _write(store, _state("a/c/b", Status.RUNNING, STEP_OUT))
    _write(store, _state("a/info", Status.QUEUED))
    _write(store, _state("b", Status.COMPLETED, STEP_DONE))
    _write(store, _state("c", Status.SUSPENDED))
    for n in range(200):
        _write(store, _state(f"w{n:03d}", Status.RUNNING, STEP_DONE, SLEEPING))
    assert otel.telemetry is not None
    orchestrator = OrchestratorTelemetry(otel.telemetry, "g")
    folder = PartitionFolder(store, Decider(rf.Registry()))
    observer = orchestrator.partition(0, folder.status_counts)
    assert isinstance(observer, PartitionObserver)
    expected = {"running": 1, "waiting": 201, "queued": 1, "suspended": 1}
    assert _gauge(otel) == expected
    # The first batch writes what was counted, with the changelog like any state.
    assert keys.STATUS_COUNTS in {r.key for r in folder.changelog()}
    folder.committed(None)
    assert PartitionFolder(store, Decider(rf.Registry())).status_counts() == expected
    orchestrator.revoked(0)
    assert _gauge(otel) == {}


@rf.workflow(name="gauge_napper")
async def gauge_napper(ctx: rf.Context) -> int:
    await ctx.sleep("nap", "1h")
    return 1


def test_the_gauge_counts_committed_decisions_and_survives_a_restart(
    otel: InMemoryTelemetry, tmp_path: Path
) -> None:
    assert otel.telemetry is not None
    orchestrator = OrchestratorTelemetry(otel.telemetry, "g")
    decider = Decider(rf.Registry.of(gauge_napper))
    store = PartitionStore(tmp_path / "p1", 1)
    folder = PartitionFolder(store, decider)
    folder.observer = orchestrator.partition(1, folder.status_counts)
    start = StartWorkflow(instance_id="n-1", workflow="gauge_napper", input="null")
    folder.fold(start, 1_000)
    assert _gauge(otel)["waiting"] == 0  # not committed yet
    folder.aborted()  # an aborted batch counts nothing
    folder.fold(start, 1_000)
    folder.fold(StartWorkflow(instance_id="n-2", workflow="gauge_napper", input="null"), 1_000)
    folder.committed(None)
    assert _gauge(otel) == {"running": 0, "waiting": 2, "queued": 0, "suspended": 0}
    assert folder.fire_due_timers(1_000 + 3_600_000, limit=1) == 1  # n-1 wakes and ends
    folder.committed(None)
    assert _gauge(otel)["waiting"] == 1
    store.close()
    # After a restart the counts are read, not recounted: they were written with the state.
    reopened = PartitionStore(tmp_path / "p1", 1)
    assert PartitionFolder(reopened, decider).status_counts()["waiting"] == 1
    reopened.close()


def test_counters_and_spans_from_committed_decisions(
    otel: InMemoryTelemetry, store: PartitionStore
) -> None:
    assert otel.telemetry is not None
    observer = PartitionObserver(otel.telemetry, 0, counts.zero)
    started = _state("x", Status.RUNNING, _call(0, CallKind.STEP, CallStatus.SCHEDULED))
    observer.decided(
        None,
        Decision(
            state=started,
            changed=True,
            events=(
                WorkflowStarted(
                    instance_id="x",
                    seq=1,
                    at=1_000,
                    workflow="wf",
                    version="1",
                    input="null",
                    parent_id="parent-1",
                ),
            ),
        ),
    )
    observer.aborted()  # an aborted batch counts nothing
    assert otel.spans() == []
    observer.decided(
        None,
        Decision(
            state=started,
            changed=True,
            events=(
                WorkflowStarted(
                    instance_id="x",
                    seq=1,
                    at=1_000,
                    workflow="wf",
                    version="1",
                    input="null",
                    parent_id="parent-1",
                ),
            ),
        ),
    )
    observer.committed()
    backoff = _state("x", Status.RUNNING, _call(0, CallKind.STEP, CallStatus.BACKOFF))
    observer.decided(
        started,
        Decision(
            state=backoff,
            changed=True,
            changed_calls=frozenset({0}),
            events=(
                StepFailed(
                    instance_id="x",
                    seq=3,
                    at=2_000,
                    step="s0",
                    attempt=1,
                    error=ErrorInfo("E", "m"),
                    retry_at=3_000,
                ),
            ),
        ),
    )
    failed_info = _info("x", Status.FAILED, error=ErrorInfo("E", "m"), ended_at=4_000)
    ended = InstanceState(info=failed_info, calls=backoff.calls)
    observer.decided(
        backoff,
        Decision(
            state=ended,
            changed=True,
            completion=Completion(
                instance_id="x",
                workflow="wf",
                version="1",
                status="FAILED",
                at=4_000,
                error=ErrorInfo("E", "m"),
            ),
        ),
    )
    observer.committed()

    metrics = otel.metrics()
    assert [(p.attributes, p.value) for p in metrics["replayflow.workflows.started"]] == [
        ({"workflow": "wf"}, 1)
    ]
    assert [(p.attributes, p.value) for p in metrics["replayflow.step.retries"]] == [
        ({"workflow": "wf", "function": "fn"}, 1)
    ]
    assert [(p.attributes, p.value) for p in metrics["replayflow.workflows.completed"]] == [
        ({"workflow": "wf", "status": "FAILED"}, 1)
    ]
    assert _gauge(otel) == {"running": 0, "waiting": 0, "queued": 0, "suspended": 0}

    (root,) = otel.spans("workflow wf")
    assert (root.context.trace_id, root.context.span_id) == (
        ids.instance_trace_id("x"),
        ids.root_span_id("x"),
    )
    assert root.parent is None and root.start_time == 1_000 * 1_000_000
    assert [link.context.span_id for link in root.links] == [ids.root_span_id("parent-1")]
    (run,) = otel.spans("run wf")
    assert run.parent is not None and run.parent.span_id == ids.root_span_id("x")
    assert (run.start_time, run.end_time) == (1_000 * 1_000_000, 4_000 * 1_000_000)
    assert run.status.status_code is StatusCode.ERROR
    assert run.attributes is not None and run.attributes["error.type"] == "E"


def test_nothing_happens_without_providers() -> None:
    telemetry = Telemetry()  # the API's global no-op providers
    assert not telemetry.tracing and not telemetry.metrics
    orchestrator = OrchestratorTelemetry(telemetry, "g")
    assert orchestrator.partition(0, object()) is NULL_OBSERVER
    assert orchestrator.task_headers("tasks", b"x") is None
    assert orchestrator.lag is None


def test_task_headers_when_tracing(otel: InMemoryTelemetry) -> None:
    assert otel.telemetry is not None
    orchestrator = OrchestratorTelemetry(otel.telemetry, "g")
    assert orchestrator.task_headers("tasks", b"order-1") == [
        ("traceparent", ids.instance_traceparent("order-1").encode())
    ]
    assert orchestrator.task_headers("history", b"order-1") is None


def test_task_headers_follow_a_ratio_sampler() -> None:
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased

    never = Telemetry(TracerProvider(sampler=ParentBased(TraceIdRatioBased(0.0))), None)
    headers = OrchestratorTelemetry(never, "g").task_headers("tasks", b"order-1")
    assert headers is not None
    assert ids.parse_traceparent(headers[0][1]) == (
        ids.instance_trace_id("order-1"),
        ids.root_span_id("order-1"),
        False,
    )
