"""Schedules through the HTTP API, the CLI and the web UI, end to end: an orchestrator
on the real broker and clock, `replayflow serve` as a child process, headless Chromium
for the schedules page."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from click.testing import CliRunner
from selenium import webdriver
from selenium.webdriver.common.by import By

import replayflow as rf
from replayflow.cli import main as cli_main
from replayflow.core.definitions import Registry
from replayflow.settings import Settings
from tests.integration.api_stack import api_stack, schedule_when
from tests.integration.test_api import Api, instance_when, wait
from tests.integration.test_ui import ARTIFACTS, browser, click, wait_for

pytestmark = pytest.mark.kafka
assert browser  # the module-scoped Chromium fixture, used by name below


@rf.workflow(name="tick")
async def tick(ctx: rf.Context, input: Any = None) -> Any:
    return input


@pytest.fixture(scope="module")
def stack(
    kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, Any]]:
    data = tmp_path_factory.mktemp("schedules-api")
    with api_stack(kafka_bootstrap, data, Registry.of(tick)) as stack:
        yield stack


def test_http_operations_on_a_schedule(stack: dict[str, Any]) -> None:
    api: Api = stack["api"]
    sid = f"s-{uuid.uuid4().hex[:6]}"
    created = api.post(
        "/v1/schedules",
        {"id": sid, "workflow": "tick", "every": "1s", "input": {"n": 1}, "overlap": "allow_all"},
    )
    assert created.status_code == 202, created.text
    assert created.headers["Location"] == f"/v1/schedules/{sid}"
    found = schedule_when(api, sid, lambda s: len(s["recent_runs"]) >= 2, "two runs")
    assert found["action"] == {"workflow": "tick", "input": '{"n":1}', "version": None}
    assert found["policies"]["overlap"] == "allow_all"
    assert len(found["next_fire_times"]) == 5
    first = found["recent_runs"][0]
    instance = instance_when(api, first["instance_id"], "COMPLETED")
    assert instance["schedule_id"] == sid and instance["schedule_slot"] == first["slot_ms"]
    listed = api.get("/v1/schedules").json()
    assert sid in [item["id"] for item in listed["items"]] and listed["next_after"] is None

    assert api.post(f"/v1/schedules/{sid}/pause", {"note": "maintenance"}).status_code == 202
    paused = schedule_when(api, sid, lambda s: s["paused"], "paused")
    assert paused["note"] == "maintenance"
    time.sleep(2)
    count = len(api.get(f"/v1/schedules/{sid}").json()["recent_runs"])
    time.sleep(2)
    assert len(api.get(f"/v1/schedules/{sid}").json()["recent_runs"]) == count  # no slot fires

    triggered = api.post(f"/v1/schedules/{sid}/trigger", {}).json()
    assert triggered["requested"] == "trigger" and triggered["instance_id"].startswith(sid + "-")
    instance_when(api, triggered["instance_id"], "COMPLETED")

    now = int(time.time() * 1000)
    backfill = api.post(
        f"/v1/schedules/{sid}/backfill", {"start": now - 5000, "end": now, "overlap": "allow_all"}
    )
    assert backfill.status_code == 202, backfill.text
    runs = schedule_when(
        api,
        sid,
        lambda s: sum(r["kind"] == "backfill" for r in s["recent_runs"]) >= 2,
        "backfilled runs",
    )["recent_runs"]
    assert all(r["status"] in ("RUNNING", "COMPLETED") for r in runs)

    updated = httpx.put(
        f"{api.url}/v1/schedules/{sid}", json={"cron": "*/5 * * * *", "overlap": "skip"}
    )
    assert updated.status_code == 202, updated.text
    schedule_when(api, sid, lambda s: s["spec"]["cron"] == ["*/5 * * * *"], "the update")
    assert api.post(f"/v1/schedules/{sid}/unpause", None).status_code == 202
    schedule_when(api, sid, lambda s: not s["paused"], "unpaused")

    assert httpx.delete(f"{api.url}/v1/schedules/{sid}").status_code == 202
    wait(lambda: api.get(f"/v1/schedules/{sid}").status_code == 404, 30, "the delete")
    assert sid not in [item["id"] for item in api.get("/v1/schedules").json()["items"]]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"id": "x", "workflow": "tick", "cron": "61 * * * *"}, "invalid cron '61 * * * *'"),
        ({"id": "x", "workflow": "tick", "every": "1h", "timezone": "Mars/Olympus"}, "Mars"),
        ({"id": "x", "workflow": "tick", "every": "1h", "overlap": "sometimes"}, "overlap"),
        ({"id": "x", "workflow": "tick"}, "at least one cron expression or interval"),
        ({"id": "-x", "workflow": "tick", "every": "1h"}, "invalid schedule id"),
        ({"id": "x", "workflow": "tick", "every": "1h", "colour": "red"}, "unknown field"),
        ({"id": "x", "workflow": "tick", "every": "1500ms"}, "whole number of seconds"),
    ],
)
def test_http_refuses_a_bad_schedule_with_the_reason(
    stack: dict[str, Any], body: dict[str, Any], message: str
) -> None:
    response = stack["api"].post("/v1/schedules", body)
    assert response.status_code == 400, response.text
    assert message in response.json()["error"]["message"]


def test_cli_schedule_commands(stack: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    settings: Settings = stack["settings"]
    monkeypatch.setenv("KAFKA_BOOTSTRAP", settings.bootstrap)
    monkeypatch.setenv("REPLAYFLOW_NAMESPACE", settings.namespace)
    monkeypatch.setenv("REPLAYFLOW_API", stack["server"].url)
    runner = CliRunner()
    sid = f"cli-{uuid.uuid4().hex[:6]}"

    def run(*args: str) -> str:
        result = runner.invoke(cli_main, ["schedule", *args], catch_exceptions=False)
        assert result.exit_code == 0, result.output
        return result.output

    assert run("create", sid, "tick", "--every", "1s", "--input", '{"cli": true}') == sid + "\n"
    schedule_when(stack["api"], sid, lambda s: s["recent_runs"], "a run")
    described = run("describe", sid, "--next", "3")
    assert f"{sid}  ACTIVE  starts tick" in described and "every 1s (UTC)" in described
    assert described.count("  next ") == 3 and "  run " in described
    assert sid in run("list")
    run("pause", sid, "--note", "from the CLI")
    schedule_when(stack["api"], sid, lambda s: s["paused"], "paused")
    assert "PAUSED" in run("describe", sid) and "from the CLI" in run("describe", sid)
    triggered = run("trigger", sid).strip()
    instance_when(stack["api"], triggered, "COMPLETED")
    run("backfill", sid, "2026-01-01T00:00:00", "2026-01-01T00:00:03")  # before it existed
    run("update", sid, "--cron", "0 3 * * *", "--tz", "Europe/Berlin")
    schedule_when(stack["api"], sid, lambda s: s["spec"]["timezone"] == "Europe/Berlin", "update")
    run("delete", sid)
    wait(lambda: sid not in run("list"), 30, "the delete")
    bad = runner.invoke(cli_main, ["schedule", "create", "x", "tick", "--cron", "* 25 * * *"])
    assert bad.exit_code != 0 and "invalid cron '* 25 * * *'" in bad.output


def test_schedules_page_shows_next_fire_last_runs_and_pauses(
    stack: dict[str, Any], browser: webdriver.Chrome
) -> None:
    api: Api = stack["api"]
    sid = f"ui-{uuid.uuid4().hex[:6]}"
    api.post("/v1/schedules", {"id": sid, "workflow": "tick", "every": "2s"})
    schedule_when(api, sid, lambda s: s["recent_runs"], "a run")
    browser.get(stack["server"].url + "/ui/#/schedules")
    row = f"#schedules tr[data-id='{sid}']"
    no_time = "\u2013"  # the page's dash for "none"
    wait_for(
        browser, lambda d: d.find_element(By.CSS_SELECTOR, row + " .next-fire").text != no_time
    )
    last = wait_for(
        browser,
        lambda d: d.find_element(By.CSS_SELECTOR, row + " .last-run").text or None,
    )
    assert sid + "-" in last
    click(browser, row + " button.pause-toggle")
    alert = wait_for(browser, lambda d: d.switch_to.alert)
    alert.send_keys("ui test")
    alert.accept()
    wait_for(
        browser,
        lambda d: d.find_element(By.CSS_SELECTOR, row + " [data-status='PAUSED']"),
    )
    assert schedule_when(api, sid, lambda s: s["paused"], "paused")["note"] == "ui test"

    click(browser, row + " a")  # the schedule's own page
    wait_for(browser, lambda d: len(d.find_elements(By.CSS_SELECTOR, "#next-fires li")) == 5)
    runs = wait_for(browser, lambda d: d.find_elements(By.CSS_SELECTOR, "#runs tbody tr") or None)
    assert runs[0].get_attribute("data-id").startswith(sid + "-")
    click(browser, "#s-title ~ p button.pause-toggle")  # unpause
    wait_for(browser, lambda d: d.find_element(By.CSS_SELECTOR, "#s-title [data-status='ACTIVE']"))
    click(browser, "#trigger")
    wait_for(browser, lambda d: "started " + sid in d.find_element(By.ID, "message").text)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    browser.save_screenshot(str(ARTIFACTS / "schedule-page.png"))
