"""The schedules pages of the web UI in headless Chromium, against an API that needs a
token and an orchestrator with a worker on the real broker: the list (spec in words,
next fire time, pause with a note, unpause, trigger now and the run it starts), one
schedule (policies, next fire times, recent runs), the instance page of a run naming
its schedule, and a delete. Screenshots go to tests/artifacts/ui/ (ignored by git)."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

import pytest
from selenium import webdriver
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys

import replayflow as rf
from replayflow.core.definitions import Registry
from tests.integration.api_stack import api_stack, schedule_when
from tests.integration.test_api import Api, instance_when
from tests.integration.test_ui import ARTIFACTS, EPOCH_MS, browser, click, page_text, wait_for

pytestmark = pytest.mark.kafka
assert browser  # the module-scoped Chromium fixture, used by name below

TOKEN = "ui-schedules-token"


@rf.workflow(name="ui-sched-tick")
async def tick(ctx: rf.Context, input: Any = None) -> Any:
    return input


@pytest.fixture(scope="module")
def stack(
    kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, Any]]:
    data = tmp_path_factory.mktemp("ui-schedules")
    with api_stack(kafka_bootstrap, data, Registry.of(tick), token=TOKEN) as stack:
        yield stack


def iso(ms: int) -> str:
    """An epoch millisecond time as the page's <time datetime> writes it."""
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%dT%H:%M:%S.") + (
        f"{ms % 1000:03d}Z"
    )


def text(driver: webdriver.Chrome, selector: str) -> str:
    return str(driver.find_element(By.CSS_SELECTOR, selector).text)


def answer_dialog(driver: webdriver.Chrome, typed: str | None = None) -> None:
    dialog = wait_for(driver, lambda d: d.switch_to.alert)
    if typed is not None:
        dialog.send_keys(typed)
    dialog.accept()


def test_schedules_pages_pause_trigger_and_follow_a_run(
    stack: dict[str, Any], browser: webdriver.Chrome
) -> None:
    api: Api = stack["api"]
    url = stack["server"].url + "/ui/"
    run = uuid.uuid4().hex[:6]
    sid, weekdays = f"uis-{run}-hourly", f"uis-{run}-weekdays"
    # From tomorrow: no slot of the spec fires while the test runs, only the triggered run.
    tomorrow = int(time.time() * 1000) + 86_400_000
    for body in (
        {
            "id": sid,
            "workflow": "ui-sched-tick",
            "every": "1h",
            "start": tomorrow,
            "input": {"n": 1},
        },
        {
            "id": weekdays,
            "workflow": "ui-sched-tick",
            "cron": "30 9 * * MON-FRI",
            "timezone": "Europe/Berlin",
            "overlap": "buffer_one",
        },
    ):
        created = api.post("/v1/schedules", body)
        assert created.status_code == 202, created.text
    described = schedule_when(api, sid, lambda s: s["next_fire_times"], "the schedule")
    schedule_when(api, weekdays, lambda s: s["next_fire_times"], "the cron schedule")

    # Without the token the page says what the API answered; with it, the list shows.
    browser.get(url + "#/schedules")
    wait_for(browser, lambda d: "401" in text(d, "#message"))
    browser.find_element(By.ID, "token").send_keys(TOKEN, Keys.TAB)
    row = f"#schedules tr[data-id='{sid}']"
    wait_for(browser, lambda d: d.find_element(By.CSS_SELECTOR, row))
    assert "active" in str(
        browser.find_element(By.CSS_SELECTOR, "#nav a[data-page='schedules']").get_attribute(
            "class"
        )
    )
    assert text(browser, row + " td:nth-child(2)") == "ui-sched-tick"
    spec_words = text(browser, row + " .spec")
    assert spec_words.startswith("every 1 h, from "), spec_words
    next_fire = browser.find_element(By.CSS_SELECTOR, row + " .next-fire time")
    assert next_fire.get_attribute("datetime") == iso(described["next_fire_times"][0])
    assert "(in 1 d" in text(browser, row + " .next-fire")
    assert text(browser, row + " [data-status]") == "ACTIVE"
    assert text(browser, row + " .last-run") == "\u2013"  # no run yet
    assert text(browser, f"#schedules tr[data-id='{weekdays}'] .spec") == (
        "at 09:30 on Mon\u2013Fri (30 9 * * MON-FRI, Europe/Berlin)"
    )

    # Pause with a note: the row and the API say PAUSED.
    click(browser, row + " button[data-action='pause']")
    answer_dialog(browser, "maintenance window")
    wait_for(browser, lambda d: text(d, row + " [data-status]") == "PAUSED")
    assert "maintenance window" in text(browser, row + " .state")
    assert "if unpaused" in text(browser, row + " .next-fire")
    paused = schedule_when(api, sid, lambda s: s["paused"], "paused")
    assert paused["note"] == "maintenance window"

    click(browser, row + " button[data-action='unpause']")
    wait_for(browser, lambda d: text(d, row + " [data-status]") == "ACTIVE")
    assert not api.get(f"/v1/schedules/{sid}").json()["paused"]

    # Trigger now: the run shows in the row, and how it ended once it has.
    click(browser, row + " button[data-action='trigger']")
    said = wait_for(browser, lambda d: (m := text(d, "#message")).startswith("started ") and m)
    started = said.removeprefix("started ")
    assert started.startswith(sid + "-"), said
    run_link = f"{row} .last-run a[href='#/instance/{quote(started, safe='')}']"
    wait_for(browser, lambda d: d.find_element(By.CSS_SELECTOR, run_link))
    wait_for(browser, lambda d: "COMPLETED" in text(d, row + " .last-run"), 60)
    instance = instance_when(api, started, "COMPLETED")
    assert instance["schedule_id"] == sid and instance["output"] == {"n": 1}
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    browser.save_screenshot(str(ARTIFACTS / "ui-schedules.png"))

    # The schedule's page: spec, policies, next fire times (as many as asked), runs.
    click(browser, row + " td.id a")
    wait_for(browser, lambda d: text(d, "#s-title") == sid + " ACTIVE")
    assert text(browser, "#s-spec") == spec_words
    policies = text(browser, "#s-policies")
    assert "skip" in policies and "5 min" in policies, policies
    wait_for(browser, lambda d: len(d.find_elements(By.CSS_SELECTOR, "#next-fires li")) == 5)
    fires = browser.find_elements(By.CSS_SELECTOR, "#next-fires li time")
    shown = [f.get_attribute("datetime") for f in fires]
    expected = api.get(f"/v1/schedules/{sid}", next=5).json()["next_fire_times"]
    assert shown == [iso(ms) for ms in expected]
    count = browser.find_element(By.ID, "next-count")
    count.send_keys(Keys.CONTROL, "a")
    count.send_keys("8", Keys.TAB)
    wait_for(browser, lambda d: len(d.find_elements(By.CSS_SELECTOR, "#next-fires li")) == 8)
    assert "next=8" in browser.current_url
    run_row = f"#runs tr[data-id='{started}']"
    assert "trigger" in text(browser, run_row) and "COMPLETED" in text(browser, run_row)
    browser.save_screenshot(str(ARTIFACTS / "ui-schedule.png"))

    # A run's link opens its instance page, which names the schedule and the slot.
    click(browser, run_row + " a")
    wait_for(browser, lambda d: "COMPLETED" in text(d, "#i-title"))
    assert browser.current_url.endswith("#/instance/" + quote(started, safe=""))
    schedule = wait_for(browser, lambda d: d.find_element(By.ID, "i-schedule"))
    assert schedule.text.startswith(sid + " slot ")
    slot = browser.find_element(By.CSS_SELECTOR, "#i-schedule time").get_attribute("datetime")
    assert slot == iso(instance["schedule_slot"])
    wait_for(browser, lambda d: "WorkflowCompleted" in text(d, "#history"))
    assert not EPOCH_MS.search(page_text(browser))  # the history's schedule_slot as a time
    browser.save_screenshot(str(ARTIFACTS / "ui-schedule-run.png"))
    click(browser, "#i-schedule a")
    wait_for(browser, lambda d: sid in text(d, "#s-title"))

    # Delete, after a confirm: back on the list, which no longer has it.
    click(browser, "#delete")
    answer_dialog(browser)
    wait_for(browser, lambda d: d.current_url.endswith("#/schedules?deleted=" + sid))
    wait_for(browser, lambda d: text(d, "#message").startswith("deleted " + sid))
    wait_for(
        browser, lambda d: d.find_elements(By.CSS_SELECTOR, f"#schedules tr[data-id='{weekdays}']")
    )
    assert not browser.find_elements(By.CSS_SELECTOR, row)
    assert api.get(f"/v1/schedules/{sid}").status_code == 404
    instance_when(api, started, "COMPLETED")  # the runs it started go on
