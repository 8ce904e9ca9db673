"""Loading, validation, expressions and durations."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from replayflow.cli import main
from replayflow.dsl import expressions
from replayflow.dsl.durations import duration_ms
from replayflow.dsl.errors import WorkflowFault, normalize_type
from replayflow.dsl.loader import parse_text
from replayflow.dsl.validate import DocumentInvalid, load_valid, validate_text

HEAD = """\
document:
  dsl: '1.0.3'
  namespace: test
  name: sample
  version: '1.0.0'
"""


def test_yaml_is_read_with_1_2_semantics() -> None:
    source = parse_text("on: yes\nno: off\n")
    assert source.data == {"on": "yes", "no": "off"}


def test_json_documents_load_with_lines() -> None:
    source = parse_text('{\n  "document": {"name": "x"},\n  "do": []\n}', "w.json")
    assert source.data["document"] == {"name": "x"}
    assert source.line_of("/do") == 3


def test_every_problem_is_reported_with_pointer_and_line() -> None:
    text = (
        HEAD
        + """\
do:
  - first:
      set:
        at: ${ now }
      then: nowhere
  - second:
      wait: 12
"""
    )
    report = validate_text(text, "bad.yaml")
    assert not report.ok
    message = report.message()
    assert "bad.yaml:9: /do/0/first/set/at: expression '${ now }'" in message
    assert "not deterministic" in message
    assert "bad.yaml:10: /do/0/first/then: flow directive 'nowhere'" in message
    assert "/do/1/second" in message
    with pytest.raises(DocumentInvalid) as caught:
        load_valid(text, "bad.yaml")
    assert caught.value.report.problems == report.problems


@pytest.mark.parametrize(
    "text",
    [
        "now",
        "$ENV.HOME",
        "env.PATH",
        "input",
        "[inputs]",
        "debug",
        "input_line_number",
        '"\\(now)"',
    ],
)
def test_non_deterministic_builtins_are_rejected(text: str) -> None:
    with pytest.raises(expressions.ExpressionError, match="not deterministic"):
        expressions.check(text)


@pytest.mark.parametrize(
    "text", [".input", "{input: 1}", "$input", '"now"', ".env.x", "$context.now"]
)
def test_names_that_only_look_like_builtins_pass(text: str) -> None:
    expressions.check(text)


def test_expressions_are_compiled_once() -> None:
    expressions._compile.cache_clear()
    for value in range(5):
        assert expressions.evaluate("${ . + $n }", value, {"n": 1}) == value + 1
    assert expressions._compile.cache_info().misses == 1


def test_expression_failures_are_dsl_expression_errors() -> None:
    with pytest.raises(WorkflowFault) as caught:
        expressions.evaluate(".a + 1", {"a": "x"}, {}, "/do/0/x")
    assert caught.value.problem["status"] == 400
    assert caught.value.problem["type"].endswith("/errors/expression")
    assert caught.value.problem["instance"] == "/do/0/x"


def test_render_replaces_nested_expressions() -> None:
    value = {"a": "${ .x }", "b": ["${ .x + 1 }", "plain"], "c": 3}
    assert expressions.render(value, {"x": 1}, {}) == {"a": 1, "b": [2, "plain"], "c": 3}


def test_durations() -> None:
    assert duration_ms({"seconds": 3, "milliseconds": 5}) == 3005
    assert duration_ms("PT1M30S") == 90_000
    assert duration_ms("P1DT1H") == 90_000_000
    with pytest.raises(ValueError):
        duration_ms("soon")


def test_error_type_spellings_compare_equal() -> None:
    spec = "https://serverlessworkflow.io/spec/1.0.0/errors/communication"
    ctk = "https://serverlessworkflow.io/dsl/errors/types/communication"
    assert normalize_type(spec) == normalize_type(ctk)
    assert normalize_type("https://x/errors/custom") == "https://x/errors/custom"


def test_cli_validate_exits_non_zero_on_any_invalid(tmp_path: object) -> None:
    from pathlib import Path

    folder = Path(str(tmp_path))
    good = folder / "good.yaml"
    good.write_text(HEAD + "do:\n  - a:\n      set:\n        x: 1\n")
    bad = folder / "bad.yaml"
    bad.write_text(HEAD + "do:\n  - a:\n      sett: 1\n")
    runner = CliRunner()
    ok = runner.invoke(main, ["validate", str(good)])
    assert ok.exit_code == 0, ok.output
    failed = runner.invoke(main, ["validate", str(good), str(bad)])
    assert failed.exit_code == 1
    assert "bad.yaml:7: /do/0/a" in failed.output


def test_every_example_validates_and_every_invalid_fixture_is_rejected() -> None:
    from replayflow.dsl.validate import validate_file
    from tests.ctk import kit

    ctk = kit.require()
    examples = sorted((ctk / "examples").glob("*.yaml"))
    assert len(examples) == 66
    for path in examples:
        report = validate_file(path)
        assert report.ok, report.message()
    for path in sorted((ctk / "invalid-fixtures").glob("*.yaml")):
        assert not validate_file(path).ok, path


def test_schedules_are_parsed() -> None:
    from replayflow.core.schedule_spec import Interval
    from replayflow.dsl.schedule import parse_schedule

    every = parse_schedule({"every": {"minutes": 5}}).spec
    assert every is not None and every.intervals == (Interval(300_000),)
    cron = parse_schedule({"cron": "0 */2 * * MON-FRI"}).spec
    assert cron is not None and cron.cron == ("0 */2 * * MON-FRI",) and cron.timezone == "UTC"
    after = parse_schedule({"after": "PT1H"}).spec
    assert after is not None and after.rerun_after_ms == 3_600_000
    assert parse_schedule({"on": {"one": {"with": {"type": "x"}}}}).spec is None
    for bad in ("* * *", "61 * * * *", "5-1 * * * *", "*/0 * * * *", "@often"):
        with pytest.raises(ValueError):
            parse_schedule({"cron": bad})
    with pytest.raises(ValueError, match="not both"):
        parse_schedule({"cron": "@daily", "after": "PT1M"})
    with pytest.raises(ValueError, match="whole number of seconds"):
        parse_schedule({"every": {"milliseconds": 1500}})
    report = validate_text(
        HEAD + "schedule:\n  cron: '99 * * * *'\ndo:\n  - a:\n      set:\n        x: 1\n"
    )
    assert not report.ok and "/schedule" in report.message()
