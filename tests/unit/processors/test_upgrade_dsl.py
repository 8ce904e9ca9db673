"""Upgrading instances of a deployed DSL document to a newer deployed version: the
same check and the same command as for code, the new version's document found among
the deployed ones."""

from __future__ import annotations

from replayflow import codec
from replayflow.cli.replay import Code
from replayflow.dsl.documents import record_of
from replayflow.processors.upgrade import run
from replayflow.testing import Environment
from tests.replay_code import dsl_steps
from tests.unit.processors.test_upgrade_tool import EnvLink

HEAD = """\
document:
  dsl: '1.0.3'
  namespace: test
  name: priced
  version: '{version}'
do:
  - pause:
      wait:
        minutes: 5
  - plus:
      call: dsl_add
      with:
        a: ${{ .x }}
        b: 2
"""
V1 = (
    HEAD.format(version="1.0.0")
    + """\
  - settle:
      wait:
        hours: 1
"""
)
V2 = (
    HEAD.format(version="2.0.0")
    + """\
  - tax:
      call: dsl_add
      with:
        a: ${ . }
        b: 100
  - settle:
      wait:
        hours: 1
"""
)
RECORDS = tuple(codec.encode(record_of(text)) for text in (V1, V2))


def test_instances_of_a_document_move_to_its_newer_version() -> None:
    code = Code(("tests.replay_code.dsl_steps",), RECORDS)
    env = Environment(dsl_steps)
    [deployed] = Code((), RECORDS)().sources  # the deployed documents, as a workflow source
    env.registry.add_source(deployed)
    env.start("priced", {"x": 1}, id="past", version="1.0.0")
    env.advance("6m")  # "past" has added and settles for an hour
    env.start("priced", {"x": 40}, id="pausing", version="1.0.0")  # still in its pause
    results = {
        r.instance_id: r for r in run(EnvLink(env), code, "priced", "1.0.0", "2.0.0", workers=1)
    }
    assert results["pausing"].moved
    assert not results["past"].moved and "tax" in (results["past"].reason or "")
    env.advance("2h")
    assert env.result("pausing") == 142  # 40 + 2, then version 2's tax
    assert env.result("past") == 3
    assert env.completions["pausing"].version == "2.0.0"
