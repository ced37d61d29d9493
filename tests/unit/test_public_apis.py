"""syncd uses its dependencies' public APIs only (issue 27 item 5): a private name of httpx
pinned httpx below a release for a year. Checked on the source, so a new import fails here."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SYNCD = Path(__file__).resolve().parents[2] / "syncd"


def _private(name: str) -> bool:
    return any(part.startswith("_") and not part.startswith("__") for part in name.split("."))


def private_imports(source: str) -> list[str]:
    """``from x import _y``, ``from x._y import z`` and ``import x._y`` of a module that is not
    syncd's own, as ``line: statement`` texts."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            if node.module.split(".")[0] == "syncd":
                continue
            names = [a.name for a in node.names if _private(a.name)]
            if _private(node.module) or names:
                found.append(f"{node.lineno}: from {node.module} import {', '.join(names)}")
        elif isinstance(node, ast.Import):
            found += [
                f"{node.lineno}: import {a.name}"
                for a in node.names
                if a.name.split(".")[0] != "syncd" and _private(a.name)
            ]
    return found


@pytest.mark.parametrize(
    "path", sorted(SYNCD.rglob("*.py")), ids=lambda p: str(p.relative_to(SYNCD))
)
def test_no_module_of_syncd_imports_a_private_name_of_a_dependency(path: Path):
    assert [] == private_imports(path.read_text())


def test_the_check_finds_each_form_of_private_import():
    source = (
        "from prometheus_client.exposition import ThreadingWSGIServer, _SilentHandler\n"
        "from httpx._transports.default import HTTPTransport\n"
        "import httpcore._sync\n"
        "from syncd.model import _private_but_ours\n"
        "from syncd import __version__\n"
        "from . import _sibling\n"
    )
    assert [
        "1: from prometheus_client.exposition import _SilentHandler",
        "2: from httpx._transports.default import ",
        "3: import httpcore._sync",
    ] == private_imports(source)
