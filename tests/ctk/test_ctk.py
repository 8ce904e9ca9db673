"""The Serverless Workflow conformance kit (/work/shared/ctk/features, or CTK_DIR),
every scenario on the in-memory engine; network scenarios use a local HTTP server."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.ctk.gherkin import Scenario, parse
from tests.ctk.runner import memory_engine, run_scenario
from tests.ctk.server import Services

CTK = Path(os.environ.get("CTK_DIR", "/work/shared/ctk"))
FEATURES = sorted((CTK / "features").glob("*.feature"))

#: Scenarios that need a feature this runtime does not implement, with the reason.
EXPECTED_FAILURES = {
    "Call OpenAPI With Content Output": "call: openapi is not implemented",
    "Call OpenAPI With Response Output": "call: openapi is not implemented",
}


def scenarios() -> list[Scenario]:
    return [s for path in FEATURES for s in parse(path)]


def _param(scenario: Scenario) -> object:
    marks = []
    if scenario.name in EXPECTED_FAILURES:
        marks.append(pytest.mark.xfail(reason=EXPECTED_FAILURES[scenario.name], strict=True))
    return pytest.param(scenario, id=scenario.id, marks=marks)


@pytest.fixture(scope="module")
def services() -> Iterator[Services]:
    with Services() as running:
        yield running


pytestmark = pytest.mark.skipif(not FEATURES, reason=f"no CTK features under {CTK}")


def test_the_kit_has_21_scenarios() -> None:
    assert len(scenarios()) == 21


@pytest.mark.parametrize("scenario", [_param(s) for s in scenarios()])
def test_scenario(scenario: Scenario, services: Services) -> None:
    run_scenario(scenario, services.rewrite, memory_engine)
