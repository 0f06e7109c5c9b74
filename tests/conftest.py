"""Shared test helpers: where the reference fixtures live, and skipping cleanly without them."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
# CI puts shared/ beside the checkout; SIAMKPN_SHARED overrides (e.g. a worktree elsewhere).
SHARED = Path(os.environ.get("SIAMKPN_SHARED", REPO.parent / "shared"))
FIXTURES = SHARED / "fixtures"
REFERENCE_FIXTURES = ("fixture_r18_l23_stack3", "fixture_r50_l23_stack1")


# Under CI (`.ci/run` sets SIAMKPN_REQUIRE_SHARED=1) missing reference data is a failure, never a skip, so a
# reference check cannot pass by not running.
REQUIRE_SHARED = os.environ.get("SIAMKPN_REQUIRE_SHARED", "") not in ("", "0")


def require(path: Path) -> Path:
    """Return `path`; without it skip with a clear reason, or fail when SIAMKPN_REQUIRE_SHARED is set."""
    if not path.exists():
        reason = f"shared reference data not found at {path} (set SIAMKPN_SHARED to its folder)"
        if REQUIRE_SHARED:
            pytest.fail(reason + "; SIAMKPN_REQUIRE_SHARED is set, so this is an error", pytrace=False)
        pytest.skip(reason)
    return path


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    return require(SHARED)


@pytest.fixture(scope="session")
def eval_fixture_dir() -> Path:
    return require(FIXTURES / "eval")


@pytest.fixture(scope="session", params=REFERENCE_FIXTURES)
def reference_dir(request) -> Path:
    """Each reference fixture folder in turn (r18 3-stage weighted, r50 1-stage mean)."""
    return require(FIXTURES / "reference" / request.param)
