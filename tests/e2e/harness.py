"""What the e2e tests share: the installed CLI as a child process, its config, polling."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import httpx
import yaml

from syncd.simulators.cloudflare import CloudflareSimulator
from tests.conftest import TOKEN, ZONE, eventually

SYNCD = Path(sys.executable).parent / "syncd"
STATIC = [
    {"ip": "192.0.2.10", "vendor": "aws", "region": "us-east-1"},
    {"ip": "2001:db8::10", "vendor": "gcp", "region": "us-central1"},
    {"ip": "198.51.100.7", "vendor": "azure", "region": "westeurope"},
    {"ip": "10.0.0.5", "vendor": "aws", "region": "us-east-1"},
]
EXPECTED = {
    "192.0.2.10": ("aws", "us-east-1"),
    "2001:db8::10": ("gcp", "us-central1"),
    "198.51.100.7": ("azure", "westeurope"),
}


MANY = [{"ip": f"198.51.100.{i}", "vendor": "aws", "region": "us-east-1"} for i in range(1, 251)]


def sync_cli(config: Path, *extra: str) -> subprocess.Popen[str]:
    """``syncd sync`` as a process, its output piped."""
    return subprocess.Popen(
        [str(SYNCD), "sync", "--config", str(config), *extra],
        env={**os.environ, "CLOUDFLARE_API_TOKEN": TOKEN},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def write_config(tmp: Path, sim: CloudflareSimulator, **sections: dict[str, Any]) -> Path:
    raw: dict[str, Any] = {
        "cloudflare": {
            "backoff": "10ms",
            "retries": 0,
            "timeout": "5s",
            "api_token": "${CLOUDFLARE_API_TOKEN}",
            "base_url": sim.base_url,
            "api": "v2",
            "zones": [{"id": ZONE, "name": "example.com", "origins": "all"}],
        },
        "collectors": {"request_timeout": "5s", "static": STATIC},
        "state": {"path": str(tmp / "state.db")},
        "schedule": {"interval": "1s", "shutdown_timeout": "10s"},
        "metrics": {"listen": "127.0.0.1:0"},
        "logging": {"format": "json"},
    }
    for key, value in sections.items():
        raw[key] = {**raw.get(key, {}), **value}
    path = tmp / "syncd.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


class Syncd:
    """``syncd run`` as a child process; its JSON log lines collected as they come."""

    def __init__(self, config: Path) -> None:
        env = {**os.environ, "CLOUDFLARE_API_TOKEN": TOKEN}
        self.proc = subprocess.Popen(
            [str(SYNCD), "run", "--config", str(config)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        self.events: list[dict[str, Any]] = []
        self.raw: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.raw.append(line)
            try:
                self.events.append(json.loads(line))
            except ValueError:
                continue

    def named(self, name: str) -> list[dict[str, Any]]:
        return [e for e in list(self.events) if e.get("event") == name]

    def wait_for(self, name: str, count: int = 1) -> dict[str, Any]:
        found = eventually(lambda: len(self.named(name)) >= count, f"{count} x {name}")
        assert found
        return self.named(name)[count - 1]

    @property
    def port(self) -> int:
        return int(self.wait_for("metrics_listening")["port"])

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(10)
        self._reader.join(5)
        if self.proc.stdout is not None:
            self.proc.stdout.close()
        if self.proc.stderr is not None:
            self.proc.stderr.close()


PROMETHEUS = "/usr/bin/prometheus"


class Prometheus:
    """A real Prometheus on loopback scraping one target every second."""

    def __init__(self, tmp: Path, target: str) -> None:
        config = {
            "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
            "scrape_configs": [
                {"job_name": "syncd", "static_configs": [{"targets": [target]}]},
            ],
        }
        (tmp / "prometheus.yml").write_text(yaml.safe_dump(config))
        self.url = f"http://127.0.0.1:{free_port()}"
        self.log = (tmp / "prometheus.log").open("w")
        self.proc = subprocess.Popen(
            [
                PROMETHEUS,
                f"--config.file={tmp / 'prometheus.yml'}",
                f"--storage.tsdb.path={tmp / 'data'}",
                f"--web.listen-address={self.url.removeprefix('http://')}",
            ],
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )

    def query(self, promql: str) -> list[dict[str, Any]]:
        try:
            answer = httpx.get(f"{self.url}/api/v1/query", params={"query": promql}, timeout=5)
        except httpx.TransportError:
            return []
        if answer.status_code == 503:  # still starting (not ready yet)
            return []
        body = answer.json()
        assert "success" == body["status"], body
        result: list[dict[str, Any]] = body["data"]["result"]
        return result

    def values(self, promql: str, label: str) -> dict[str, float]:
        return {r["metric"].get(label, ""): float(r["value"][1]) for r in self.query(promql)}

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)
        self.log.close()
