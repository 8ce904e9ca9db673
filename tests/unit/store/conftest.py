"""Every store test runs over every store implementation."""

from tests.unit.stores import store

__all__ = ["store"]
