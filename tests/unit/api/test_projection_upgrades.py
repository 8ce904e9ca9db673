"""The read model shows an instance's version and its upgrades: the row follows the
WorkflowUpgraded fact, and the version index moves with it."""

from __future__ import annotations

from replayflow.api import projection as p
from replayflow.core.messages import (
    EventAwaited,
    PatchMarked,
    UpgradeRefused,
    WorkflowStarted,
    WorkflowUpgraded,
)

ID = "order-1"


def events() -> list[object]:
    return [
        WorkflowStarted(ID, 1, 1000, workflow="checkout", version="1", input="null"),
        EventAwaited(ID, 2, 1000, name="go", wait=0),
        UpgradeRefused(ID, 3, 2000, "1", "2", 1, reason="the instance moved on"),
        WorkflowUpgraded(ID, 4, 3000, from_version="1", to_version="2", checked_seq=3),
        PatchMarked(ID, 5, 4000, patch="new-path", index=1),
    ]


def members(store: dict[bytes, bytes], workflow: str, version: str) -> list[str]:
    prefix = p.index_prefix(p.group(workflow=workflow, version=version))
    return [p.split_index_key(k)[2] for k in sorted(store) if k.startswith(prefix)]


def test_the_row_shows_the_version_and_each_upgrade() -> None:
    store = p.fold_all(events())
    row = p.public_instance(p.loads(store[p.instance_key(ID)]))
    assert row["version"] == "2"
    assert row["upgrades"] == [{"at": 3000, "seq": 4, "from_version": "1", "to_version": "2"}]
    assert row["status"] == "RUNNING" and row["events"] == 5


def test_the_version_index_follows_the_upgrade() -> None:
    before = p.fold_all(events()[:3])
    assert members(before, "checkout", "1") == [ID]
    after = p.fold_all(events())
    assert members(after, "checkout", "1") == []
    assert members(after, "checkout", "2") == [ID]


def test_folding_again_changes_nothing() -> None:
    store = p.fold_all(events())
    again = p.fold_all(events(), dict(store))
    assert again == store
