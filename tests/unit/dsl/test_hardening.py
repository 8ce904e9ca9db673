"""Review findings: argument collisions, jq sandboxing, secrets, runaway loops, listen
filters, durations, schemas, recursion and retry limits."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import replayflow as rf
from replayflow import dsl
from replayflow.core.decide import Limits
from replayflow.core.errors import WorkflowError
from replayflow.core.messages import TimerStarted
from replayflow.dsl import expressions
from replayflow.dsl.errors import WorkflowFault
from replayflow.dsl.tasks.flow import DEFAULT_RETRY_LIMIT
from replayflow.testing import Environment
from tests.ctk.server import Services

HEAD = """\
document:
  dsl: '1.0.3'
  namespace: test
  name: hardening
  version: '1.0.0'
"""


def doc(body: str) -> rf.WorkflowDef:
    return dsl.workflow_from_text(HEAD + body)


def run(workflow: rf.WorkflowDef, data: Any = None, *items: Any) -> Any:
    return Environment(workflow, *items).start(workflow.name, data).result()


def fault_of(workflow: rf.WorkflowDef, data: Any = None, *items: Any, **kw: Any) -> dict[str, Any]:
    env = Environment(workflow, *items, **kw)
    with pytest.raises(WorkflowError) as caught:
        env.start(workflow.name, data).result()
    assert caught.value.error is not None
    assert caught.value.error.type == "WorkflowFault", caught.value.error
    return dsl.problem_of(caught.value.error)


def kind(problem: dict[str, Any]) -> str:
    return str(problem["type"]).rsplit("/", 1)[-1]


@pytest.fixture(scope="module")
def services() -> Iterator[Services]:
    with Services() as running:
        yield running


# -- 1. call: <python step> with keys named like ctx.step's parameters ------------------


@rf.step
def echo_kwargs(**kwargs: Any) -> dict[str, Any]:
    return kwargs


def test_with_keys_named_like_step_parameters_reach_the_step() -> None:
    wf = doc("""\
do:
  - a:
      call: echo_kwargs
      with: {name: bob, fn: f, retry: 3, timeout: soon, args: [1], kwargs: {}}
""")
    assert run(wf, {}, echo_kwargs) == {
        "name": "bob",
        "fn": "f",
        "retry": 3,
        "timeout": "soon",
        "args": [1],
        "kwargs": {},
    }


# -- 2. non-deterministic jq builtins cannot be reached ------------------------------


@pytest.mark.parametrize(
    "text",
    [
        r'${ "\((1) + now)" }',
        r'${ "\((.) | env.HOME)" }',
        r'${ "\((1) | input)" }',
        r'${ "\((1) | [builtins] | length)" }',
        r'${ "\((1) | get_jq_origin)" }',
        r'${ "\((1) | tostring | modulemeta)" }',
    ],
)
def test_forbidden_builtins_fail_even_when_the_scanner_misses_them(text: str) -> None:
    with pytest.raises(WorkflowFault) as caught:
        expressions.evaluate(text, {}, {}, "/x")
    assert kind(caught.value.problem) == "expression"
    assert "not deterministic" in str(caught.value.problem["detail"])


def test_env_variable_is_null(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RF_HARDENING_PROBE", "visible")
    text = r'${ "\((.) | $ENV.RF_HARDENING_PROBE)" }'
    assert expressions.evaluate(text, {}, {}, "/x") == "null"


def test_deterministic_date_builtins_still_work() -> None:
    assert expressions.evaluate("${ 0 | todate }", None, {}) == "1970-01-01T00:00:00Z"


# -- 3. secrets ---------------------------------------------------------------------


SECRET_DOC = """\
use:
  secrets: [{name}]
do:
  - a:
      set: {{v: '${{ $secrets["{name}"] }}'}}
"""


def test_secret_from_prefixed_environment_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REPLAYFLOW_SECRET_API_KEY", "s3cret")
    assert run(doc(SECRET_DOC.format(name="api_key")), {}) == {"v": "s3cret"}


def test_secret_is_not_any_environment_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RF_PLAIN_VARIABLE", "visible")
    monkeypatch.delenv("REPLAYFLOW_SECRET_RF_PLAIN_VARIABLE", raising=False)
    problem = fault_of(doc(SECRET_DOC.format(name="RF_PLAIN_VARIABLE")), {})
    assert kind(problem) == "authorization"
    assert problem["status"] == 403
    assert "visible" not in str(problem)


def test_secret_files_only_from_the_secrets_dir(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    (tmp_path / "db-password").write_text("pw\n")
    outside = tmp_path.parent / "rf-outside-secret"
    outside.write_text("leak")
    monkeypatch.setenv("REPLAYFLOW_SECRETS_DIR", str(tmp_path))
    assert run(doc(SECRET_DOC.format(name="db-password")), {}) == {"v": "pw"}
    for name in (str(outside), "../rf-outside-secret", ".."):
        problem = fault_of(doc(SECRET_DOC.format(name=name)), {})
        assert kind(problem) == "authorization", name
        assert "leak" not in str(problem)


def test_http_call_does_not_record_the_authorization_header_in_its_result(
    services: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REPLAYFLOW_SECRET_TOKEN", "tok-123")
    wf = doc(f"""\
use:
  secrets: [token]
do:
  - a:
      call: http
      with:
        method: get
        output: response
        endpoint:
          uri: {services.base}/petstore/v2/pet/1
          authentication:
            bearer: {{token: "${{ $secrets.token }}"}}
""")
    response = run(wf, {})
    assert response["statusCode"] == 200
    headers = {k.lower() for k in response["request"]["headers"]}
    assert "authorization" not in headers
    assert "tok-123" not in repr(response)


# -- 4. a loop without awaits ends ---------------------------------------------------


@pytest.mark.timeout(60)
def test_then_loop_without_awaits_faults() -> None:
    wf = doc("""\
do:
  - a: {set: {n: "${ (.n // 0) + 1 }"}, then: a}
""")
    problem = fault_of(wf, {})
    assert kind(problem) == "runtime"
    assert "without awaiting" in problem["detail"]


def test_loops_with_awaits_are_not_capped() -> None:
    wf = doc("""\
do:
  - a: {set: {n: "${ (.n // 0) + 1 }"}}
  - b: {wait: PT0.001S}
  - c:
      switch:
        - more: {when: ".n < 3", then: a}
        - done: {then: exit}
""")
    assert run(wf, {}) == {"n": 3}


# -- 5. listen filters compare literally ----------------------------------------------


def _listen(subject: str) -> rf.WorkflowDef:
    return doc(f"""\
do:
  - l:
      listen:
        to:
          one:
            with: {{type: com.x.ev, subject: "{subject}"}}
""")


@pytest.mark.parametrize("subject", ["order.1", "[abc", "(a+)+b"])
def test_listen_filter_strings_are_literals(subject: str) -> None:
    wf = _listen(subject)
    env = Environment(wf)
    handle = env.start(wf.name, {})
    env.run_until_idle()

    def event(subj: str, data: Any) -> dict[str, Any]:
        return {"specversion": "1.0", "type": "com.x.ev", "subject": subj, "data": data}

    env.send_event(handle.id, "com.x.ev", event("orderX1" if subject == "order.1" else "a", 1))
    env.run_until_idle()
    env.send_event(handle.id, "com.x.ev", event(subject, 2))
    assert handle.result() == [2]


# -- 6. durations, schemas, recursion --------------------------------------------------


@pytest.mark.parametrize(
    "wait",
    [
        '"${ {seconds: infinite} }"',
        '"${ {seconds: nan} }"',
        "{days: 100000000000000}",
        "{days: 40000}",
        '"${ {seconds: -5} }"',
        '"${ \\"soon\\" }"',
    ],
)
def test_bad_waits_fault_cleanly(wait: str) -> None:
    problem = fault_of(doc(f"do:\n  - a: {{wait: {wait}}}\n"), {})
    assert kind(problem) == "configuration"
    assert problem["instance"] == "/do/0/a/wait"


@pytest.mark.parametrize("after", ['\\"soon\\"', "{seconds: infinite}", "{days: 1e300}"])
def test_bad_task_timeout_faults_cleanly(after: str) -> None:
    wf = doc(f"""\
do:
  - a:
      timeout: {{after: "${{ {after} }}"}}
      set: {{x: 1}}
""")
    problem = fault_of(wf, {})
    assert kind(problem) == "configuration"
    assert problem["instance"] == "/do/0/a/timeout/after"


def test_durations_are_bounded() -> None:
    from replayflow.dsl.durations import duration_ms

    assert duration_ms({"days": 365}) == 365 * 86_400_000
    for bad in ({"seconds": float("inf")}, "P40000D", 1e20, {"days": -1}, float("nan")):
        with pytest.raises(ValueError):
            duration_ms(bad)


def test_invalid_inline_schema_is_a_configuration_fault() -> None:
    wf = doc("""\
input:
  schema:
    format: json
    document: {type: 12}
do:
  - a: {set: {x: 1}}
""")
    problem = fault_of(wf, {})
    assert kind(problem) == "configuration"
    assert problem["instance"] == "/input"


def test_recursive_functions_fault() -> None:
    wf = doc("""\
use:
  functions:
    f: {call: f}
do:
  - a: {call: f}
""")
    problem = fault_of(wf, {})
    assert kind(problem) == "configuration"
    assert "nested" in problem["detail"]


def test_unknown_flow_directive_in_a_function_faults() -> None:
    wf = doc("""\
use:
  functions:
    f:
      do:
        - x: {set: {a: 1}, then: nowhere}
do:
  - a: {call: f}
""")
    problem = fault_of(wf, {})
    assert kind(problem) == "configuration"


# -- 7. retry without a limit is capped -------------------------------------------------


def test_retry_without_limit_stops_after_the_default_count() -> None:
    wf = doc("""\
do:
  - t:
      try:
        - r:
            raise:
              error: {type: "https://example.com/boom", status: 500}
      catch:
        retry:
          delay: PT0S
""")
    env = Environment(wf, limits=Limits(max_calls=DEFAULT_RETRY_LIMIT * 3))
    handle = env.start(wf.name, {})
    assert handle.result() == {}  # caught, after the last retry
    sleeps = [e for e in env.history(handle.id) if isinstance(e, TimerStarted)]
    assert len(sleeps) == DEFAULT_RETRY_LIMIT
