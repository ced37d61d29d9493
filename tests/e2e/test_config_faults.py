"""Hostile configuration files through the installed CLI (issue 14 items 5-14): exit 2 with one
line on stderr naming the key or the position, never a traceback, never the token."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import pytest
import yaml

from syncd.simulators.cloudflare import CloudflareSimulator
from tests.conftest import TOKEN, ZONE
from tests.e2e.harness import SYNCD

HEAD = f"""\
cloudflare:
  api_token: ${{CLOUDFLARE_API_TOKEN}}
  zones: [{{id: {ZONE}, name: example.com, origins: all}}]
"""
BOMB = (
    HEAD
    + "x:\n  l0: &l0 lol\n"
    + "".join(f"  l{n}: &l{n} [{', '.join([f'*l{n - 1}'] * 9)}]\n" for n in range(1, 9))
)


def check_config(tmp_path: Path, data: str | bytes, token: str = TOKEN) -> tuple[int, str, str]:
    path = tmp_path / "syncd.yaml"
    path.write_bytes(data.encode() if isinstance(data, str) else data)
    done = subprocess.run(
        [str(SYNCD), "check-config", "--config", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={**os.environ, "CLOUDFLARE_API_TOKEN": token},
    )
    return done.returncode, done.stdout, done.stderr


@pytest.mark.parametrize(
    ("data", "needle"),
    [
        (
            HEAD + "collectors: {}\ncollectors: {static: []}\n",
            "duplicate key 'collectors' at line 5 (first at line 4)",
        ),
        (
            (HEAD + "# caf\xe9\n").encode("latin-1"),
            "is not UTF-8 text: byte 0xe9 at line 4, column 6",
        ),
        ("a: " + "[" * 5000 + "]" * 5000, "nesting deeper than 50 levels at line 1"),
        (BOMB, "aliases expand to more than 200,000 nodes at line 11"),
        (
            HEAD.replace("  zones:", "  timeout: .inf\n  zones:"),
            "cloudflare.timeout: Value error, must be between 100ms and 5m",
        ),
        (
            HEAD + "collectors: {request_timeout: 0}\n",
            "collectors.request_timeout: Value error, must be between 100ms and 5m",
        ),
        (HEAD + "sync: {timeout: 30s}\n", "sync.timeout: moved to cloudflare.timeout"),
        (HEAD + "state: {path: ''}\n", "state.path: Value error, a path cannot be empty"),
        (
            HEAD.replace(ZONE, "abc"),
            "cloudflare.zones.0.id: Value error, a zone id is 32 hexadecimal",
        ),
        (HEAD + f"logging: {{level: '{'x' * 100_000}'}}\n", "(100,002 characters)"),
        (
            f"cloudflare:\n  api_token: '{TOKEN}\n  zones: [\n",
            "is not valid YAML: found unexpected end of stream at line 4, column 1",
        ),
        (
            HEAD + "collectors: {static: [{ip: '2001:db8::1%eth0', vendor: aws, region: x}]}\n",
            "collectors.static.0.ip: Value error, an address with a zone index",
        ),
    ],
)
def test_a_bad_file_exits_2_with_one_line(tmp_path: Path, data: str | bytes, needle: str):
    started = time.monotonic()
    code, out, err = check_config(tmp_path, data)
    assert (2, "") == (code, out)
    assert 1 == len(err.splitlines()), err
    assert err.startswith(f"syncd: invalid configuration in {tmp_path / 'syncd.yaml'}: ")
    assert needle in err
    assert len(err) < 500
    assert "Traceback" not in err
    assert TOKEN not in err
    assert time.monotonic() - started < 30  # the bomb included: no exponential expansion


def test_a_token_that_cannot_be_a_header_is_named_not_echoed(tmp_path: Path):
    code, _, err = check_config(tmp_path, HEAD, token="cf-tök-" + TOKEN)
    assert 2 == code
    assert "cloudflare.api_token: Value error, cannot be sent in an HTTP header" in err
    assert TOKEN not in err
    assert "Traceback" not in err


def test_an_ipv4_mapped_static_address_is_shown_as_ipv4(tmp_path: Path):
    text = HEAD + "collectors: {static: [{ip: '::ffff:192.0.2.7', vendor: aws, region: x}]}\n"
    code, out, _ = check_config(tmp_path, text)
    assert 0 == code
    assert "192.0.2.7" == yaml.safe_load(out)["collectors"]["static"][0]["ip"]


def test_a_token_from_a_secret_file_with_its_newline_works_at_the_wire(
    tmp_path: Path, cf: CloudflareSimulator
):
    path = tmp_path / "syncd.yaml"
    path.write_text(HEAD.replace("  zones:", f"  base_url: {cf.base_url}\n  zones:"))
    done = subprocess.run(
        [str(SYNCD), "regions", "--config", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={**os.environ, "CLOUDFLARE_API_TOKEN": TOKEN + "\n"},
    )
    assert 0 == done.returncode, done.stderr
    assert "us-east-1" in done.stdout
