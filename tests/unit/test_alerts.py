"""The alert rules and the example Prometheus config pass promtool (Debian package prometheus)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

DEPLOY = Path(__file__).resolve().parents[2] / "deploy" / "prometheus"
# Installed by `make system-deps`; a missing promtool fails these tests rather than skipping them.
PROMTOOL = shutil.which("promtool") or "/usr/bin/promtool"


def promtool(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [PROMTOOL, *args], cwd=DEPLOY, capture_output=True, text=True, timeout=60, check=False
    )


def test_rules_are_valid():
    done = promtool("check", "rules", "alerts.yaml")
    assert 0 == done.returncode, done.stdout + done.stderr


def test_rules_unit_tests_pass():
    done = promtool("test", "rules", "alerts_test.yaml")
    assert 0 == done.returncode, done.stdout + done.stderr


def test_example_scrape_config_is_valid():
    done = promtool("check", "config", "prometheus.example.yaml")
    assert 0 == done.returncode, done.stdout + done.stderr
