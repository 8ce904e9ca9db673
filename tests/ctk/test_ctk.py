"""The Serverless Workflow conformance kit (see tests/ctk/kit.py for where it is found),
every scenario on the in-memory engine; network scenarios use a local HTTP server."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.ctk import kit
from tests.ctk.features import Scenario, parse
from tests.ctk.runner import memory_engine, run_scenario
from tests.ctk.server import Services

#: Scenarios that need a feature this runtime does not implement, with the reason.
EXPECTED_FAILURES = {
    "Call OpenAPI With Content Output": "call: openapi is not implemented",
    "Call OpenAPI With Response Output": "call: openapi is not implemented",
}


def scenarios() -> list[Scenario]:
    if not kit.present():
        return []
    return [
        s for path in sorted((kit.location() / "features").glob("*.feature")) for s in parse(path)
    ]


def _params() -> list[object]:
    found = scenarios()
    if not found:
        # One test that reports the missing kit (fails under CI), rather than an empty
        # parameter set that pytest skips without saying why.
        return [pytest.param(None, id="no-kit")]
    params = []
    for scenario in found:
        marks = []
        if scenario.name in EXPECTED_FAILURES:
            marks.append(pytest.mark.xfail(reason=EXPECTED_FAILURES[scenario.name], strict=True))
        params.append(pytest.param(scenario, id=scenario.id, marks=marks))
    return params


@pytest.fixture(scope="module")
def services() -> Iterator[Services]:
    with Services() as running:
        yield running


def test_the_kit_has_21_scenarios() -> None:
    kit.require()
    assert len(scenarios()) == 21


@pytest.mark.parametrize("scenario", _params())
def test_scenario(scenario: Scenario, services: Services) -> None:
    kit.require()
    run_scenario(scenario, services.rewrite, memory_engine)
