"""The Store protocol, run against every implementation (tests/unit/stores.py): the fold
(processors/fold.py) relies on nothing but what these tests check."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from replayflow.core.state import Call, CallKind, CallStatus, Info, InstanceState, Status
from replayflow.store import counts, keys, serde
from replayflow.store.partition import PartitionStore
from replayflow.store.pending import Pending
from replayflow.store.protocol import Store
from tests.unit.stores import KINDS, open_store


def test_a_new_store_is_empty(store: Store) -> None:
    assert store.get(b"k") is None
    assert list(store.scan(b"")) == []
    assert store.changelog_offset() == -1
    assert store.written_at() is None


def test_a_write_puts_and_deletes_with_the_changelog_offset(store: Store) -> None:
    store.write({b"a": b"1", b"b": b"2"}, 7)
    assert (store.get(b"a"), store.get(b"b"), store.changelog_offset()) == (b"1", b"2", 7)
    store.write({b"a": None, b"b": b"3", b"c": b"4"}, None)  # no offset: the last stays
    assert store.get(b"a") is None
    assert (store.get(b"b"), store.get(b"c"), store.changelog_offset()) == (b"3", b"4", 7)
    store.write({b"never-written": None}, 8)  # deleting what is absent is no error
    assert store.changelog_offset() == 8
    assert store.written_at() is not None


def test_scans_walk_a_prefix_in_key_order(store: Store) -> None:
    store.write({b"p/3": b"c", b"p/1": b"a", b"q/1": b"x", b"p/2": b"b", b"o/9": b"y"}, None)
    assert list(store.scan(b"p/")) == [(b"p/1", b"a"), (b"p/2", b"b"), (b"p/3", b"c")]
    assert [k for k, _ in store.scan(b"p/", seek=b"p/2")] == [b"p/2", b"p/3"]
    assert [k for k, _ in store.scan(b"p/", seek=b"p/25")] == [b"p/3"]
    # With `end`, the scan runs past the prefix up to (not including) `end`.
    assert [k for k, _ in store.scan(b"o/", end=b"p/3")] == [b"o/9", b"p/1", b"p/2"]
    assert list(store.scan(b"r/")) == []


def test_one_instance_prefix_never_covers_another(store: Store) -> None:
    # '/' may appear in an id (children); NUL ends it, so "a" never scans "a/b" calls.
    store.write(
        {
            keys.call("a", 0): b"a0",
            keys.call("a", 1): b"a1",
            keys.call("a/b", 0): b"ab0",
            keys.info("a"): b"ai",
            keys.info("a/b"): b"abi",
        },
        None,
    )
    assert [v for _, v in store.scan(keys.calls_prefix("a"))] == [b"a0", b"a1"]
    assert [v for _, v in store.scan(keys.calls_prefix("a/b"))] == [b"ab0"]


def test_timers_scan_by_due_time(store: Store) -> None:
    store.write(
        {
            keys.timer(2_000, "x", "late"): b"",
            keys.timer(500, "y", "early"): b"",
            keys.timer(1_000, "x", "mid"): b"",
        },
        None,
    )
    due = [
        keys.parse_timer(k) for k, _ in store.scan(keys.TIMERS, end=keys.timers_due_before(1_000))
    ]
    assert due == [(500, "y", "early"), (1_000, "x", "mid")]


def test_pending_changes_read_before_the_store(store: Store) -> None:
    store.write({b"a": b"stored", b"b": b"stored"}, None)
    pending = Pending(store)
    pending.put(b"a", b"pending")
    pending.delete(b"b")
    pending.put(b"c", b"new")
    assert (pending.get(b"a"), pending.get(b"b"), pending.get(b"c")) == (b"pending", None, b"new")
    assert store.get(b"a") == b"stored"  # nothing reaches the store before its write
    store.write(pending.changes, 1)
    assert (store.get(b"a"), store.get(b"b"), store.get(b"c")) == (b"pending", None, b"new")


@pytest.mark.parametrize("kind", KINDS)
def test_destroy_leaves_nothing(kind: str, tmp_path: Path) -> None:
    store = open_store(kind, tmp_path)
    store.write({b"a": b"1"}, 3)
    store.destroy()
    again = store if kind == "memory" else open_store(kind, tmp_path)
    assert again.get(b"a") is None and again.changelog_offset() == -1
    again.close()


def test_rocksdb_keeps_what_it_wrote(tmp_path: Path) -> None:
    first = PartitionStore(tmp_path / "p3", 3)
    first.write({b"a": b"1"}, 41)
    first.close()
    second = PartitionStore(tmp_path / "p3", 3)
    assert (second.get(b"a"), second.changelog_offset(), second.partition) == (b"1", 41, 3)
    second.close()


def _state(instance_id: str, status: Status, *calls: CallStatus) -> InstanceState:
    info = Info(
        instance_id=instance_id,
        workflow="wf",
        version="1",
        status=status,
        input="null",
        started_at=1,
    )
    return InstanceState(
        info=info,
        calls=tuple(
            Call(index=i, kind=CallKind.STEP, key=f"s{i}", status=s, function="fn")
            for i, s in enumerate(calls)
        ),
    )


def test_a_store_is_counted_by_status(store: Store) -> None:
    assert counts.stored(store) is None
    assert counts.count(store) == (counts.zero(), False)
    changes: dict[bytes, bytes | None] = {}
    for state in (
        _state("r", Status.RUNNING, CallStatus.COMPLETED, CallStatus.SCHEDULED),
        _state("r/child", Status.RUNNING, CallStatus.BACKOFF),
        _state("w", Status.RUNNING, CallStatus.WAITING),
        _state("q", Status.QUEUED),
        _state("s", Status.SUSPENDED, CallStatus.FAILED),
        _state("done", Status.COMPLETED, CallStatus.COMPLETED),
    ):
        changes[keys.info(state.info.instance_id)] = serde.dump_info(state.info)
        changes[keys.input(state.info.instance_id)] = b"null"
        for call in state.calls:
            changes[keys.call(state.info.instance_id, call.index)] = serde.dump_call(call)
    store.write(changes, None)
    found, held = counts.count(store)
    assert held
    assert found == {"running": 2, "waiting": 1, "queued": 1, "suspended": 1}
    store.write({keys.STATUS_COUNTS: counts.dump(found)}, None)
    assert counts.stored(store) == found


_bytes = st.sampled_from([b"a", b"b", b"/", b"\x00"])
_keys = st.lists(_bytes, max_size=4).map(b"".join)
_batches = st.lists(
    st.dictionaries(_keys, st.one_of(st.none(), st.binary(max_size=3)), max_size=6),
    max_size=8,
)


@pytest.mark.parametrize("kind", KINDS)
@settings(max_examples=40, deadline=None)
@given(batches=_batches, prefix=st.lists(_bytes, max_size=2).map(b"".join))
def test_any_writes_read_back_as_a_sorted_map(
    kind: str, batches: list[dict[bytes, bytes | None]], prefix: bytes
) -> None:
    with tempfile.TemporaryDirectory() as folder:
        store = open_store(kind, Path(folder))
        model: dict[bytes, bytes] = {}
        try:
            for offset, batch in enumerate(batches):
                store.write(batch, offset)
                for key, value in batch.items():
                    if value is None:
                        model.pop(key, None)
                    else:
                        model[key] = value
                expected = sorted((k, v) for k, v in model.items() if k.startswith(prefix))
                scanned = [(k, v) for k, v in store.scan(prefix) if not k.startswith(b"m/")]
                assert scanned == expected  # m/...: the offset and time of the last write
                assert all(store.get(k) == v for k, v in model.items())
                assert store.changelog_offset() == offset
        finally:
            store.close()
