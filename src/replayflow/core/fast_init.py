"""`fast_init`: a quicker __init__ for the fold's frozen dataclasses.

A frozen dataclass's generated __init__ sets each field through object.__setattr__
(its own __setattr__ refuses): a function call per field, about a microsecond for a
history event of nine fields, for each of the dozens of records a decision makes.
This __init__ writes the fields straight into the instance dict instead, which is
what object.__setattr__ ends in for a class without slots. Everything else stays as
the dataclass made it: equality, hash, repr, the refusal to set attributes. Records
the codec encodes gain twice, as it reads their dict (`vars`), which then exists
already.

A class with slots (dataclass(slots=True)) has no instance dict: each field is
written through its slot's descriptor, which object.__setattr__ ends in too. Such a
record takes about half the memory, which counts where a batch holds thousands of
them (processors/fold_records.Record) and walks them again to produce and free them.

Defaults, default factories, init=False and keyword-only fields and __post_init__
behave as dataclasses has them; InitVar fields are refused.
"""

from __future__ import annotations

import dataclasses
from types import MemberDescriptorType
from typing import Any, TypeVar, cast

T = TypeVar("T")


class _Factory:
    """The default of a field with a default factory, as dataclasses shows it."""

    def __repr__(self) -> str:
        return "<factory>"


_FACTORY = _Factory()


def fast_init(cls: type[T]) -> type[T]:
    """Give the frozen dataclass `cls` an __init__ that fills its dict (or its slots)
    directly."""
    params = getattr(cls, "__dataclass_params__", None)
    if params is None or not params.frozen:
        raise TypeError(f"fast_init: {cls.__name__} is not a frozen dataclass")
    slotted = "__slots__" in vars(cls)
    if any("InitVar" in str(v) for v in vars(cls).get("__annotations__", {}).values()):
        raise TypeError(f"fast_init: {cls.__name__} has InitVar fields")
    namespace: dict[str, Any] = {"FACTORY": _FACTORY}
    positional: list[str] = []
    keyword: list[str] = []
    body: list[str] = []
    for f in dataclasses.fields(cast(Any, cls)):
        name = f.name
        if slotted:
            slot = getattr(cls, name, None)
            if not isinstance(slot, MemberDescriptorType):
                raise TypeError(f"fast_init: {cls.__name__}.{name} is not a slot")
            namespace[f"set_{name}"] = slot.__set__
        has_factory = f.default_factory is not dataclasses.MISSING
        if has_factory:
            namespace[f"factory_{name}"] = f.default_factory
        if f.default is not dataclasses.MISSING:
            namespace[f"default_{name}"] = f.default
        store = f"set_{name}(self, {{}})" if slotted else f"d[{name!r}] = {{}}"
        if not f.init:
            if has_factory:
                body.append(store.format(f"factory_{name}()"))
            elif f.default is not dataclasses.MISSING:
                body.append(store.format(f"default_{name}"))
            continue
        if has_factory:
            param = f"{name}=FACTORY"
            body.append(store.format(f"factory_{name}() if {name} is FACTORY else {name}"))
        else:
            param = name if f.default is dataclasses.MISSING else f"{name}=default_{name}"
            body.append(store.format(name))
        (keyword if f.kw_only else positional).append(param)
    if hasattr(cls, "__post_init__"):
        body.append("self.__post_init__()")
    signature = ", ".join(["self", *positional, *(["*", *keyword] if keyword else [])])
    lines = [f"def __init__({signature}):", "    pass" if slotted else "    d = self.__dict__"]
    lines += [f"    {line}" for line in body]
    exec(compile("\n".join(lines) + "\n", f"<fast_init {cls.__qualname__}>", "exec"), namespace)
    init = namespace["__init__"]
    init.__qualname__ = f"{cls.__qualname__}.__init__"
    init.__doc__ = cls.__init__.__doc__
    init.__annotations__ = dict(cls.__init__.__annotations__)  # for inspect.signature
    setattr(cls, "__init__", init)  # noqa: B010 - a class attribute mypy would refuse
    return cls


def fast_inits(namespace: dict[str, Any]) -> None:
    """fast_init for every frozen dataclass defined in a module (its globals())."""
    for value in list(namespace.values()):
        if (
            isinstance(value, type)
            and value.__module__ == namespace["__name__"]
            and dataclasses.is_dataclass(value)
            and value.__dataclass_params__.frozen  # type: ignore[attr-defined]
        ):
            fast_init(value)
