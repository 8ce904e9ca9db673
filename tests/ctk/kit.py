"""Where the Serverless Workflow conformance kit is: REPLAYFLOW_CTK when set, else
`shared/ctk` beside the checkout (../shared/ctk from the repository root), as CI lays it.

Under CI (CI=true) a missing kit fails the tests that need it: a skip there would let
a run go green without checking conformance. Elsewhere they skip and say why."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
ENV = "REPLAYFLOW_CTK"


def location() -> Path:
    configured = os.environ.get(ENV)
    return Path(configured) if configured else REPO.parent / "shared" / "ctk"


def present() -> bool:
    return (location() / "features").is_dir()


def require() -> Path:
    """The kit's folder; fails (under CI) or skips the calling test when it is absent."""
    path = location()
    if present():
        return path
    message = (
        f"the Serverless Workflow conformance kit is not at {path}: put it at shared/ctk "
        f"beside the checkout or set {ENV} to its folder"
    )
    if os.environ.get("CI", "").lower() in ("true", "1"):
        pytest.fail(message, pytrace=False)
    pytest.skip(message)
