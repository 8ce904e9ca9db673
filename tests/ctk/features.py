"""The CTK's .feature files, read with the Cucumber team's Gherkin parser
(gherkin-official) and compiled to pickles: the scenarios as they run, with
backgrounds and outline rows already expanded."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gherkin.parser import Parser
from gherkin.pickles.compiler import Compiler


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


def _ast_steps(children: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    """Every step of the document, for the keyword and line a pickle step leaves out."""
    for child in children:
        if "rule" in child:
            yield from _ast_steps(child["rule"]["children"])
        for kind in ("background", "scenario"):
            if kind in child:
                yield from child[kind]["steps"]


def parse(path: Path) -> list[Scenario]:
    document: Any = Parser().parse(path.read_text(encoding="utf-8"))
    feature = document.get("feature")
    if feature is None:
        return []
    document["uri"] = str(path)
    by_id = {step["id"]: step for step in _ast_steps(feature["children"])}
    scenarios = []
    for pickle in Compiler().compile(document):
        scenario = Scenario(feature["name"], pickle["name"], path, pickle["location"]["line"])
        for step in pickle["steps"]:
            source = by_id[step["astNodeIds"][0]]
            doc = step.get("argument", {}).get("docString", {}).get("content")
            scenario.steps.append(
                Step(source["keyword"].strip(), step["text"], doc, source["location"]["line"])
            )
        scenarios.append(scenario)
    return scenarios


def quoted(text: str) -> list[str]:
    """The '...' strings of a step's text."""
    return re.findall(r"'([^']*)'", text)
