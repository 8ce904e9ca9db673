"""benchmarks/broker_settings.py against the real broker: `make bench` switches the
broker's check of transactional writes for one section and must leave the broker as it
found it, whatever it found."""

from __future__ import annotations

import pytest
from benchmarks import broker_settings

from replayflow.settings import Settings

pytestmark = pytest.mark.kafka


def test_verification_is_switched_inside_the_block_and_put_back_after(
    settings: Settings,
) -> None:
    before = broker_settings.verification(settings)
    assert before, "the cluster lists no broker"
    flipped = not next(iter(before.values()))
    with broker_settings.verification_set(settings, flipped):
        assert set(broker_settings.verification(settings).values()) == {flipped}
    assert broker_settings.verification(settings) == before


def test_verification_is_put_back_when_the_block_fails(settings: Settings) -> None:
    before = broker_settings.verification(settings)
    with (
        pytest.raises(RuntimeError, match="a section failed"),
        broker_settings.verification_set(settings, True),
    ):
        raise RuntimeError("a section failed")
    assert broker_settings.verification(settings) == before
