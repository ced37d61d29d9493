"""The installed CLI as a platform engineer meets it (issue 27): tables that fit a terminal,
exit codes CI can use, a wrong token that stops the run at once, and shell completion."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from syncd import demo
from syncd.cloudflare import api
from syncd.run import once as sync
from syncd.simulators.base import Fault
from syncd.views import render

pytestmark = pytest.mark.e2e
SYNCD = str(Path(sys.executable).with_name("syncd"))


def _run(
    argv: list[str], env: dict[str, str], timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [SYNCD, *argv], env=env, capture_output=True, text=True, timeout=timeout, check=False
    )


def _words(text: str) -> list[str]:
    """Every word of every line but the rules under the headers."""
    return [w for line in text.splitlines() if line.strip("- ") for w in line.split()]


def test_tables_fit_120_columns_on_the_demo_estate_and_lose_nothing(tmp_path: Path):
    with demo.estate(tmp_path) as estate:
        settings = estate.settings()
        report = sync.run_once(settings, options=sync.Options(dry_run=True))
        with sync.connect(settings) as cloudflare:
            supported = api.supported_regions(cloudflare, [demo.ZONE_ALL])
        env = {**os.environ, **estate.env, "SYNCD_CONFIG": str(estate.config_path)}
        env.pop("COLUMNS", None)
        piped = _run(["regions"], env).stdout
        fitted = _run(["regions"], {**env, "COLUMNS": "120"}).stdout
        wide = _run(["regions", "--wide"], {**env, "COLUMNS": "120"}).stdout
    # The CLI: COLUMNS is the width; a pipe and --wide keep lines whole.
    assert piped == wide == render.regions(supported.regions, "table") + "\n"
    assert fitted == render.regions(supported.regions, "table", 120) + "\n"
    views = {
        "origins": lambda width: render.origins(report, "table", width),
        "plan": lambda width: render.plan_table(report, width),
        "regions": lambda width: render.regions(supported.regions, "table", width),
        "discover": lambda width: render.discovery(report.inventory.addresses, "table", width),
    }
    for name, view in views.items():
        whole, fit = view(None), view(120)
        assert max(map(len, whole.splitlines())) > 120, f"{name}: nothing to fit"
        assert max(map(len, fit.splitlines())) <= 120, fit
        # Nothing lost: each word of the whole table is in the fitted one (a word longer than
        # a column may be broken across lines, so the fitted text is read without spaces).
        joined = "".join(fit.split())
        assert [] == [w for w in _words(whole) if w not in joined], name
    assert ["zone", "address", "mapping", "state"] == views["origins"](120).split()[:4]


def test_plan_detailed_exitcode_on_the_demo_estate(tmp_path: Path):
    with demo.estate(tmp_path) as estate:
        env = {**os.environ, **estate.env, "SYNCD_CONFIG": str(estate.config_path)}
        assert 3 == _run(["plan", "--detailed-exitcode"], env).returncode, "changes pending"
        assert 0 == _run(["sync"], env).returncode
        assert 0 == _run(["plan", "--detailed-exitcode"], env).returncode, "in step"


def test_a_refused_token_stops_the_run_without_waiting_for_the_clouds(tmp_path: Path):
    """GCP answers nothing for a minute; Cloudflare refuses the token: the run ends at once,
    the collector processes killed, naming what to fix."""
    with demo.estate(tmp_path) as estate:
        raw = yaml.safe_load(estate.config_path.read_text())
        raw["collectors"].update(scope_timeout="5m", request_timeout="60s")
        estate.config_path.write_text(yaml.safe_dump(raw))
        estate.gcp.inject(Fault(status=500, delay=60, times=1000))
        env = {**os.environ, **estate.env, "CLOUDFLARE_API_TOKEN": "refused-token-0000"}
        started = time.monotonic()
        done = _run(["plan", "--config", str(estate.config_path)], env, timeout=90)
        took = time.monotonic() - started
    assert 1 == done.returncode
    assert "Cloudflare refused" in done.stdout
    assert "cloudflare.api_token" in done.stdout + done.stderr or "Zone Settings" in done.stdout
    assert "refused-token" not in done.stdout + done.stderr
    assert took < 20, f"{took:.1f} s: the run waited for the collection"


def test_completion_scripts_complete_commands_options_and_choices():
    bash = shutil.which("bash")
    if bash is None:
        pytest.skip("no bash")
    script = subprocess.run(
        [SYNCD, "completion", "bash"], capture_output=True, text=True, check=True
    ).stdout

    def complete(*words: str) -> list[str]:
        line = " ".join(f"'{w}'" for w in words)
        probe = (
            f"{script}\nCOMP_WORDS=({line}); COMP_CWORD={len(words) - 1}; _syncd; "
            'printf "%s\\n" "${COMPREPLY[@]}"'
        )
        out = subprocess.run([bash, "-c", probe], capture_output=True, text=True, check=True)
        return out.stdout.split()

    assert {"plan", "sync", "origins", "completion"} <= set(complete("syncd", ""))
    assert ["plan"] == complete("syncd", "pl")
    assert {"--detailed-exitcode", "--output", "--wide"} <= set(complete("syncd", "plan", "--"))
    assert ["csv", "json", "table"] == sorted(complete("syncd", "discover", "--output", ""))
    assert {"bash", "fish", "zsh"} <= set(complete("syncd", "completion", ""))
    for shell in ("zsh", "fish"):
        text = subprocess.run(
            [SYNCD, "completion", shell], capture_output=True, text=True, check=True
        ).stdout
        assert "detailed-exitcode" in text
        binary = shutil.which(shell)
        if binary is not None:  # the script parses in the shell itself
            check = ["-n"] if shell == "zsh" else ["--no-execute"]
            done = subprocess.run([binary, *check], input=text, text=True, check=False)
            assert 0 == done.returncode
