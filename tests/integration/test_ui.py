"""The web UI in headless Chromium (Debian's chromium + chromedriver, via Selenium):
start workflows, then check what the pages show and do: the list (live counts, what
each instance waits for, search and filters kept in the URL), the instance page (its
timeline, history and actions), the workflows page and the dead letters (inspect,
redrive). Screenshots of every page go to tests/artifacts/ui/ (ignored by git)."""

from __future__ import annotations

import json
import re
import shutil
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from selenium import webdriver
from selenium.common.exceptions import StaleElementReferenceException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

import replayflow as rf
from replayflow import codec
from replayflow.api.process import ApiServer
from replayflow.core.messages import SendEvent
from replayflow.kafka import clients
from replayflow.kafka.producing import Record, deliver
from replayflow.processors.runtime import LocalRuntime
from replayflow.settings import Settings
from replayflow.topics import Topics, apply_topics, load_topics
from tests.integration.test_api import Api as _Api
from tests.integration.test_api import _delete_topics, _registry, instance_when

pytestmark = pytest.mark.kafka


@rf.step(retry=rf.Retry(limit=4, delay="1h", backoff="constant", jitter=False))
def declined(n: int) -> int:
    raise ConnectionError("the bank is down")


@rf.workflow(name="ui-cooling")
async def cooling(ctx: rf.Context, value: Any) -> Any:
    await ctx.sleep("cool-off", "1h")
    return value


@rf.workflow(name="ui-retrying")
async def retrying(ctx: rf.Context, value: Any) -> Any:
    return await ctx.step("charge", declined, 1)


@rf.workflow(name="ui-limited", concurrency=1)
async def limited(ctx: rf.Context, value: Any) -> Any:
    return await ctx.wait_for_event("go", timeout="1d")


ARTIFACTS = Path(__file__).resolve().parent.parent / "artifacts" / "ui"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"


@pytest.fixture(scope="module")
def stack(
    kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, Any]]:
    namespace = "t" + uuid.uuid4().hex[:10]
    settings = Settings(bootstrap=kafka_bootstrap, namespace=namespace, partitions=3)
    apply_topics(settings.bootstrap, load_topics(settings))
    data = tmp_path_factory.mktemp("ui")
    registry = _registry()
    registry.add(sys.modules[__name__])
    runtime = LocalRuntime(settings, registry, data_dir=data / "orchestrator").start()
    server = ApiServer(settings, data_dir=data).start()
    try:
        server.wait_ready()
        yield {"server": server, "api": _Api(server.url, token=None), "settings": settings}
    finally:
        server.stop()
        runtime.stop()
        _delete_topics(kafka_bootstrap, namespace)


@pytest.fixture(scope="module")
def browser() -> Iterator[webdriver.Chrome]:
    assert Path(CHROMIUM).exists() and Path(CHROMEDRIVER).exists(), (
        "Debian's chromium and chromium-driver are needed: `make browser` installs them"
    )
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in (
        "--headless=new",
        "--no-sandbox",
        "--disable-dev-shm-usage",
        "--disable-gpu",
        "--window-size=1280,1000",
    ):
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()


def wait_for(driver: webdriver.Chrome, predicate: Any, timeout: float = 20) -> Any:
    # The page re-renders as it polls the API: an element found a moment ago may be
    # gone, so a predicate that meets a stale element is simply tried again.
    return WebDriverWait(
        driver, timeout, poll_frequency=0.2, ignored_exceptions=(StaleElementReferenceException,)
    ).until(predicate)


def click(driver: webdriver.Chrome, selector: str) -> None:
    wait_for(driver, lambda d: d.find_element(By.CSS_SELECTOR, selector).click() or True)


def timeline(driver: webdriver.Chrome, count: int) -> list[dict[str, Any]]:
    """The timeline entries as plain values, once `count` of them are shown."""

    def snapshot(d: webdriver.Chrome) -> list[dict[str, Any]] | None:
        entries = d.find_elements(By.CSS_SELECTOR, "#timeline .entry")
        if len(entries) != count:
            return None
        return [
            {
                "key": e.get_attribute("data-key"),
                "kind": e.get_attribute("data-kind"),
                "text": e.text,
                "attempts": [a.text for a in e.find_elements(By.CSS_SELECTOR, ".attempt")],
            }
            for e in entries
        ]

    return wait_for(driver, snapshot)  # type: ignore[no-any-return]


def history_kinds(driver: webdriver.Chrome) -> list[str]:
    return wait_for(  # type: ignore[no-any-return]
        driver,
        lambda d: (
            [
                row.find_elements(By.TAG_NAME, "td")[2].text
                for row in d.find_elements(By.CSS_SELECTOR, "#history tbody tr")
            ]
            or None
        ),
    )


def test_list_page_shows_instances_and_live_counts(
    stack: dict[str, Any], browser: webdriver.Chrome
) -> None:
    api, run = stack["api"], uuid.uuid4().hex[:6]
    ids = [f"ui-{run}-{i}" for i in range(3)]
    api.post(
        "/v1/instances/batch",
        {"instances": [{"workflow": "greeter", "input": f"user {i}", "id": i} for i in ids]},
    )
    waiting = f"ui-{run}-waiting"
    api.post("/v1/instances", {"workflow": "approval", "input": 7, "id": waiting})
    for instance_id in ids:
        instance_when(api, instance_id, "COMPLETED")
    browser.get(stack["server"].url + "/ui/")
    rows = wait_for(
        browser,
        lambda d: (lambda r: r if len(r) >= 4 else None)(
            d.find_elements(By.CSS_SELECTOR, "#instances tbody tr")
        ),
    )
    shown = {row.get_attribute("data-id"): row.text for row in rows}
    for instance_id in ids:
        assert "COMPLETED" in shown[instance_id] and "greeter" in shown[instance_id]
    assert "RUNNING" in shown[waiting]
    wait_for(browser, lambda d: d.find_element(By.ID, "count-COMPLETED").text == "3")
    wait_for(browser, lambda d: d.find_element(By.ID, "count-RUNNING").text == "1")
    # Live: ending the waiting instance moves the counts without a reload.
    api.post(f"/v1/instances/{waiting}/terminate", {"reason": "ui test"})
    wait_for(browser, lambda d: d.find_element(By.ID, "count-TERMINATED").text == "1")
    wait_for(browser, lambda d: d.find_element(By.ID, "count-RUNNING").text == "0")
    # Filter by status.
    click(browser, '.count[data-status="TERMINATED"]')
    wait_for(
        browser,
        lambda d: (
            [
                r.get_attribute("data-id")
                for r in d.find_elements(By.CSS_SELECTOR, "#instances tbody tr")
            ]
            == [waiting]
        ),
    )
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    click(browser, '.count[data-status=""]')
    wait_for(browser, lambda d: len(d.find_elements(By.CSS_SELECTOR, "#instances tbody tr")) >= 4)
    browser.save_screenshot(str(ARTIFACTS / "ui-list.png"))


def test_instance_page_shows_timeline_attempts_waits_and_history(
    stack: dict[str, Any], browser: webdriver.Chrome
) -> None:
    api, run = stack["api"], uuid.uuid4().hex[:6]
    greeted, napped = f"page-{run}-greeter", f"page-{run}-napper"
    api.post("/v1/instances", {"workflow": "greeter", "input": "grace", "id": greeted})
    api.post("/v1/instances", {"workflow": "napper", "input": 0.3, "id": napped})
    instance_when(api, greeted, "COMPLETED")
    instance_when(api, napped, "COMPLETED")

    browser.get(stack["server"].url + "/ui/#/instance/" + greeted)
    wait_for(browser, lambda d: "COMPLETED" in d.find_element(By.ID, "i-title").text)
    entries = timeline(browser, 2)
    assert [e["key"] for e in entries] == ["greet", "wobbly"]
    attempts = entries[1]["attempts"]
    assert len(attempts) == 2
    assert "attempt 1 of 3: failed" in attempts[0] and "ConnectionError" in attempts[0]
    assert "attempt 2 of 3: completed" in attempts[1]
    assert '"grace"' in wait_for(browser, lambda d: d.find_element(By.ID, "i-input").text)
    assert "hello grace" in wait_for(browser, lambda d: d.find_element(By.ID, "i-output").text)
    kinds = history_kinds(browser)
    assert kinds[0] == "WorkflowStarted" and kinds[-1] == "WorkflowCompleted"
    assert "StepFailed" in kinds
    # stream.js's panel (RF.panel) sits above the timeline and reads the instance's stream.
    headings = [h.text for h in browser.find_elements(By.CSS_SELECTOR, "#view h2")]
    assert headings.index("Stream") == headings.index("Timeline") - 1, headings
    wait_for(browser, lambda d: "instance ended" in d.find_element(By.ID, "stream-state").text)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    browser.save_screenshot(str(ARTIFACTS / "ui-instance.png"))

    browser.get(stack["server"].url + "/ui/#/instance/" + napped)
    entries = timeline(browser, 3)
    assert [e["kind"] for e in entries] == ["step", "sleep", "step"]
    assert "until" in entries[1]["text"]

    # A wait shows as waiting while it waits.
    waiting = f"page-{run}-approval"
    api.post("/v1/instances", {"workflow": "approval", "input": 1, "id": waiting})
    browser.get(stack["server"].url + "/ui/#/instance/" + waiting)
    wait_for(
        browser,
        lambda d: any(
            e.get_attribute("data-kind") == "wait" and "waiting" in e.text
            for e in d.find_elements(By.CSS_SELECTOR, "#timeline .entry")
        ),
    )
    api.post(f"/v1/instances/{waiting}/events", {"name": "approve", "payload": {"by": "ui"}})
    wait_for(browser, lambda d: "COMPLETED" in d.find_element(By.ID, "i-title").text)
    assert '"by": "ui"' in wait_for(browser, lambda d: d.find_element(By.ID, "i-output").text)


def test_ui_asks_for_a_token_when_the_api_needs_one(stack: dict[str, Any]) -> None:
    # The UI's files are open; its API calls carry the token typed into the header.
    response = httpx.get(stack["server"].url + "/ui/app.js")
    assert response.status_code == 200 and "Authorization" in response.text
    _ = time  # keep the import for readers of the waits above


EPOCH_MS = re.compile(r"\b1\d{12}\b")  # a 13-digit epoch millisecond value


def page_text(driver: webdriver.Chrome) -> str:
    return str(driver.find_element(By.TAG_NAME, "body").text)


def now_of(driver: webdriver.Chrome, instance_id: str) -> str:
    row = driver.find_element(By.CSS_SELECTOR, f'#instances tr[data-id="{instance_id}"]')
    return str(row.find_element(By.CSS_SELECTOR, "td.now").text)


def act(driver: webdriver.Chrome, action: str, **fields: str) -> str:
    """Click an action, fill its form, submit it; the result line."""
    click(driver, f'#actions button[data-action="{action}"]:not([disabled])')
    wait_for(driver, lambda d: d.find_element(By.ID, "action-form").is_displayed())
    for name, value in fields.items():
        element = driver.find_element(By.ID, f"a-{name}")
        if element.tag_name == "select":
            from selenium.webdriver.support.ui import Select

            Select(element).select_by_value(value)
        else:
            element.clear()
            element.send_keys(value)
    click(driver, "#a-submit")
    return wait_for(  # type: ignore[no-any-return]
        driver,
        lambda d: (lambda r: r.text if r.is_displayed() and r.text else None)(
            d.find_element(By.ID, "action-result")
        ),
    )


def title_has(driver: webdriver.Chrome, status: str) -> None:
    wait_for(driver, lambda d: status in d.find_element(By.ID, "i-title").text, 30)


def test_actions_on_an_instance(stack: dict[str, Any], browser: webdriver.Chrome) -> None:
    api, run = stack["api"], uuid.uuid4().hex[:6]
    one, other = f"act-{run}-1", f"act-{run}-2"
    for instance_id in (one, other):
        api.post("/v1/instances", {"workflow": "approval", "input": 5, "id": instance_id})
    browser.get(stack["server"].url + "/ui/#/instance/" + one)
    wait_for(browser, lambda d: "waiting for event approve" in d.find_element(By.ID, "i-now").text)
    assert "pause: accepted" in act(browser, "pause", reason="ui pause")
    title_has(browser, "PAUSED")
    assert "resume: accepted" in act(browser, "resume")
    title_has(browser, "RUNNING")
    said = act(browser, "event", name="approve", payload='{"by": "ui"}')
    assert said.startswith("event approve: accepted")
    title_has(browser, "COMPLETED")
    assert '"by": "ui"' in browser.find_element(By.ID, "i-output").text
    # Restart from a chosen step: the results before it are kept, the code runs on.
    assert "restart: accepted" in act(browser, "restart", **{"from": "greet", "reason": "again"})
    title_has(browser, "RUNNING")
    wait_for(browser, lambda d: "waiting for event approve" in d.find_element(By.ID, "i-now").text)
    assert "WorkflowRestarted" in history_kinds(browser)
    assert "terminate: accepted" in act(browser, "terminate", reason="done with it")
    title_has(browser, "TERMINATED")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    browser.save_screenshot(str(ARTIFACTS / "ui-instance-actions.png"))
    # The engine's refusal is shown as it says it.
    browser.get(stack["server"].url + "/ui/#/instance/" + other)
    wait_for(browser, lambda d: "waiting for event approve" in d.find_element(By.ID, "i-now").text)
    refused = act(browser, "restart", **{"from": "greet"})
    assert refused.startswith("restart: accepted")
    assert "cancel: accepted" in act(browser, "cancel", reason="not needed")
    title_has(browser, "CANCELLED")


def test_the_list_says_what_each_instance_waits_for(
    stack: dict[str, Any], browser: webdriver.Chrome
) -> None:
    api, run = stack["api"], uuid.uuid4().hex[:6]
    api.post("/v1/instances", {"workflow": "ui-cooling", "id": f"sub-{run}-sleep"})
    api.post("/v1/instances", {"workflow": "ui-retrying", "id": f"sub-{run}-retry"})
    for i in range(3):
        api.post("/v1/instances", {"workflow": "ui-limited", "id": f"sub-{run}-q{i}"})
        time.sleep(0.05)
    browser.get(stack["server"].url + f"/ui/#/instances?q=sub-{run}-")
    wait_for(browser, lambda d: len(d.find_elements(By.CSS_SELECTOR, "#instances tbody tr")) == 5)
    wait_for(browser, lambda d: "sleeping (cool-off) until" in now_of(d, f"sub-{run}-sleep"))
    retry = wait_for(
        browser, lambda d: (t := now_of(d, f"sub-{run}-retry")).startswith("retry") and t
    )
    assert "retrying step charge at " in retry
    assert "attempt 2 of 4, last error ConnectionError: the bank is down" in retry
    wait_for(browser, lambda d: now_of(d, f"sub-{run}-q2") == "queued at position 2")
    assert now_of(browser, f"sub-{run}-q1") == "queued at position 1"
    assert "waiting for event go" in now_of(browser, f"sub-{run}-q0")
    assert not EPOCH_MS.search(page_text(browser))
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    browser.save_screenshot(str(ARTIFACTS / "ui-list-substates.png"))
    # The instance page says it too, and names the sleep.
    browser.get(stack["server"].url + f"/ui/#/instance/sub-{run}-sleep")
    entries = timeline(browser, 1)
    assert entries[0]["key"] == "cool-off" and "until" in entries[0]["text"]
    wait_for(browser, lambda d: "sleeping (cool-off) until" in d.find_element(By.ID, "i-now").text)
    assert not EPOCH_MS.search(page_text(browser))


def test_search_and_filters_are_kept_in_the_url(
    stack: dict[str, Any], browser: webdriver.Chrome
) -> None:
    api, run = stack["api"], uuid.uuid4().hex[:6]
    for i in range(2):
        api.post("/v1/instances", {"workflow": "greeter", "input": "x", "id": f"find-{run}-{i}"})
    api.post("/v1/instances", {"workflow": "napper", "input": 0.01, "id": f"find-{run}-nap"})
    for suffix in ("0", "1", "nap"):
        instance_when(api, f"find-{run}-{suffix}", "COMPLETED")
    browser.get(stack["server"].url + "/ui/")
    box = wait_for(browser, lambda d: d.find_element(By.ID, "search-q"))
    box.send_keys(f"find-{run}-")
    box.submit()
    wait_for(browser, lambda d: f"q=find-{run}-" in d.current_url)

    def ids(d: webdriver.Chrome) -> list[str]:
        return [
            r.get_attribute("data-id")
            for r in d.find_elements(By.CSS_SELECTOR, "#instances tbody tr")
        ]

    wait_for(
        browser, lambda d: sorted(ids(d)) == [f"find-{run}-0", f"find-{run}-1", f"find-{run}-nap"]
    )
    workflow = browser.find_element(By.ID, "f-workflow")
    workflow.clear()
    workflow.send_keys("napper")
    click(browser, '#filters button[type="submit"]')
    wait_for(browser, lambda d: "workflow=napper" in d.current_url)
    wait_for(browser, lambda d: ids(d) == [f"find-{run}-nap"])
    browser.refresh()  # a reload (or a shared link) keeps the filters
    wait_for(browser, lambda d: ids(d) == [f"find-{run}-nap"])
    assert browser.find_element(By.ID, "f-workflow").get_attribute("value") == "napper"
    assert browser.find_element(By.ID, "f-q").get_attribute("value") == f"find-{run}-"
    # A time range that holds nothing: the list says so.
    browser.get(
        stack["server"].url
        + f"/ui/#/instances?q=find-{run}-&from=2001-01-01T00:00&to=2001-01-02T00:00"
    )
    wait_for(browser, lambda d: "no instances match" in d.find_element(By.ID, "instances").text)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    browser.get(stack["server"].url + f"/ui/#/instances?q=find-{run}-&status=COMPLETED")
    wait_for(browser, lambda d: len(ids(d)) == 3)
    browser.save_screenshot(str(ARTIFACTS / "ui-search.png"))


def test_the_workflows_page(stack: dict[str, Any], browser: webdriver.Chrome) -> None:
    api, run = stack["api"], uuid.uuid4().hex[:6]
    api.post("/v1/instances", {"workflow": "greeter", "input": "w", "id": f"wf-{run}"})
    instance_when(api, f"wf-{run}", "COMPLETED")
    browser.get(stack["server"].url + "/ui/#/workflows")
    row = wait_for(
        browser, lambda d: d.find_element(By.CSS_SELECTOR, 'tr[data-workflow="greeter"]')
    )
    assert "run by" in row.text and "COMPLETED" in row.text
    names = [
        r.get_attribute("data-workflow")
        for r in browser.find_elements(By.CSS_SELECTOR, "#workflows tbody tr")
    ]
    assert {"greeter", "approval", "napper", "ui-cooling"} <= set(names)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    browser.save_screenshot(str(ARTIFACTS / "ui-workflows.png"))
    click(browser, 'tr[data-workflow="greeter"] a.count-link')
    wait_for(browser, lambda d: "workflow=greeter" in d.current_url and "status=" in d.current_url)


def test_dead_letters_inspect_and_redrive(stack: dict[str, Any], browser: webdriver.Chrome) -> None:
    settings: Settings = stack["settings"]
    run = uuid.uuid4().hex[:6]
    junk_key, later = f"junk-{run}", f"later-{run}"
    commands = Topics(settings).commands
    event = SendEvent(instance_id=later, name="approve", payload=json.dumps({"late": True}))
    deliver(
        clients.producer(settings),
        [
            Record(commands, b"\x00not avro", key=junk_key.encode()),
            Record(commands, codec.encode(event), key=later.encode()),
        ],
    )

    def entry_ids(d: webdriver.Chrome) -> dict[str, str] | None:
        found = {}
        for row in d.find_elements(By.CSS_SELECTOR, "#dlq tr[data-entry]"):
            key = row.find_elements(By.TAG_NAME, "td")[2].text
            found[key] = row.get_attribute("data-entry")
        return found if junk_key in found and later in found else None

    def open_dlq() -> dict[str, str]:
        # The page lists the dead letters once, when opened; the two records may not be
        # folded yet. Going to the same #/dlq address again is no navigation (the hash
        # does not change), so later tries press the page's own Reload button.
        def load(d: webdriver.Chrome) -> dict[str, str] | None:
            reload = d.find_elements(By.ID, "dlq-reload") if "#/dlq" in d.current_url else []
            if reload:
                reload[0].click()
            else:
                d.get(stack["server"].url + "/ui/#/dlq")
            time.sleep(0.5)
            return entry_ids(d)

        return wait_for(browser, load, 60)  # type: ignore[no-any-return]

    entries = open_dlq()
    click(browser, f'button[data-inspect="{entries[later]}"]')
    original = wait_for(
        browser,
        lambda d: d.find_element(By.CSS_SELECTOR, f'tr[data-detail="{entries[later]}"] pre'),
    ).text
    assert json.loads(original) == {
        "type": "SendEvent",
        "instance_id": later,
        "name": "approve",
        "payload": {"late": True},
    }
    click(browser, f'button[data-redrive="{entries[junk_key]}"]')
    refused = wait_for(
        browser,
        lambda d: (
            d.find_element(
                By.CSS_SELECTOR, f'tr[data-entry="{entries[junk_key]}"] .redrive-result'
            ).text
        ),
        60,  # a redrive reads the dlq partition and fences earlier ones: seconds when busy
    )
    assert refused.startswith("409: ") and "cannot succeed if redriven" in refused
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    browser.save_screenshot(str(ARTIFACTS / "ui-dlq.png"))
    # Once the instance exists, the event can be delivered: redrive it.
    stack["api"].post("/v1/instances", {"workflow": "approval", "input": 1, "id": later})
    click(browser, f'button[data-redrive="{entries[later]}"]')
    done = wait_for(
        browser,
        lambda d: (
            d.find_element(
                By.CSS_SELECTOR, f'tr[data-entry="{entries[later]}"] .redrive-result'
            ).text
        ),
        60,  # a redrive reads the dlq partition and fences earlier ones: seconds when busy
    )
    assert done.startswith("redriven to ")
    assert instance_when(stack["api"], later, "COMPLETED")["output"] == {"late": True}
