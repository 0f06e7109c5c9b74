"""Missing reference data: a skip on a developer's machine, a failure under CI (SIAMKPN_REQUIRE_SHARED=1)."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PROBE = '''
from conftest import SHARED, require

def test_needs_reference_data():
    require(SHARED / "fixtures" / "reference")
'''


@pytest.mark.parametrize("required, outcome", [("", "1 skipped"), ("1", "1 failed")])
def test_missing_shared_data_skips_or_fails(tmp_path, required, outcome):
    (tmp_path / "test_probe.py").write_text(PROBE)
    env = dict(os.environ, SIAMKPN_SHARED=str(tmp_path / "nowhere"), SIAMKPN_REQUIRE_SHARED=required,
               PYTHONPATH=str(REPO / "tests"))
    run = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--rootdir", str(tmp_path),
                          str(tmp_path / "test_probe.py")], capture_output=True, text=True, env=env, cwd=tmp_path,
                         timeout=120)
    assert outcome in run.stdout, run.stdout + run.stderr
    assert "shared reference data not found" in run.stdout + run.stderr or outcome == "1 skipped"
