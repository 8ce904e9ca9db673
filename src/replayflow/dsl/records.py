"""The wire record of a deployed document (schemas/dsl/WorkflowDocument.v1.avsc).
Kept free of imports so the codec can load it cheaply."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class WorkflowDocument:
    name: str
    version: str
    namespace: str
    dsl: str
    document: str  # JSON text
    source: str
    digest: str
    deployed_at: int

    @property
    def key(self) -> str:
        return f"{self.name}:{self.version}"
