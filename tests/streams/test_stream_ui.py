"""The stream panel of the web UI's instance page in headless Chromium (as
tests/integration/test_ui.py drives it): values appear while the step writes them, a
failed attempt's values are struck through, `settled only` shows just the values that
count. Screenshot: tests/artifacts/ui-stream.png."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from selenium import webdriver
from selenium.webdriver.common.by import By

from replayflow.api.process import ApiServer
from tests.integration.test_ui import ARTIFACTS, browser, wait_for
from tests.streams import definitions as d
from tests.streams.conftest import KafkaEngine
from tests.streams.test_stream_readers import known_to_api
from tests.streams.test_streams import WORDS

pytestmark = pytest.mark.kafka
__all__ = ["browser"]  # the Chromium fixture


@pytest.fixture(scope="module")
def ui(kafka_stream_engine: KafkaEngine, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    server = ApiServer(
        kafka_stream_engine.settings, data_dir=tmp_path_factory.mktemp("stream-ui")
    ).start()
    try:
        server.wait_ready()
        yield server.url
    finally:
        server.stop()


def panel(driver: webdriver.Chrome) -> tuple[str, list[str], str]:
    """The panel's text, the struck-through parts, and its state line (as written:
    textContent keeps the spaces between words)."""
    out = driver.find_element(By.ID, "stream-out")
    void = [
        span.get_attribute("textContent") or ""
        for span in out.find_elements(By.CSS_SELECTOR, "span.void")
    ]
    text = out.get_attribute("textContent") or ""
    return text, void, driver.find_element(By.ID, "stream-state").text


def test_the_instance_page_streams_values_as_they_are_written(
    kafka_stream_engine: KafkaEngine, ui: str, browser: webdriver.Chrome, tmp_path: Path
) -> None:
    engine, gate = kafka_stream_engine, tmp_path / "gate"
    instance_id = f"ui-live-{uuid.uuid4().hex[:8]}"
    handle = engine.start(d.talker, {"words": WORDS, "gate": str(gate)}, id=instance_id)
    known_to_api(ui, instance_id)
    browser.get(f"{ui}/ui/#/instance/{instance_id}")
    assert wait_for(browser, lambda b: b.find_element(By.ID, "stream-name").get_attribute("value"))
    wait_for(browser, lambda b: panel(b)[0] == "durable ", timeout=30)
    assert not gate.exists()  # shown while the step waits to write the rest
    gate.touch()
    wait_for(browser, lambda b: panel(b)[0] == "".join(WORDS), timeout=30)
    wait_for(browser, lambda b: panel(b)[2] == "instance ended: COMPLETED")
    assert engine.result(handle) == len(WORDS)


def test_a_failed_attempt_is_struck_through_and_settled_hides_it(
    kafka_stream_engine: KafkaEngine, ui: str, browser: webdriver.Chrome
) -> None:
    engine = kafka_stream_engine
    instance_id = f"ui-retry-{uuid.uuid4().hex[:8]}"
    handle = engine.start(d.talker, {"words": WORDS, "fail_after": 2}, id=instance_id)
    assert engine.result(handle) == len(WORDS)
    known_to_api(ui, instance_id)
    browser.get(f"{ui}/ui/#/instance/{instance_id}")
    wait_for(browser, lambda b: panel(b)[2] == "instance ended: COMPLETED", timeout=30)
    text, void, _ = panel(browser)
    assert void == ["durable ", "streams "]  # attempt 1's words, struck through
    assert text == "durable streams " + "".join(WORDS)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    browser.save_screenshot(str(ARTIFACTS / "ui-stream.png"))

    browser.find_element(By.ID, "stream-settled").click()
    browser.find_element(By.ID, "stream-watch").click()
    wait_for(browser, lambda b: panel(b)[2] == "instance ended: COMPLETED", timeout=30)
    text, void, _ = panel(browser)
    assert (text, void) == ("".join(WORDS), [])
