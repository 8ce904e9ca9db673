"""The Python step the DSL documents of the upgrade tests call."""

import replayflow as rf


@rf.step(name="dsl_add")
def add(a: int, b: int) -> int:
    return a + b
