"""``syncd run`` gives a run's memory back between runs (issue 17 item 5): under the image's
``PYTHONMALLOC=malloc`` a collection and glibc's ``malloc_trim`` return nearly all of it."""

from __future__ import annotations

import json
import os
import subprocess
import sys

PROGRAM = """
import json
from pathlib import Path

from syncd.daemon import release_memory

def rss():
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024

start = rss()
held = [{"ip": f"198.51.{i % 256}.{i // 256 % 256}", "n": i} for i in range(400_000)]
peak = rss()
del held
trimmed = release_memory()
print(json.dumps({"start": start, "peak": peak, "idle": rss(), "trimmed": trimmed}))
"""


def test_release_memory_returns_a_runs_memory_to_the_system():
    env = {**os.environ, "PYTHONMALLOC": "malloc"}
    out = subprocess.run(
        [sys.executable, "-c", PROGRAM],
        check=False,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert 0 == out.returncode, out.stderr
    rss = json.loads(out.stdout)
    assert rss["trimmed"] is True, "glibc's malloc_trim was found"
    grown = rss["peak"] - rss["start"]
    assert grown > 50, f"the program did not allocate enough to measure: {rss}"
    assert rss["idle"] - rss["start"] < grown * 0.2, f"most of it was not given back: {rss}"
