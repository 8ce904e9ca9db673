"""The loops' garbage collection (processors/collector.py): start-up is frozen out of
collection, the young generation is collected as usual, the rest only when idle."""

from __future__ import annotations

import gc

from replayflow.processors import collector


def test_settle_freezes_start_up_and_raises_the_thresholds() -> None:
    before = gc.get_threshold()
    try:
        collector.settle()
        assert gc.get_freeze_count() > 0
        assert gc.get_threshold() == (collector.YOUNG, collector.RARE, collector.RARE)
    finally:
        gc.unfreeze()
        gc.set_threshold(*before)


def test_idle_collects_at_most_once_an_interval() -> None:
    idle = collector.IdleCollector(interval=3600)
    collections = gc.get_stats()[2]["collections"]
    idle.idle()  # an hour has not passed since it was made
    assert gc.get_stats()[2]["collections"] == collections
    now = collector.IdleCollector(interval=0)
    now.idle()
    assert gc.get_stats()[2]["collections"] > collections
