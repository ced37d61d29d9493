"""One name for one thing: no class or module name is defined twice in syncd/.

The vendor modules (one per cloud, under ``sources/collectors/``) may each hold their own
private helper of the same name (their ``_translated``, their credentials), since each reads
one SDK; the simulators stand apart from the rest of syncd by design. Everything else reads
as a glossary: a name found in two places would mean two things (docs/architecture.md).
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

from syncd.model import Vendor

SYNCD = Path(__file__).resolve().parents[2] / "syncd"
_VENDORS = {SYNCD / "sources" / "collectors" / f"{v.value}.py" for v in Vendor}


def _modules() -> list[Path]:
    return [
        p for p in sorted(SYNCD.rglob("*.py")) if "simulators" not in p.relative_to(SYNCD).parts
    ]


def _twice(defined: dict[str, set[Path]]) -> dict[str, list[str]]:
    """Names defined in more than one module, unless all of those are vendor modules."""
    return {
        name: sorted(str(p.relative_to(SYNCD.parent)) for p in where)
        for name, where in defined.items()
        if len(where) > 1 and not where <= _VENDORS
    }


def _classes() -> dict[str, set[Path]]:
    """Each class name, with the modules that define it."""
    defined: dict[str, set[Path]] = defaultdict(set)
    for path in _modules():
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.ClassDef):
                defined[node.name].add(path)
    return defined


def test_no_class_name_is_defined_twice():
    assert {} == _twice(_classes())


def test_no_module_name_is_used_twice():
    defined: dict[str, set[Path]] = defaultdict(set)
    for path in _modules():
        if path.name != "__init__.py":
            defined[path.stem].add(path)
    assert {} == _twice(defined)


def test_the_check_sees_the_tree():
    # Guards the two tests above against passing on an empty walk.
    names = {p.stem for p in _modules()}
    assert {"model", "failures", "deadline", "budget", "transport"} <= names
