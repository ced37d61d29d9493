"""Every query of the Grafana dashboard returns series on a live syncd (issue 27 item 4).

`syncd run` on the demo estate (every simulated cloud, a zone with `origins: dns`) is scraped by a
real Prometheus; each panel's query, with the dashboard's variables filled in, must return at
least one series: no panel of a fresh install says "No data" before a first error or retry.
"""

from __future__ import annotations

import json
from functools import partial
from pathlib import Path

import pytest
import yaml

from syncd import demo
from tests.conftest import eventually
from tests.e2e.harness import Prometheus, Syncd

pytestmark = pytest.mark.e2e
DASHBOARD = Path(__file__).resolve().parents[2] / "deploy/grafana/syncd.json"
VARIABLES = {"$job": "syncd", "$instance": ".+", "$window": "1m"}


def queries() -> list[tuple[str, str]]:
    found = []
    for panel in json.loads(DASHBOARD.read_text())["panels"]:
        for target in panel.get("targets", []):
            expr = target["expr"]
            for name, value in VARIABLES.items():
                expr = expr.replace(name, value)
            found.append((panel["title"], expr))
    return found


def test_every_dashboard_query_has_series_on_a_live_demo_run(tmp_path: Path):
    assert len(queries()) > 20
    (tmp_path / "estate").mkdir()
    with demo.estate(tmp_path / "estate") as estate:
        raw = yaml.safe_load(estate.config_path.read_text())
        raw["cloudflare"]["api_token"] = estate.env["CLOUDFLARE_API_TOKEN"]  # not the harness's
        raw["metrics"] = {"listen": "127.0.0.1:0"}
        raw["logging"] = {"format": "json", "level": "info"}
        estate.config_path.write_text(yaml.safe_dump(raw))
        daemon = Syncd(estate.config_path)
        try:
            port = daemon.port
            prometheus = Prometheus(tmp_path, f"127.0.0.1:{port}")
            try:
                # The first run collects from every simulated cloud: a minute on a loaded host.
                first = "syncd_last_run_result"
                eventually(lambda: prometheus.query(first), "the first run's scrape", 90)
                for title, expr in queries():  # rate() needs two scrapes: poll each a while
                    eventually(partial(prometheus.query, expr), f"{title!r}: {expr}", 30)
            finally:
                prometheus.stop()
        finally:
            daemon.stop()
            print("".join(daemon.raw[-20:]))  # shown when the test fails
