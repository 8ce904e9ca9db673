"""A tiny Gherkin reader for the CTK's .feature files: features, scenarios, steps and
their doc strings (nothing else is used by the kit)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

_KEYWORDS = ("Given", "When", "Then", "And", "But")


@dataclass
class Step:
    keyword: str
    text: str
    doc: str | None = None
    line: int = 0


@dataclass
class Scenario:
    feature: str
    name: str
    path: Path
    line: int
    steps: list[Step] = field(default_factory=list)

    @property
    def id(self) -> str:
        return f"{self.path.stem}: {self.name}"


def parse(path: Path) -> list[Scenario]:
    lines = path.read_text(encoding="utf-8").splitlines()
    feature = ""
    scenarios: list[Scenario] = []
    i = 0
    while i < len(lines):
        raw = lines[i]
        line = raw.strip()
        i += 1
        if not line or line.startswith("#"):
            continue
        if line.startswith("Feature:"):
            feature = line.split(":", 1)[1].strip()
        elif line.startswith(("Scenario:", "Scenario Outline:")):
            scenarios.append(Scenario(feature, line.split(":", 1)[1].strip(), path, i))
        elif line.split(" ", 1)[0] in _KEYWORDS and scenarios:
            keyword, _, text = line.partition(" ")
            step = Step(keyword, text.strip(), line=i)
            if i < len(lines) and lines[i].strip().startswith('"""'):
                indent = len(lines[i]) - len(lines[i].lstrip())
                i += 1
                body = []
                while i < len(lines) and not lines[i].strip().startswith('"""'):
                    body.append(
                        lines[i][indent:] if lines[i][:indent].strip() == "" else lines[i].lstrip()
                    )
                    i += 1
                i += 1  # the closing """
                step.doc = "\n".join(body)
            scenarios[-1].steps.append(step)
    return scenarios


def quoted(text: str) -> list[str]:
    """The '...' strings of a step's text."""
    return re.findall(r"'([^']*)'", text)
