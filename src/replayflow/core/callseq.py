"""An instance's calls as a persistent sequence: each decision costs the same whether the
instance has made ten calls or twenty thousand.

A decision changes one or two calls (the one resolved, the one made next) of a list
that grows by one call per step. Copying the list into each new state made a step cost
O(n): the 5,000th step of a long instance paid for 5,000 calls. Here the calls live in
chunks of CHUNK; a new version shares every chunk but the ones it changed, so a
decision copies one chunk and the (short) tuple of chunk references.

`Calls` is the immutable sequence an `InstanceState` holds. `CallsDraft` is the
mutable working copy a `DecisionBuilder` edits: a chunk is copied when the draft first
writes to it, and `freeze()` makes the next `Calls`.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import Any, TypeVar, overload

Call = TypeVar("Call")  # core.state.Call; generic so this module needs no import of it

SHIFT = 6
CHUNK = 1 << SHIFT  # 64 calls: a replaced call copies 64 references, not all of them
MASK = CHUNK - 1


def _chunked(calls: Sequence[Call]) -> tuple[tuple[Call, ...], ...]:
    return tuple(tuple(calls[i : i + CHUNK]) for i in range(0, len(calls), CHUNK))


class Calls(Sequence[Call]):
    """An immutable sequence of calls, in index order."""

    __slots__ = ("_chunks", "_n")

    def __init__(self, calls: Iterable[Call] = ()) -> None:
        if isinstance(calls, Calls):
            self._chunks: tuple[tuple[Call, ...], ...] = calls._chunks
            self._n: int = calls._n
            return
        items = calls if isinstance(calls, Sequence) else tuple(calls)
        self._chunks = _chunked(items)
        self._n = len(items)

    @classmethod
    def _of(cls, chunks: tuple[tuple[Call, ...], ...], n: int) -> Calls[Call]:
        made = cls.__new__(cls)
        made._chunks = chunks
        made._n = n
        return made

    def __len__(self) -> int:
        return self._n

    @overload
    def __getitem__(self, index: int) -> Call: ...

    @overload
    def __getitem__(self, index: slice) -> tuple[Call, ...]: ...

    def __getitem__(self, index: int | slice) -> Call | tuple[Call, ...]:
        if isinstance(index, slice):
            return tuple(self)[index]
        if index < 0:
            index += self._n
        if not 0 <= index < self._n:
            raise IndexError("call index out of range")
        return self._chunks[index >> SHIFT][index & MASK]

    def __iter__(self) -> Iterator[Call]:
        # Most instances hold one chunk: its own iterator, no generator.
        return iter(self._chunks[0]) if len(self._chunks) == 1 else _forward(self._chunks)

    def __reversed__(self) -> Iterator[Call]:
        if len(self._chunks) == 1:
            return reversed(self._chunks[0])
        return _backward(self._chunks)

    def tail(self, n: int) -> tuple[Call, ...]:
        """The last n calls (fewer if there are fewer), oldest first: O(n), not O(len)."""
        if n <= 0:
            return ()
        taken: list[tuple[Call, ...]] = []
        count = 0
        for chunk in reversed(self._chunks):
            taken.append(chunk)
            count += len(chunk)
            if count >= n:
                break
        joined = tuple(call for chunk in reversed(taken) for call in chunk)
        return joined[-n:]

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Calls):
            return self._n == other._n and (
                self._chunks is other._chunks or tuple(self) == tuple(other)
            )
        if isinstance(other, tuple):
            return tuple(self) == other
        return NotImplemented

    def __hash__(self) -> int:
        return hash(tuple(self))

    def __repr__(self) -> str:
        return f"Calls({list(self)!r})"

    def draft(self) -> CallsDraft[Call]:
        return CallsDraft(self)


class CallsDraft(Sequence[Call]):
    """The calls of one decision in progress: read, replace, append, truncate."""

    __slots__ = ("_chunks", "_n", "_owned")

    def __init__(self, base: Calls[Call] | None = None) -> None:
        self._chunks: list[Any] = list(base._chunks) if base is not None else []
        self._n = base._n if base is not None else 0
        self._owned: set[int] = set()  # chunks copied into lists this draft may change

    def __len__(self) -> int:
        return self._n

    @overload
    def __getitem__(self, index: int) -> Call: ...

    @overload
    def __getitem__(self, index: slice) -> list[Call]: ...

    def __getitem__(self, index: int | slice) -> Call | list[Call]:
        if isinstance(index, slice):
            return list(self)[index]
        if index < 0:
            index += self._n
        if not 0 <= index < self._n:
            raise IndexError("call index out of range")
        call: Call = self._chunks[index >> SHIFT][index & MASK]
        return call

    def __setitem__(self, index: int, call: Call) -> None:
        if not 0 <= index < self._n:
            raise IndexError("call index out of range")
        self._own(index >> SHIFT)[index & MASK] = call

    def append(self, call: Call) -> None:
        position = self._n & MASK
        if position == 0:
            self._chunks.append([call])
            self._owned.add(len(self._chunks) - 1)
        else:
            self._own(len(self._chunks) - 1).append(call)
        self._n += 1

    def truncate(self, n: int) -> None:
        """Keep the first n calls (a restart drops the rest)."""
        if n >= self._n:
            return
        keep = (n + MASK) >> SHIFT
        del self._chunks[keep:]
        self._owned = {i for i in self._owned if i < keep}
        if n & MASK:
            self._own(keep - 1)[n & MASK :] = []
        self._n = n

    def __iter__(self) -> Iterator[Call]:
        chunks: list[Sequence[Call]] = self._chunks
        return iter(chunks[0]) if len(chunks) == 1 else _forward(chunks)

    def __reversed__(self) -> Iterator[Call]:
        chunks: list[Sequence[Call]] = self._chunks
        return reversed(chunks[0]) if len(chunks) == 1 else _backward(chunks)

    def _own(self, i: int) -> list[Call]:
        chunk = self._chunks[i]
        if i not in self._owned:
            chunk = list(chunk)
            self._chunks[i] = chunk
            self._owned.add(i)
        owned: list[Call] = chunk
        return owned

    def freeze(self) -> Calls[Call]:
        owned = self._owned
        if len(self._chunks) == 1:  # most instances: no generator for one chunk
            chunk = self._chunks[0]
            return Calls._of((tuple(chunk) if owned else chunk,), self._n)
        chunks = tuple(
            tuple(chunk) if i in owned else chunk for i, chunk in enumerate(self._chunks)
        )
        return Calls._of(chunks, self._n)


def _forward(chunks: Sequence[Sequence[Call]]) -> Iterator[Call]:
    for chunk in chunks:
        yield from chunk


def _backward(chunks: Sequence[Sequence[Call]]) -> Iterator[Call]:
    for chunk in reversed(chunks):
        yield from reversed(chunk)
