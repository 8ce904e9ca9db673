"""`evolve(obj, **changes)`: dataclasses.replace for the fold's frozen records, fast.

dataclasses.replace reads every field and runs the generated __init__, which sets each
field through object.__setattr__: ~5 us for a Call of fifteen fields, paid several
times per decision. The records evolved here (Call, Info) have no __post_init__ and no
init=False fields, so a copy of the instance dict with the changes applied is the same
object replace() would build, at a fifth of the cost.
"""

from __future__ import annotations

from typing import Any, NoReturn, TypeVar

T = TypeVar("T")
_new = object.__new__
_set = object.__setattr__  # (the frozen class's own __setattr__ refuses)


def evolve(obj: T, **changes: Any) -> T:
    fields = obj.__dict__
    values = fields.copy()
    values.update(changes)
    # A change of a field the record has not would add a key: a length test, where a
    # subset test of the keys cost as much as the whole copy.
    if len(values) != len(fields):
        _refuse(obj, changes)
    made = _new(type(obj))
    _set(made, "__dict__", values)
    return made


def evolve_with(obj: T, changes: dict[str, Any]) -> T:
    """evolve() with the changes in a dict the caller made: for the fold's own copies
    on every decision, where packing keywords cost nearly as much as the copy. (The
    body is evolve's: one more call per copy would give back what this saves.)"""
    fields = obj.__dict__
    values = fields.copy()
    values.update(changes)
    if len(values) != len(fields):
        _refuse(obj, changes)
    made = _new(type(obj))
    _set(made, "__dict__", values)
    return made


def _refuse(obj: object, changes: dict[str, Any]) -> NoReturn:
    unknown = changes.keys() - obj.__dict__.keys()
    raise TypeError(f"{type(obj).__name__} has no field {', '.join(sorted(unknown))}")
