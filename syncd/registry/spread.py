"""When what the registry remembers about a zone falls due again, spread over an interval.

A zone's first verification and first traffic reading are placed at a stable point of their
interval (``phase``), so hundreds of zones never fall due in the same run.
"""

from __future__ import annotations

import hashlib


def phase(zone_id: str) -> float:
    """A stable fraction in (0, 1] per zone, so the zones' first verifications (and traffic
    readings) spread over their interval and never bunch."""
    digest = hashlib.sha256(zone_id.encode()).digest()
    return (int.from_bytes(digest[:4], "big") + 1) / 2**32
