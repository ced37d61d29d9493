"""cloudflare.api_token_file (issue 18 item 9): read at load and again at every run."""

from __future__ import annotations

from pathlib import Path

import pytest

from syncd.simulators.cloudflare import CloudflareSimulator
from tests.conftest import TOKEN, eventually
from tests.e2e.harness import Syncd, write_config

pytestmark = pytest.mark.e2e
ROTATED = "cf-rotated-7b1e0c44d2a9"


def test_a_token_rotated_in_its_file_is_used_by_the_next_run_without_a_restart(
    sim: CloudflareSimulator, tmp_path: Path
):
    secret = tmp_path / "token"
    secret.write_text(TOKEN + "\n")  # a mounted secret ends in a newline
    config = write_config(tmp_path, sim)
    raw = config.read_text().replace(
        "api_token: ${CLOUDFLARE_API_TOKEN}", f"api_token_file: {secret}"
    )
    assert "api_token_file" in raw
    config.write_text(raw + "\n")
    service = Syncd(config)
    try:
        first = service.wait_for("sync_finished")
        assert "success" == first["result"]
        sim.rotate_token(ROTATED)  # the old token is refused from now on
        secret.write_text(ROTATED + "\n")
        rotated_at = len(sim.requests)

        def answered_with_the_new_token() -> bool:
            later = sim.requests[rotated_at:]
            return any(
                r.headers.get("authorization") == f"Bearer {ROTATED}" and r.status == 200
                for r in later
            )

        eventually(answered_with_the_new_token, "a request with the rotated token answered")
        done = len(service.named("sync_finished"))
        after = service.wait_for("sync_finished", done + 1)
        assert "success" == after["result"]
        assert service.proc.poll() is None
    finally:
        service.stop()
    text = "".join(service.raw)
    assert TOKEN not in text, "the token never reaches the logs"
    assert ROTATED not in text
