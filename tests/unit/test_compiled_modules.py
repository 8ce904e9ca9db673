"""The decision modules setup.py compiles with mypyc: what runs is the extension when
it is built, and the plain sources still decide as it does (a machine without a C
compiler runs them: setup.py leaves them plain there)."""

from __future__ import annotations

import importlib
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent.parent
SRC = ROOT / "src"
DECIDE = SRC / "replayflow/core/decide"


def compiled_modules() -> list[str]:
    """The module names setup.py compiles (it names them by path, relative to src/)."""
    core = SRC / "replayflow/core"
    paths = [*DECIDE.glob("*.py")]
    paths += [core / f"{m}.py" for m in ("decision", "driver", "evolve", "payloads", "state")]
    names = []
    for path in sorted(paths):
        parts = list(path.relative_to(SRC).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        names.append(".".join(parts))
    return names


def built(name: str) -> bool:
    base = SRC / name.replace(".", "/")
    folder, stem = (base, "__init__") if base.is_dir() else (base.parent, base.name)
    return any(folder.glob(f"{stem}.*.so"))


def test_a_module_built_as_an_extension_is_the_one_imported() -> None:
    names = compiled_modules()
    assert "replayflow.core.decide.runner" in names and "replayflow.core.decision" in names
    assert "replayflow.core.driver" in names
    for name in names:
        module = importlib.import_module(name)
        assert str(module.__file__).endswith(".so") == built(name), name


# Imports the compiled modules from their .py files (a finder ahead of the one that
# prefers an extension), then runs the core's unit tests on them.
PURE = """
import importlib.util, sys
from importlib.abc import MetaPathFinder
from pathlib import Path

SRC = Path(sys.argv[1])
NAMES = set(sys.argv[2].split(","))

class PlainSources(MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name not in NAMES:
            return None
        base = SRC / name.replace(".", "/")
        if base.is_dir():
            return importlib.util.spec_from_file_location(
                name, base / "__init__.py", submodule_search_locations=[str(base)]
            )
        return importlib.util.spec_from_file_location(name, base.with_suffix(".py"))

sys.meta_path.insert(0, PlainSources())
import pytest
import replayflow.core.decide.runner as runner
assert runner.__file__.endswith(".py"), runner.__file__
sys.exit(pytest.main(["-q", "-p", "no:cacheprovider", *sys.argv[3:]]))
"""


def test_the_plain_sources_pass_the_core_tests_where_they_are_compiled() -> None:
    names = compiled_modules()
    if not any(built(name) for name in names):
        pytest.skip("nothing compiled: the suite itself runs the plain sources")
    result = subprocess.run(
        [sys.executable, "-c", PURE, str(SRC), ",".join(names), str(ROOT / "tests/unit/core")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=240,
        env={**os.environ, "PYTHONPATH": str(SRC)},
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert " passed" in result.stdout
