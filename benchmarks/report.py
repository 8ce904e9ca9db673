"""Writing a standalone benchmark's JSON: its figures, whether its checks held and the
machine it ran on, then a line for each failed check (the caller exits 1 on any)."""

from __future__ import annotations

import json
import os
import platform
import sys
from pathlib import Path
from typing import Any


def write_report(out: Path, root: Path, result: dict[str, Any], failures: list[str]) -> None:
    report = {
        **result,
        "ok": not failures,
        "failures": failures,
        "machine": {
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
            "load_avg": os.getloadavg(),
        },
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {out.relative_to(root) if out.is_relative_to(root) else out}")
    for failure in failures:
        print(f"FAIL: {failure}", file=sys.stderr)
