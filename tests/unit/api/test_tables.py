"""The read model's store (real rocksdict) as faust drives it, and LocalStore's reads and
counters over it: restores from the changelog and rebalances bypass `apply`, and the
counts stay exact."""

from __future__ import annotations

import ast
import asyncio
import functools
import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import faust
import faust.stores
import mode
import pytest
from faust.types import TP

from replayflow.api import projection as p
from replayflow.api.tables import LocalStore
from replayflow.api.tablestore import STORE_URL, ReadModelStore

TOPIC = "api-readmodel-changelog"
API = Path(__file__).resolve().parents[3] / "src" / "replayflow" / "api"


class _Assignor:
    """What faust's assignor publishes: the partitions this process serves."""

    def __init__(self, actives: set[int], standbys: set[int] | None = None) -> None:
        self.actives = actives
        self.standbys = standbys or set()

    def assigned_actives(self) -> set[TP]:
        return {TP(TOPIC, n) for n in self.actives}

    def assigned_standbys(self) -> set[TP]:
        return {TP(TOPIC, n) for n in self.standbys}


class _Table:
    """A faust table over the store: a write lands in the partition of the event being
    processed (`partition`), as faust's table sends it."""

    def __init__(self, app: Any) -> None:
        self.name = "readmodel"
        self.partition = 0
        self.changelog_topic = SimpleNamespace(
            topics=frozenset({TOPIC}), get_topic_name=lambda: TOPIC
        )
        self.data = ReadModelStore(STORE_URL, app, self)

    def __setitem__(self, k: bytes, v: bytes) -> None:
        self.data.put(self.partition, k, v)

    def __delitem__(self, k: bytes) -> None:
        self.data.delete(self.partition, k)


def _setup(tmp_path: Path, actives: set[int] | None = None) -> tuple[Any, _Table, LocalStore]:
    app = SimpleNamespace(
        conf=SimpleNamespace(tabledir=tmp_path),
        assignor=_Assignor({0} if actives is None else actives),
    )
    table = _Table(app)
    for partition in app.assignor.actives:
        table.data.open(partition)
    return app, table, LocalStore(table, app)


def _changelog(partition: int, offset: int, key: bytes, value: bytes | None) -> Any:
    message = SimpleNamespace(
        tp=TP(TOPIC, partition), partition=partition, offset=offset, key=key, value=value
    )
    return SimpleNamespace(message=message)


def _restore(store: ReadModelStore, partition: int, offset: int, instance_id: str) -> None:
    """What faust's recovery does: a changelog batch into the store, not through apply."""
    batch = [_changelog(partition, offset, p.index_key("all", 1000, instance_id), b"1")]
    store.apply_changelog_batch(batch, to_key=lambda k: k, to_value=lambda v: v)


def _index(instance_id: str) -> bytes:
    return p.index_key("all", 1000, instance_id)


def _rebalance(
    app: Any, table: _Table, actives: set[int], revoked: set[int], new: set[int]
) -> None:
    """What faust's table manager does on a rebalance: the store's on_rebalance."""
    app.assignor.actives = actives
    rebalance = table.data.on_rebalance(
        {TP(TOPIC, n) for n in actives},
        {TP(TOPIC, n) for n in revoked},
        {TP(TOPIC, n) for n in new},
    )
    asyncio.run(rebalance)


# -- counters ----------------------------------------------------------------------


def test_a_counter_built_during_a_restore_sees_the_rest_of_it(tmp_path: Path) -> None:
    _, table, store = _setup(tmp_path)
    _restore(table.data, 0, 0, "a")
    assert store.counters()["all"] == 1  # counted mid-restore...
    _restore(table.data, 0, 1, "b")
    assert store.counters()["all"] == 2  # ...and recounted after the next batch


def test_a_counter_is_recounted_after_a_restore_following_it(tmp_path: Path) -> None:
    _, table, store = _setup(tmp_path)
    store.apply(0, [(_index("a"), b"1")])
    assert store.counters()["all"] == 1  # cached before the restore started
    _restore(table.data, 0, 5, "b")
    assert store.counters()["all"] == 2


def test_apply_keeps_a_cached_counter_exact(tmp_path: Path) -> None:
    _, table, store = _setup(tmp_path)
    assert store.counters()["all"] == 0
    k = _index("a")
    store.apply(0, [(k, b"1")])
    store.apply(0, [(k, b"1")])
    assert store.counters()["all"] == 1
    store.apply(0, [(k, None)])
    store.apply(0, [(k, None)])
    assert store.counters()["all"] == 0
    assert table.data.read(0, k) is None


def test_counts_stay_exact_over_a_rebalance(tmp_path: Path) -> None:
    app, table, store = _setup(tmp_path, actives={0, 1})
    table.partition = 1
    store.apply(1, [(_index("b"), b"1")])
    table.partition = 0
    store.apply(0, [(_index("a"), b"1")])
    assert store.counters()["all"] == 2
    _rebalance(app, table, actives={0}, revoked={1}, new=set())
    assert store.counters()["all"] == 1
    assert store.get(_index("b")) is None
    # partition 1 comes back: its file kept what it had, the changelog adds the rest
    _rebalance(app, table, actives={0, 1}, revoked=set(), new={1})
    _restore(table.data, 1, 9, "c")
    assert store.counters()["all"] == 3
    assert store.get(_index("b")) == 1


def test_a_reopened_partition_is_recounted(tmp_path: Path) -> None:
    app, table, store = _setup(tmp_path)
    store.apply(0, [(_index("a"), b"1")])
    assert store.counters()["all"] == 1
    _rebalance(app, table, actives=set(), revoked={0}, new=set())
    assert store.counters() == {}
    # written elsewhere meanwhile (another process owned it; same directory here)
    other = _Table(app)
    other.data.put(0, _index("z"), b"1")
    other.data.close(0)
    _rebalance(app, table, actives={0}, revoked=set(), new={0})
    assert store.counters()["all"] == 2


# -- reads --------------------------------------------------------------------------


def test_scan_merges_the_active_partitions_in_key_order(tmp_path: Path) -> None:
    app, table, store = _setup(tmp_path, actives={0, 1, 2})
    for partition, names in ((0, "ad"), (1, "be"), (2, "cf")):
        table.partition = partition
        store.apply(partition, [(p.instance_key(n), json.dumps({"id": n}).encode()) for n in names])
    prefix = p.key("i", "")
    assert [v["id"] for _, v in store.scan(prefix)] == list("abcdef")
    assert [v["id"] for _, v in store.scan(prefix, p.instance_key("c"), limit=2)] == ["c", "d"]
    assert store.get(p.instance_key("e")) == {"id": "e"}
    app.assignor.actives = {0, 2}  # partition 1 moved to a standby: its owner answers
    app.assignor.standbys = {1}
    assert [v["id"] for _, v in store.scan(prefix)] == list("acdf")
    assert store.get(p.instance_key("e")) is None
    assert not store.owns(1) and store.owns(2)


def test_reads_stop_at_the_prefix_and_skip_closed_partitions(tmp_path: Path) -> None:
    _, table, store = _setup(tmp_path, actives={0})
    store.apply(0, [(p.key("i", "a"), b"1"), (p.key("j", "a"), b"2")])
    assert [k for k, _ in store.scan(p.key("i", ""))] == [p.key("i", "a")]
    assert store.read(3, p.key("i", "a")) is None
    assert list(table.data.scan(3, b"")) == []


# -- the store as faust drives it ----------------------------------------------------


def test_restore_writes_and_persists_the_changelog_offset(tmp_path: Path) -> None:
    _, table, _ = _setup(tmp_path)
    data = table.data
    tp = TP(TOPIC, 0)
    assert data.persisted_offset(tp) is None
    batch = [_changelog(0, 3, b"k", b"v"), _changelog(0, 4, b"gone", b"x")]
    batch.append(_changelog(0, 5, b"gone", None))
    data.apply_changelog_batch(batch, to_key=lambda k: k, to_value=lambda v: v)
    assert data.read(0, b"k") == b"v" and data.read(0, b"gone") is None
    assert data.persisted_offset(tp) == 5
    data.set_persisted_offset(tp, 8)
    assert data.persisted_offset(tp) == 8


def test_a_late_offset_for_a_revoked_partition_does_not_reopen_it(tmp_path: Path) -> None:
    app, table, _ = _setup(tmp_path)
    table.data.set_persisted_offset(TP(TOPIC, 0), 2)
    _rebalance(app, table, actives=set(), revoked={0}, new=set())
    table.data.set_persisted_offset(TP(TOPIC, 0), 3)
    assert 0 not in table.data.databases
    assert table.data.persisted_offset(TP(TOPIC, 0)) == 2  # reopened here, for recovery


def test_standbys_are_not_opened_on_assignment(tmp_path: Path) -> None:
    app, table, _ = _setup(tmp_path, actives=set())
    app.assignor.standbys = {1}
    _rebalance(app, table, actives={0}, revoked=set(), new={0, 1})
    assert sorted(table.data.databases) == [0]


def test_reset_state_drops_the_files_and_moves_the_epoch(tmp_path: Path) -> None:
    _, table, store = _setup(tmp_path)
    store.apply(0, [(_index("a"), b"1")])
    assert store.counters()["all"] == 1
    table.data.reset_state()
    assert not table.data.partition_path(0).exists()
    assert store.counters() == {}


def test_files_are_where_fausts_rocksdb_store_keeps_them(tmp_path: Path) -> None:
    _, table, _ = _setup(tmp_path)
    assert table.data.partition_path(4) == tmp_path / "readmodel-4.db"
    assert table.data.partition_path(0).is_dir()


def test_faust_builds_the_table_on_this_store(tmp_path: Path) -> None:
    assert faust.stores.by_url(STORE_URL) is ReadModelStore
    app = faust.App("t-tables", broker="kafka://127.0.0.1:1", datadir=str(tmp_path))
    table = app.Table("readmodel", partitions=3, key_type=bytes, value_type=bytes, store=STORE_URL)
    assert isinstance(table.data, ReadModelStore)
    assert table.data.partition_path(2).name == "readmodel-2.db"


# -- no private faust state ----------------------------------------------------------


@functools.cache
def _faust_private_names() -> frozenset[str]:
    """Every underscore name faust (and mode, its service base) defines or uses."""
    names: set[str] = set()
    for package in (faust, mode):
        for path in Path(package.__file__).parent.rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if isinstance(node, ast.Attribute):
                    names.add(node.attr)
                elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                    names.add(node.name)
                elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
                    names.add(node.target.id)
    return frozenset(n for n in names if n.startswith("_") and not n.endswith("__"))


def _own_names(cls: ast.ClassDef) -> set[str]:
    """What a class defines itself: its methods and the attributes it assigns."""
    names = {n.name for n in cls.body if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)}
    for node in ast.walk(cls):
        targets = node.targets if isinstance(node, ast.Assign) else []
        if isinstance(node, ast.AnnAssign):
            targets = [node.target]
        for target in targets:
            mine = isinstance(target, ast.Attribute) and isinstance(target.value, ast.Name)
            if mine and target.value.id == "self":
                names.add(target.attr)
    return names


def private_faust_reads(source: str, private: frozenset[str]) -> list[str]:
    """`x._name` / getattr(x, "_name") for a faust private name, unless x is self (or
    cls) and the class defines `_name` itself (an override of a faust hook is fine, a
    read of an inherited private is not)."""
    found: list[str] = []

    def visit(node: ast.AST, own: set[str]) -> None:
        if isinstance(node, ast.ClassDef):
            own = _own_names(node)
        if isinstance(node, ast.Attribute) and node.attr in private:
            mine = isinstance(node.value, ast.Name) and node.value.id in ("self", "cls")
            if not (mine and node.attr in own):
                found.append(ast.unparse(node))
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id in ("getattr", "hasattr", "setattr")
            and len(node.args) >= 2
            and isinstance(node.args[1], ast.Constant)
            and node.args[1].value in private
        ):
            found.append(ast.unparse(node))
        for child in ast.iter_child_nodes(node):
            visit(child, own)

    visit(ast.parse(source), set())
    return found


def test_the_check_catches_the_reads_it_is_for() -> None:
    private = _faust_private_names()
    assert {"_dbs", "_db_for_partition", "_recovery_ended_at"} <= private
    old = """
class LocalStore:
    def _db(self, partition):
        return self.table.data._dbs.get(partition)
    def _epoch(self):
        return getattr(self.app.tables.recovery, "_recovery_ended_at", None)
class Sub(Store):
    def db(self, n):
        return self._db_for_partition(n)
    def _get(self, key):
        return None
"""
    assert private_faust_reads(old, private) == [
        "self.table.data._dbs",
        "getattr(self.app.tables.recovery, '_recovery_ended_at', None)",
        "self._db_for_partition",
    ]


@pytest.mark.parametrize("path", sorted(API.rglob("*.py")), ids=lambda p: p.name)
def test_api_reads_no_private_faust_state(path: Path) -> None:
    private = _faust_private_names()
    assert private_faust_reads(path.read_text(encoding="utf-8"), private) == []
