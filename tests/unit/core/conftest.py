"""Pure tests of core/: plain objects, Decider.decide() and the in-memory Environment."""

from __future__ import annotations

import sys
from pathlib import Path

# The recorded-history tests import tests.workflows / tests.fixtures; make the repo root
# importable however pytest was started (plain `pytest tests/unit` does not add it).
_ROOT = str(Path(__file__).resolve().parents[3])
if _ROOT not in sys.path:
    sys.path.insert(0, _ROOT)
