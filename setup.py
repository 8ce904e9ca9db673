"""Builds the fold's decision modules as C extensions with mypyc; the rest of the
package is pyproject.toml's.

The decisions the orchestrator makes for every command (replayflow/core/decide/ and
core/decision.py) and the code they run for each (the replay driver of Python
workflows, core/driver.py; the state, core/state.py; payload checks, core/payloads.py;
core/evolve.py), all strictly typed and pure, run a quarter faster compiled
(benchmarks/foldbench.py; docs/performance.md). core/context.py stays plain: it is the
workflow author's API, whose wrong arguments get replayflow's own errors, not a
compiled signature's TypeError. The same sources run as plain Python
when they are not compiled: REPLAYFLOW_PURE=1 builds without them, and a machine
without mypyc (mypy) or a C compiler gets the plain package, as does an isolated build
(pip's default: mypy is no build requirement, and its strict check needs the
package's dependencies installed). A wheel with them compiled is built in the
environment `make venv` makes: `.venv/bin/pip wheel --no-build-isolation --no-deps .`.

In a checkout, `make compiled` builds the extensions next to their sources (a
`.so` beside each `.py`, which Python imports first); `make test`, `demo` and `bench`
do it when a source changed, and the test suite refuses to run on extensions older
than their sources (tests/conftest.py).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from setuptools import setup
from setuptools.command.build_ext import build_ext

ROOT = Path(__file__).resolve().parent
#: The compiled modules, relative to src/. Each must pass mypy --strict.
COMPILED = sorted(
    [str(p.relative_to(ROOT / "src")) for p in (ROOT / "src/replayflow/core/decide").glob("*.py")]
    + [f"replayflow/core/{m}.py" for m in ("decision", "driver", "evolve", "payloads", "state")]
)


def _flag(name: str) -> bool:
    """An environment switch: set, and not 0."""
    return os.environ.get(name, "").strip() not in ("", "0")


def _extensions() -> list[object]:
    if _flag("REPLAYFLOW_PURE"):
        return []
    try:
        from mypyc.build import mypycify
    except ImportError:
        print("replayflow: mypyc not found, the fold's modules stay plain Python", file=sys.stderr)
        return []
    cwd = os.getcwd()
    os.chdir(ROOT / "src")  # module names follow the paths given, relative to src/
    try:
        # The C sources go to build/mypyc, found from the checkout's root too.
        return list(mypycify(COMPILED, opt_level="3", target_dir=str(ROOT / "build/mypyc")))
    except (Exception, SystemExit) as exc:  # mypy's type check failed (it exits)
        if _flag("REPLAYFLOW_COMPILE_STRICT"):
            raise
        print(f"replayflow: mypyc failed ({exc}); the plain sources run", file=sys.stderr)
        return []
    finally:
        os.chdir(cwd)


class OptionalBuildExt(build_ext):
    """All or nothing: when an extension fails to build, the ones built are removed and
    the plain sources run (a compiled module needs the group's shared library, so a
    part of them would not import). REPLAYFLOW_COMPILE_STRICT=1 (`make compiled`)
    makes the failure an error instead."""

    def run(self) -> None:
        try:
            super().run()
        except Exception as exc:
            if _flag("REPLAYFLOW_COMPILE_STRICT"):
                raise
            for built in self.get_outputs():
                Path(built).unlink(missing_ok=True)
            print(f"replayflow: compiling failed ({exc}); the plain sources run", file=sys.stderr)


setup(ext_modules=_extensions(), cmdclass={"build_ext": OptionalBuildExt})
