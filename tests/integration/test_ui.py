"""The web UI in headless Chromium (Debian's chromium + chromedriver, via Selenium):
start workflows, then check what the list and the instance page show. Screenshots go to
tests/artifacts/."""

from __future__ import annotations

import shutil
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

from replayflow.api.process import ApiServer
from replayflow.processors.runtime import LocalRuntime
from replayflow.settings import Settings
from replayflow.topics import apply_topics, load_topics
from tests.integration.test_api import Api as _Api
from tests.integration.test_api import _delete_topics, _registry, instance_when

pytestmark = pytest.mark.kafka

ARTIFACTS = Path(__file__).resolve().parent.parent / "artifacts"
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
    runtime = LocalRuntime(settings, _registry(), data_dir=data / "orchestrator").start()
    server = ApiServer(settings, data_dir=data).start()
    try:
        server.wait_ready()
        yield {"server": server, "api": _Api(server.url, token=None)}
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
    ARTIFACTS.mkdir(exist_ok=True)
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
    assert "attempt 1: failed" in attempts[0] and "ConnectionError" in attempts[0]
    assert "attempt 2: completed" in attempts[1]
    assert '"grace"' in wait_for(browser, lambda d: d.find_element(By.ID, "i-input").text)
    assert "hello grace" in wait_for(browser, lambda d: d.find_element(By.ID, "i-output").text)
    kinds = history_kinds(browser)
    assert kinds[0] == "WorkflowStarted" and kinds[-1] == "WorkflowCompleted"
    assert "StepFailed" in kinds
    ARTIFACTS.mkdir(exist_ok=True)
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
