"""Task semantics on the in-memory engine (rf.testing.Environment)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

import replayflow as rf
from replayflow import dsl
from replayflow.core.errors import WorkflowError
from replayflow.core.messages import StepScheduled, TimerStarted
from replayflow.testing import Environment
from tests.ctk.server import Services

HEAD = """\
document:
  dsl: '1.0.3'
  namespace: test
  name: {name}
  version: '{version}'
"""


def doc(body: str, name: str = "sample", version: str = "1.0.0") -> rf.WorkflowDef:
    return dsl.workflow_from_text(HEAD.format(name=name, version=version) + body)


def run(workflow: rf.WorkflowDef, data: Any = None, *items: Any) -> tuple[Environment, Any]:
    env = Environment(workflow, *items)
    handle = env.start(workflow.name, data)
    return env, handle.result()


def fault_of(workflow: rf.WorkflowDef, data: Any = None, *items: Any) -> dict[str, Any]:
    env = Environment(workflow, *items)
    with pytest.raises(WorkflowError) as caught:
        env.start(workflow.name, data).result()
    assert caught.value.error is not None
    return dsl.problem_of(caught.value.error)


@pytest.fixture(scope="module")
def services() -> Iterator[Services]:
    with Services() as running:
        yield running


def test_http_call_sends_an_idempotency_key_and_records_the_response(services: Services) -> None:
    wf = doc(f"""\
do:
  - getPet:
      call: http
      with:
        method: get
        endpoint: {services.base}/petstore/v2/pet/{{petId}}
""")
    env, output = run(wf, {"petId": 2})
    assert output["name"] == "milou"
    sent = services.requests[-1]
    handle_id = env.states and next(iter(env.states))
    assert sent["headers"]["Idempotency-Key"].startswith(handle_id)
    scheduled = [e for e in env.history(handle_id) if isinstance(e, StepScheduled)]
    assert [s.function for s in scheduled] == ["rf_http_call"]
    assert env.replay(handle_id).identical


def test_try_retries_with_backoff_then_catches(services: Services) -> None:
    wf = doc(f"""\
do:
  - attempt:
      try:
        - call503:
            call: http
            with:
              method: get
              endpoint: {services.base}/httpbin/status/503
      catch:
        errors:
          with:
            type: https://serverlessworkflow.io/spec/1.0.0/errors/communication
            status: 503
        as: failure
        retry:
          delay:
            seconds: 2
          backoff:
            exponential: {{}}
          limit:
            attempt:
              count: 3
        do:
          - keep:
              set:
                status: ${{ $failure.status }}
""")
    env, output = run(wf)
    assert output == {"status": 503}
    instance = next(iter(env.states))
    sleeps = [e for e in env.history(instance) if isinstance(e, TimerStarted)]
    delays = [s.due - s.at for s in sleeps if s.timer.startswith("sleep")]
    assert delays == [2000, 4000, 8000]
    assert env.replay(instance).identical


def test_uncaught_error_keeps_the_task_pointer() -> None:
    problem = fault_of(
        doc("""\
do:
  - outer:
      do:
        - inner:
            raise:
              error:
                type: https://example.com/errors/nope
                status: 422
                title: ${ "No " + .what }
"""),
        {"what": "way"},
    )
    assert problem == {
        "type": "https://example.com/errors/nope",
        "status": 422,
        "title": "No way",
        "instance": "/do/0/outer/do/0/inner",
    }


def test_for_with_while_and_context_export() -> None:
    wf = doc("""\
do:
  - sum:
      for:
        each: n
        in: .numbers
      while: .total < 5
      do:
        - add:
            set:
              total: ${ .total + $n }
            export:
              as: '$context + { last: $n }'
  - report:
      set:
        total: ${ .total }
        last: ${ $context.last }
""")
    _, output = run(wf, {"numbers": [1, 2, 3, 4], "total": 0})
    assert output == {"total": 6, "last": 3}


def test_fork_runs_steps_of_all_branches_together(services: Services) -> None:
    wf = doc(f"""\
do:
  - both:
      fork:
        branches:
          - one:
              call: http
              with:
                method: get
                endpoint: {services.base}/petstore/v2/pet/1
              output:
                as: .name
          - two:
              call: http
              with:
                method: get
                endpoint: {services.base}/petstore/v2/pet/2
              output:
                as: .name
""")
    env, output = run(wf)
    assert output == ["doggie", "milou"]
    instance = next(iter(env.states))
    # Both branches (child instances) start before either result is in.
    history = env.history(instance)
    assert [type(e).__name__ for e in history[1:3]] == ["StepScheduled", "StepScheduled"]
    assert [getattr(e, "function", None) for e in history[1:3]] == ["workflow:sample"] * 2
    branches = [i for i in env.states if i.startswith(instance + "/")]
    assert len(branches) == 2
    for branch in branches:
        scheduled = [e for e in env.history(branch) if isinstance(e, StepScheduled)]
        assert [s.function for s in scheduled] == ["rf_http_call"]
        assert env.replay(branch).identical
    assert env.replay(instance).identical


@rf.step
def add(a: int, b: int) -> int:
    return a + b


def test_call_of_a_python_step_and_wait() -> None:
    wf = doc("""\
do:
  - pause:
      wait:
        minutes: 5
  - plus:
      call: add
      with:
        a: ${ .x }
        b: 2
""")
    _, output = run(wf, {"x": 40}, add)
    assert output == 42


def test_listen_filters_by_correlation() -> None:
    wf = doc("""\
do:
  - waitForOrder:
      listen:
        to:
          one:
            with:
              type: com.example.order
            correlate:
              order:
                from: .data.id
                expect: ${ $workflow.input.order }
""")
    env = Environment(wf)
    handle = env.start(wf.name, {"order": 7})
    name = dsl.event_name("com.example.order")
    env.send_event(
        handle.id, name, {"specversion": "1.0", "type": "com.example.order", "data": {"id": 3}}
    )
    env.send_event(
        handle.id,
        name,
        {"specversion": "1.0", "type": "com.example.order", "data": {"id": 7, "total": 10}},
    )
    assert handle.result() == [{"id": 7, "total": 10}]


def test_task_timeout_faults_with_the_timeout_error() -> None:
    problem = fault_of(
        doc("""\
do:
  - slow:
      wait:
        hours: 1
      timeout:
        after:
          minutes: 1
""")
    )
    assert problem["status"] == 408 and problem["instance"] == "/do/0/slow"


def test_run_workflow_awaits_a_child_instance() -> None:
    child = doc(
        """\
do:
  - double:
      set:
        value: ${ .n * 2 }
""",
        name="child",
    )
    parent = doc(
        """\
do:
  - runChild:
      run:
        workflow:
          namespace: test
          name: child
          version: '1.0.0'
          input:
            n: ${ .n }
""",
        name="parent",
    )
    _, output = run(parent, {"n": 21}, child)
    assert output == {"value": 42}


def test_input_schema_is_checked() -> None:
    problem = fault_of(
        doc("""\
input:
  schema:
    format: json
    document:
      type: object
      required: [id]
do:
  - noop:
      set:
        ok: true
"""),
        {"other": 1},
    )
    assert problem["type"].endswith("/errors/validation") and problem["status"] == 400


def test_emit_publishes_a_cloud_event_to_the_named_topic() -> None:
    wf = doc("""\
do:
  - tell:
      emit:
        event:
          topic: orders.events
          with:
            source: https://example.com
            type: com.example.told
            data:
              n: ${ .n }
""")
    with dsl.capture_events() as events:
        _, output = run(wf, {"n": 1})
    assert events == [("orders.events", output)]
    assert output["specversion"] == "1.0" and output["data"] == {"n": 1}


def test_the_test_environment_keeps_emitted_events() -> None:
    wf = doc("""\
do:
  - tell:
      emit:
        event:
          with:
            source: https://example.com
            type: com.example.told
""")
    env = Environment(wf)
    handle = env.start(wf, {}, id="emitter-1")
    output = handle.result()
    assert env.emitted == [("replayflow.events", "emitter-1", output)]
