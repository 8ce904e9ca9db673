"""Shared fixtures.

- `kafka_bootstrap` (session): the broker of KAFKA_BOOTSTRAP (default 127.0.0.1:9092);
  FAILS the test with a clear message when it does not answer. `make test` starts the
  local broker and sets KAFKA_BOOTSTRAP; run `make up` before a bare `pytest`.
- `namespace`: a fresh topic namespace per test ("t" + 10 hex digits). Topics a Kafka
  test created in it are deleted after the test.
- `settings`: Settings for this test's namespace on that broker, 3 partitions.

Every test that uses `kafka_bootstrap` (directly or through `settings`), and every
test under tests/integration/ and tests/chaos/, is marked `kafka` automatically, so
`pytest -m "not kafka"` (`make test-unit`) runs without a broker. Unit tests build
`Settings(...)` themselves and never need these fixtures.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from replayflow.settings import DEFAULT_BOOTSTRAP, Settings

TEST_PARTITIONS = 3


# Tests in these folders need a broker even when they do not use the fixtures.
BROKER_FOLDERS = ("integration", "chaos")


def pytest_sessionstart(session: pytest.Session) -> None:
    """Refuse to test extensions built from older sources (setup.py: a `.so` beside a
    `.py` is imported first, so an edit would not be what runs)."""
    src = Path(__file__).resolve().parent.parent / "src"
    stale = [
        str(source.relative_to(src))
        for built in src.rglob("*.so")
        if (source := built.with_name(built.name.split(".", 1)[0] + ".py")).exists()
        and source.stat().st_mtime > built.stat().st_mtime
    ]
    if stale:
        pytest.exit(
            f"compiled modules are older than their sources ({', '.join(sorted(stale))}): "
            "run `make compiled` (or `make uncompiled` to test the plain sources)",
            returncode=2,
        )


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    tests_dir = Path(__file__).parent
    for item in items:
        try:
            folder = item.path.relative_to(tests_dir).parts[0]
        except ValueError:
            folder = ""
        if folder in BROKER_FOLDERS or "kafka_bootstrap" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.kafka)


def _admin(bootstrap: str):  # type: ignore[no-untyped-def]
    import logging

    from confluent_kafka.admin import AdminClient

    quiet = logging.getLogger("replayflow.tests.kafka")
    quiet.addHandler(logging.NullHandler())
    quiet.propagate = False
    return AdminClient({"bootstrap.servers": bootstrap, "logger": quiet})


@pytest.fixture(scope="session")
def kafka_bootstrap() -> str:
    bootstrap = os.environ.get("KAFKA_BOOTSTRAP", "").strip() or DEFAULT_BOOTSTRAP
    try:
        _admin(bootstrap).list_topics(timeout=10)
    except Exception as exc:  # KafkaException; anything else is just as fatal here
        pytest.fail(
            f"no Kafka broker answers at {bootstrap} ({exc}). Run the suite with "
            "`make test` (starts and stops a local broker), or `make up` first, or set "
            "KAFKA_BOOTSTRAP to a running cluster.",
            pytrace=False,
        )
    return bootstrap


@pytest.fixture
def namespace(request: pytest.FixtureRequest) -> Iterator[str]:
    ns = "t" + uuid.uuid4().hex[:10]
    yield ns
    if "kafka_bootstrap" in request.fixturenames:
        bootstrap = request.getfixturevalue("kafka_bootstrap")
        admin = _admin(bootstrap)
        try:
            mine = [t for t in admin.list_topics(timeout=10).topics if t.startswith(ns + ".")]
            if mine:
                for future in admin.delete_topics(mine, operation_timeout=10).values():
                    future.result()
        except Exception:  # cleanup is best effort; a leftover topic harms nobody
            pass


@pytest.fixture
def settings(kafka_bootstrap: str, namespace: str) -> Settings:
    return Settings(bootstrap=kafka_bootstrap, namespace=namespace, partitions=TEST_PARTITIONS)
