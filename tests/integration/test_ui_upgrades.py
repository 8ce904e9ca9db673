"""An instance's version and its upgrade history in the web UI (headless Chromium),
the API and `replayflow status`, after `replayflow upgrade` moved it."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from selenium import webdriver
from selenium.webdriver.common.by import By

from replayflow.cli.replay import Code
from replayflow.client import Client
from replayflow.core.definitions import Registry
from replayflow.processors.upgrade import KafkaLink, run
from tests.integration.api_stack import api_stack
from tests.integration.test_api import wait
from tests.integration.test_ui import ARTIFACTS, browser, history_kinds, wait_for
from tests.replay_code import mixed

pytestmark = pytest.mark.kafka

__all__ = ["browser"]  # the Chromium fixture of test_ui.py
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def stack(
    kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, Any]]:
    data = tmp_path_factory.mktemp("ui-upgrades")
    with api_stack(kafka_bootstrap, data, Registry.of(mixed)) as stack:
        yield stack


def test_the_version_and_its_upgrades_are_shown(
    stack: dict[str, Any], browser: webdriver.Chrome
) -> None:
    settings, api = stack["settings"], stack["api"]
    instance_id = f"up-{uuid.uuid4().hex[:6]}"
    with Client(settings) as client:
        client.start("mx-wait", "x", id=instance_id, version="1")
    wait(lambda: api.get(f"/v1/instances/{instance_id}").status_code == 200, what="indexed")
    [result] = [
        r
        for r in run(KafkaLink(settings), Code(("tests.replay_code.mixed",)), "mx-wait", "1", "2")
        if r.instance_id == instance_id
    ]
    assert result.moved, result.reason
    shown = wait(
        lambda: (lambda b: b if b.get("upgrades") else None)(
            api.get(f"/v1/instances/{instance_id}").json()
        ),
        what="the upgrade in the read model",
    )
    assert shown["version"] == "2"
    assert [(u["from_version"], u["to_version"]) for u in shown["upgrades"]] == [("1", "2")]
    listed = api.get("/v1/instances", workflow="mx-wait").json()["items"]
    assert [i["version"] for i in listed if i["id"] == instance_id] == ["2"]

    browser.get(stack["server"].url + "/ui/#/instance/" + instance_id)
    summary = wait_for(
        browser,
        lambda d: (lambda t: t if "upgraded" in t.lower() else None)(
            d.find_element(By.ID, "i-summary").text
        ),
    )
    assert "mx-wait @2" in summary
    assert "1 → 2" in summary
    assert "WorkflowUpgraded" in history_kinds(browser)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    browser.save_screenshot(str(ARTIFACTS / "ui-upgrades.png"))
    browser.get(stack["server"].url + "/ui/")
    row = wait_for(
        browser,
        lambda d: d.find_element(By.CSS_SELECTOR, f'#instances tr[data-id="{instance_id}"]'),
    )
    assert "mx-wait @2" in row.text

    status = subprocess.run(
        [sys.executable, "-m", "replayflow.cli", "status", instance_id],
        cwd=REPO,
        env={**os.environ, "REPLAYFLOW_API": stack["server"].url},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert status.returncode == 0, status.stderr
    assert "mx-wait@2" in status.stdout and "upgraded 1 -> 2" in status.stdout
