"""Replication and min.insync.replicas fit the cluster's broker count (topics.yaml)."""

from __future__ import annotations

from replayflow.settings import Settings
from replayflow.topics import MIN_INSYNC, fitted_min_insync, load_topics


def test_one_broker_gets_one_replica_and_min_isr_one() -> None:
    for spec in load_topics(Settings()).values():
        assert spec.replication == 1
        assert spec.config[MIN_INSYNC] == "1"


def test_three_brokers_get_three_replicas_and_min_isr_two() -> None:
    for spec in load_topics(Settings(), brokers=3).values():
        assert spec.replication == 3
        assert spec.config[MIN_INSYNC] == "2"


def test_more_brokers_than_declared_stay_at_the_declared_most() -> None:
    one = load_topics(Settings())["commands"]
    five = one.for_brokers(5)
    assert (five.replication, five.config[MIN_INSYNC]) == (3, "2")
    assert one.for_brokers(2).replication == 2
    assert one.for_brokers(2).config[MIN_INSYNC] == "1"
    assert five.for_brokers(1) == one  # refitting is idempotent, from the declared most


def test_an_exact_replication_is_not_fitted() -> None:
    spec = load_topics(Settings(replication=2))["history"]
    assert spec.for_brokers(1).replication == 2
    assert spec.for_brokers(9).replication == 2
    assert spec.for_brokers(9).config[MIN_INSYNC] == "1"


def test_min_isr_stays_below_the_replication() -> None:
    assert [fitted_min_insync(2, r) for r in (1, 2, 3, 4)] == [1, 1, 2, 2]
    assert fitted_min_insync(1, 3) == 1
