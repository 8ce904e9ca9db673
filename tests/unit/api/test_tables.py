"""LocalStore counters and faust's table recovery (restore writes bypass `apply`)."""

from __future__ import annotations

import bisect
from types import SimpleNamespace
from typing import Any

from replayflow.api import projection as p
from replayflow.api.tables import LocalStore

TOPIC = "api-readmodel-changelog"


class _Iter:
    def __init__(self, db: _Db) -> None:
        self.keys = sorted(db.data)
        self.db = db
        self.i = 0

    def seek(self, start: bytes) -> None:
        self.i = bisect.bisect_left(self.keys, start)

    def valid(self) -> bool:
        return self.i < len(self.keys)

    def key(self) -> bytes:
        return self.keys[self.i]

    def value(self) -> bytes:
        return self.db.data[self.keys[self.i]]

    def next(self) -> None:
        self.i += 1


class _Db:
    def __init__(self) -> None:
        self.data: dict[bytes, bytes] = {}

    def get(self, k: bytes) -> bytes | None:
        return self.data.get(k)

    def iter(self) -> _Iter:
        return _Iter(self)


class _Table:
    """A faust table over one partition's database (writes go to it directly)."""

    def __init__(self, db: _Db) -> None:
        self.db = db
        self.changelog_topic = SimpleNamespace(get_topic_name=lambda: TOPIC)
        self.data = SimpleNamespace(_dbs={0: db})

    def __contains__(self, k: bytes) -> bool:
        return k in self.db.data

    def __setitem__(self, k: bytes, v: bytes) -> None:
        self.db.data[k] = v

    def __delitem__(self, k: bytes) -> None:
        del self.db.data[k]


def _app() -> Any:
    recovery = SimpleNamespace(_recovery_ended_at=None)
    return SimpleNamespace(
        in_recovery=False,
        consumer_generation_id=1,
        tables=SimpleNamespace(recovery=recovery),
        assignor=SimpleNamespace(
            assigned_actives=lambda: [SimpleNamespace(topic=TOPIC, partition=0)]
        ),
    )


def _restore(db: _Db, instance_id: str) -> None:
    """What faust's changelog restore does: write the database, not through apply."""
    db.data[p.index_key("all", 1000, instance_id)] = b"1"


def test_counter_built_during_restore_is_not_kept() -> None:
    db, app = _Db(), _app()
    store = LocalStore(_Table(db), app)
    app.in_recovery = True
    app.tables.recovery._recovery_ended_at = None
    _restore(db, "a")
    assert store.counters()["all"] == 1  # counted mid-restore...
    _restore(db, "b")
    assert store.counters()["all"] == 2  # ...but not cached: the rest is seen
    app.in_recovery = False
    app.tables.recovery._recovery_ended_at = 5.0
    assert store.counters()["all"] == 2


def test_counter_recounted_after_a_recovery_ends() -> None:
    db, app = _Db(), _app()
    store = LocalStore(_Table(db), app)
    _restore(db, "a")
    assert store.counters()["all"] == 1  # cached before the restore started
    _restore(db, "b")  # restored later (same consumer generation)
    app.tables.recovery._recovery_ended_at = 7.0
    assert store.counters()["all"] == 2


def test_apply_keeps_a_cached_counter_exact() -> None:
    db, app = _Db(), _app()
    store = LocalStore(_Table(db), app)
    assert store.counters()["all"] == 0
    k = p.index_key("all", 1000, "a")
    store.apply(0, [(k, b"1")])
    store.apply(0, [(k, b"1")])
    assert store.counters()["all"] == 1
    store.apply(0, [(k, None)])
    assert store.counters()["all"] == 0
