"""The calls as a persistent sequence (core/callseq.py): every version reads as the
list it stands for, a draft's edits never show in the version it came from, and a
decision copies one chunk however long the instance is."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from replayflow.core.callseq import CHUNK, Calls, CallsDraft


def test_a_draft_edits_without_touching_its_base() -> None:
    base = Calls(range(200))
    draft = base.draft()
    draft[3] = -3
    draft[150] = -150
    draft.append(200)
    after = draft.freeze()
    assert list(base) == list(range(200))
    assert after[3] == -3 and after[150] == -150 and after[200] == 200 and len(after) == 201
    # Chunks nobody wrote to are shared, not copied.
    assert after._chunks[1] is base._chunks[1]
    assert after._chunks[0] is not base._chunks[0]


def test_reading_like_a_tuple() -> None:
    calls = Calls(range(10))
    assert calls == tuple(range(10))
    assert calls[-1] == 9 and calls[2:4] == (2, 3)
    assert list(reversed(calls)) == list(range(9, -1, -1))
    assert calls.tail(3) == (7, 8, 9) and calls.tail(50) == tuple(range(10))
    assert hash(calls) == hash(tuple(range(10)))


@given(
    st.lists(st.integers(), max_size=3 * CHUNK),
    st.lists(
        st.tuples(st.sampled_from(["set", "append", "truncate"]), st.integers(0, 4 * CHUNK)),
        max_size=30,
    ),
)
def test_any_edits_match_a_list(start: list[int], edits: list[tuple[str, int]]) -> None:
    reference = list(start)
    base = Calls(start)
    draft = CallsDraft(base)
    for what, n in edits:
        if what == "set" and reference:
            draft[n % len(reference)] = -n
            reference[n % len(reference)] = -n
        elif what == "append":
            draft.append(n)
            reference.append(n)
        elif what == "truncate":
            draft.truncate(n % (len(reference) + 1))
            del reference[n % (len(reference) + 1) :]
        assert list(draft) == reference and len(draft) == len(reference)
    frozen = draft.freeze()
    assert list(frozen) == reference
    assert list(reversed(frozen)) == reference[::-1]
    assert list(base) == start
