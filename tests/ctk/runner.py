"""Runs one CTK scenario on an engine and checks its assertions."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ruamel.yaml import YAML

from replayflow import dsl
from replayflow.core.errors import WorkflowError
from replayflow.dsl import interpreter
from replayflow.testing import Environment
from tests.ctk.features import Scenario, quoted


def yaml_value(text: str | None) -> Any:
    if text is None:
        return None
    yaml = YAML(typ="safe")
    yaml.version = (1, 2)
    return yaml.load(text)


@dataclass
class Outcome:
    completed: bool
    output: Any = None
    error: dict[str, Any] | None = None
    order: list[str] = field(default_factory=list)


# An engine runs (workflow def, input) and returns the outcome (without order).
Engine = Callable[[Any, Any], Outcome]


def memory_engine(workflow: Any, data: Any) -> Outcome:
    env = Environment(workflow)
    handle = env.start(workflow.name, data)
    try:
        return Outcome(True, output=handle.result())
    except WorkflowError as exc:
        assert exc.error is not None
        return Outcome(False, error=dsl.problem_of(exc.error))


def lookup(value: Any, path: str) -> tuple[bool, Any]:
    for part in path.split("."):
        if not isinstance(value, dict) or part not in value:
            return False, None
        value = value[part]
    return True, value


def run_scenario(scenario: Scenario, rewrite: Callable[[str], str], engine: Engine) -> None:
    definition = None
    data: Any = None
    outcome: Outcome | None = None
    for step in scenario.steps:
        text = step.text
        where = f"{scenario.path.name}:{step.line}: {step.keyword} {text}"
        if text.startswith("a workflow with definition"):
            assert step.doc is not None
            definition = dsl.workflow_from_text(rewrite(step.doc), scenario.path.name)
        elif text.startswith("given the workflow input is") or text.startswith(
            "the workflow input is"
        ):
            data = yaml_value(step.doc)
        elif text == "the workflow is executed":
            assert definition is not None, where
            order: list[tuple[str, str]] = []

            def observe(
                instance: str, pointer: str, name: str, _order: list[tuple[str, str]] = order
            ) -> None:
                _order.append((pointer, name))

            interpreter.task_observers.append(observe)
            try:
                with dsl.capture_events():
                    outcome = engine(definition, data)
            finally:
                interpreter.task_observers.remove(observe)
            # Top-level tasks only, first run of each (a replay may report one again).
            seen: list[str] = []
            for pointer, name in order:
                if pointer.count("/") == 3 and (not seen or seen[-1] != name):
                    seen.append(name)
            outcome.order = seen
        elif text.startswith("the workflow should complete"):
            assert outcome is not None, where
            assert outcome.completed, f"{where}: it faulted with {outcome.error}"
            if "with output" in text:
                assert outcome.output == yaml_value(step.doc), f"{where}: output {outcome.output!r}"
        elif text.startswith("the workflow should fault"):
            assert outcome is not None, where
            assert not outcome.completed, f"{where}: it completed with {outcome.output!r}"
            if "with error" in text:
                expected = yaml_value(step.doc)
                assert outcome.error is not None
                for key, value in expected.items():
                    assert outcome.error.get(key) == value, (
                        f"{where}: error {key} is {outcome.error.get(key)!r}, not {value!r}"
                    )
        elif text.startswith("the workflow output should have properties"):
            assert outcome is not None and outcome.completed, where
            for path in quoted(text):
                assert lookup(outcome.output, path)[0], (
                    f"{where}: no {path!r} in {outcome.output!r}"
                )
        elif text.startswith("the workflow output should have a"):
            assert outcome is not None and outcome.completed, where
            path = quoted(text)[0]
            found, value = lookup(outcome.output, path)
            assert found, f"{where}: no {path!r} in {outcome.output!r}"
            if "with value" in text:
                assert value == yaml_value(step.doc), f"{where}: {path} is {value!r}"
            elif "containing" in text:
                count = int(text.split("containing", 1)[1].split()[0])
                assert isinstance(value, list) and len(value) == count, (
                    f"{where}: {path} is {value!r}"
                )
        elif text.endswith("should run first"):
            assert outcome is not None
            assert outcome.order[:1] == [text.split()[0]], f"{where}: order {outcome.order}"
        elif text.endswith("should run last"):
            assert outcome is not None
            assert outcome.order[-1:] == [text.split()[0]], f"{where}: order {outcome.order}"
        elif " should run after " in text:
            assert outcome is not None
            later, earlier = text.split(" should run after ")
            order_ = outcome.order
            assert (
                later in order_
                and earlier in order_
                and order_.index(later) == order_.index(earlier) + 1
            ), f"{where}: order {order_}"
        else:
            raise AssertionError(f"{where}: unknown step phrase")
