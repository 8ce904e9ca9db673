"""Fork branches as child instances, listen over several event types, fault details."""

from __future__ import annotations

import json
from typing import Any

import pytest

import replayflow as rf
from replayflow import dsl
from replayflow.core.errors import WorkflowError
from replayflow.core.messages import ErrorInfo
from replayflow.core.state import Status
from replayflow.dsl.documents import workflow_from_text
from replayflow.dsl.errors import fault
from replayflow.testing import Environment

HEAD = """\
document:
  dsl: '1.0.3'
  namespace: test
  name: {name}
  version: '1.0.0'
"""


def doc(body: str, name: str = "sample") -> rf.WorkflowDef:
    return workflow_from_text(HEAD.format(name=name) + body)


def failure(env: Environment, instance_id: str) -> ErrorInfo:
    with pytest.raises(WorkflowError) as caught:
        env.result(instance_id)
    assert caught.value.error is not None
    return caught.value.error


def children(env: Environment, parent: str) -> list[str]:
    return [i for i in env.states if i.startswith(parent + "/")]


def envelope(event_type: str, data: Any) -> dict[str, Any]:
    return {"specversion": "1.0", "type": event_type, "data": data}


# -- fault details -----------------------------------------------------------------------


@rf.step
def broken() -> None:
    raise fault("communication", "the service is down", status=503)


def test_a_fault_rides_in_error_details_not_in_the_message() -> None:
    wf = doc("""\
do:
  - fail:
      call: broken
""")
    env = Environment(wf, broken)
    handle = env.start(wf.name)
    error = failure(env, handle.id)
    assert "problem=" not in error.message
    assert error.type == "WorkflowFault"
    problem = json.loads(error.details or "")
    assert problem == dsl.problem_of(error)
    assert problem["status"] == 503 and problem["instance"] == "/do/0/fail"
    assert problem["type"].endswith("/errors/communication")


# -- fork ---------------------------------------------------------------------------------

COMPETE = """\
do:
  - race:
      fork:
        compete: true
        branches:
          - manySteps:
              do:
                - one:
                    wait:
                      seconds: 1
                - two:
                    wait:
                      seconds: 1
                - three:
                    wait:
                      seconds: 1
                - done:
                    set:
                      winner: many
          - oneLongStep:
              do:
                - long:
                    wait:
                      seconds: 10
                - done:
                    set:
                      winner: long
  - after:
      set:
        winner: ${ .winner }
        at: ${ $task.startedAt.epoch.seconds - $workflow.startedAt.epoch.seconds }
"""


def test_compete_picks_the_branch_that_finishes_first_not_the_one_with_fewer_awaits() -> None:
    wf = doc(COMPETE)
    env = Environment(wf)
    handle = env.start(wf.name)
    assert handle.result() == {"winner": "many", "at": 3}
    branches = children(env, handle.id)
    assert len(branches) == 2
    # The loser ran on unawaited and was terminated when the instance ended.
    statuses = {env.status(b) for b in branches}
    assert statuses == {Status.COMPLETED, Status.TERMINATED}
    assert env.replay(handle.id).identical


def test_compete_winner_is_the_first_recorded_even_when_listed_last() -> None:
    wf = doc(COMPETE.replace("seconds: 10", "seconds: 2"))
    env = Environment(wf)
    assert env.start(wf.name).result() == {"winner": "long", "at": 2}


def test_branches_without_compete_run_side_by_side_and_one_may_catch_its_own_error() -> None:
    wf = doc("""\
do:
  - both:
      fork:
        branches:
          - careful:
              try:
                - boom:
                    raise:
                      error:
                        type: https://example.com/boom
                        status: 400
              catch:
                as: err
                do:
                  - recover:
                      set:
                        caught: ${ $err.type }
          - slow:
              do:
                - pause:
                    wait:
                      seconds: 5
                - done:
                    set:
                      slept: ${ .n }
""")
    env = Environment(wf)
    handle = env.start(wf.name, {"n": 5})
    assert handle.result() == [{"caught": "https://example.com/boom"}, {"slept": 5}]
    assert all(env.status(b) is Status.COMPLETED for b in children(env, handle.id))
    assert env.replay(handle.id).identical


def test_a_branch_fault_faults_the_fork_with_that_error() -> None:
    wf = doc("""\
do:
  - guarded:
      try:
        - both:
            fork:
              branches:
                - bad:
                    do:
                      - pause:
                          wait:
                            seconds: 1
                      - boom:
                          raise:
                            error:
                              type: https://example.com/boom
                              status: 409
                              detail: ${ "from " + .who }
                - fine:
                    set:
                      ok: true
      catch:
        errors:
          with:
            type: https://example.com/boom
        as: err
        do:
          - report:
              set:
                status: ${ $err.status }
                detail: ${ $err.detail }
                instance: ${ $err.instance }
""")
    env = Environment(wf)
    assert env.start(wf.name, {"who": "bad"}).result() == {
        "status": 409,
        "detail": "from bad",
        "instance": "/do/0/guarded/try/0/both/fork/branches/0/bad/do/1/boom",
    }


def test_an_uncaught_branch_fault_ends_the_instance_with_its_problem() -> None:
    wf = doc("""\
do:
  - both:
      fork:
        branches:
          - fail:
              call: broken
          - fine:
              set:
                ok: true
""")
    env = Environment(wf, broken)
    handle = env.start(wf.name)
    error = failure(env, handle.id)
    problem = dsl.problem_of(error)
    assert problem["status"] == 503
    assert problem["instance"] == "/do/0/both/fork/branches/0/fail"


def test_branches_see_loop_variables_and_export_context_in_a_loop() -> None:
    wf = doc("""\
do:
  - each:
      for:
        each: n
        in: ${ .numbers }
      do:
        - twice:
            fork:
              branches:
                - double:
                    set:
                      value: ${ $n * 2 }
                    export:
                      as: '$context + { last: $n }'
                - square:
                    set:
                      value: ${ $n * $n }
            output:
              as: '{ values: [.[].value] }'
  - report:
      set:
        values: ${ .values }
        last: ${ $context.last }
""")
    env = Environment(wf)
    handle = env.start(wf.name, {"numbers": [2, 3]})
    assert handle.result() == {"values": [6, 9], "last": 3}
    # One child per branch and iteration, named after the branch's pointer.
    assert len(children(env, handle.id)) == 4
    assert env.replay(handle.id).identical


def test_fork_branch_with_a_step_runs_in_its_own_instance() -> None:
    wf = doc("""\
do:
  - both:
      fork:
        branches:
          - one:
              call: add
              with:
                a: 1
                b: 2
          - two:
              call: add
              with:
                a: 3
                b: 4
""")
    env = Environment(wf, add)
    handle = env.start(wf.name)
    assert handle.result() == [3, 7]
    for child in children(env, handle.id):
        assert env.replay(child).identical


@rf.step
def add(a: int, b: int) -> int:
    return a + b


# -- listen over several event types --------------------------------------------------------

LISTEN_ANY = """\
do:
  - firstOf:
      listen:
        to:
          any:
            - with:
                type: com.example.paid
            - with:
                type: com.example.cancelled
"""


def test_listen_any_takes_the_first_event_of_any_of_its_types() -> None:
    wf = doc(LISTEN_ANY)
    env = Environment(wf)
    handle = env.start(wf.name)
    env.send_event(handle.id, "com.example.cancelled", envelope("com.example.cancelled", 1))
    env.send_event(handle.id, "com.example.paid", envelope("com.example.paid", 2))
    assert handle.result() == [1]
    assert env.replay(handle.id).identical


def test_listen_any_times_out_with_the_task_timeout() -> None:
    wf = doc(
        LISTEN_ANY
        + """\
      timeout:
        after:
          seconds: 30
"""
    )
    env = Environment(wf)
    handle = env.start(wf.name)
    problem = dsl.problem_of(failure(env, handle.id))
    assert problem["status"] == 408 and problem["instance"] == "/do/0/firstOf"


def test_listen_any_until_an_expression_collects_events_of_several_types() -> None:
    wf = doc("""\
do:
  - collect:
      listen:
        to:
          any:
            - with:
                type: com.example.a
            - with:
                type: com.example.b
          until: ${ ($events | length) >= 3 }
""")
    env = Environment(wf)
    handle = env.start(wf.name)
    for event_type, n in (("a", 1), ("b", 2), ("b", 3), ("a", 4)):
        env.send_event(
            handle.id, f"com.example.{event_type}", envelope(f"com.example.{event_type}", n)
        )
    assert handle.result() == [1, 2, 3]


def test_listen_any_until_an_event_of_another_type_stops_without_keeping_it() -> None:
    wf = doc("""\
do:
  - collect:
      listen:
        to:
          any:
            - with:
                type: com.example.item
          until:
            one:
              with:
                type: com.example.end
""")
    env = Environment(wf)
    handle = env.start(wf.name)
    env.send_event(handle.id, "com.example.item", envelope("com.example.item", 1))
    env.send_event(handle.id, "com.example.item", envelope("com.example.item", 2))
    env.send_event(handle.id, "com.example.end", envelope("com.example.end", None))
    assert handle.result() == [1, 2]
    assert env.replay(handle.id).identical


def test_listen_any_keeps_correlation_across_types() -> None:
    wf = doc("""\
do:
  - firstOf:
      listen:
        to:
          any:
            - with:
                type: com.example.paid
              correlate:
                order:
                  from: .data.order
                  expect: ${ $workflow.input.order }
            - with:
                type: com.example.cancelled
              correlate:
                order:
                  from: .data.order
                  expect: ${ $workflow.input.order }
""")
    env = Environment(wf)
    handle = env.start(wf.name, {"order": 7})
    env.send_event(
        handle.id, "com.example.cancelled", envelope("com.example.cancelled", {"order": 1})
    )
    env.send_event(handle.id, "com.example.paid", envelope("com.example.paid", {"order": 7}))
    assert handle.result() == [{"order": 7}]


def test_run_workflow_in_a_loop_starts_one_child_per_iteration() -> None:
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
  - each:
      for:
        each: n
        in: ${ .numbers }
      do:
        - runChild:
            run:
              workflow:
                namespace: test
                name: child
                version: '1.0.0'
                input:
                  n: ${ $n }
            export:
              as: '$context + { values: (($context.values // []) + [.value]) }'
  - report:
      set:
        values: ${ $context.values }
""",
        name="parent",
    )
    env = Environment(parent, child)
    handle = env.start(parent.name, {"numbers": [1, 2, 3]})
    assert handle.result() == {"values": [2, 4, 6]}
    assert len(children(env, handle.id)) == 3
