"""The configuration reference and the example file cannot drift from the model."""

from __future__ import annotations

import re
import types
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Union, get_args, get_origin

import yaml
from pydantic import BaseModel

from syncd import config

ROOT = Path(__file__).resolve().parents[2]


def _models(annotation: Any) -> Iterator[tuple[type[BaseModel], bool]]:
    """Nested models of a field's type, and whether they sit inside a list."""
    origin = get_origin(annotation)
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        yield annotation, False
    elif origin is tuple:
        for arg in get_args(annotation):
            for model, _ in _models(arg):
                yield model, True
    elif origin in (Union, types.UnionType):
        for arg in get_args(annotation):
            yield from _models(arg)


def key_paths(model: type[BaseModel], prefix: str = "") -> Iterator[str]:
    for name, field in model.model_fields.items():
        path = f"{prefix}.{name}" if prefix else name
        nested = list(_models(field.annotation))
        if not nested:
            yield path
        for sub, in_list in nested:
            yield from key_paths(sub, path + ("[]" if in_list else ""))


def test_every_key_is_documented():
    doc = (ROOT / "docs/configuration.md").read_text()
    paths = sorted(set(key_paths(config.Settings)))
    missing = [p for p in paths if f"`{p}`" not in doc]
    assert [] == missing
    assert len(paths) > 60


def _fields(model: type[BaseModel], prefix: str = "") -> Iterator[tuple[str, str | None]]:
    """(key path, description) of every field, nested models included."""
    for name, field in model.model_fields.items():
        path = f"{prefix}.{name}" if prefix else name
        yield path, field.description
        for sub, in_list in _models(field.annotation):
            yield from _fields(sub, path + ("[]" if in_list else ""))


def test_every_field_has_a_description_and_the_reference_renders_it():
    doc = (ROOT / "docs/configuration.md").read_text()
    rows = dict(re.findall(r"^\| `([^`]+)` \| .*? \| (.*) \|$", doc, flags=re.MULTILINE))
    fields = dict(_fields(config.Settings))
    assert [] == [path for path, text in fields.items() if not text]
    # Each key's row in the reference carries the model's description word for word.
    differing = [
        (path, fields[path], row) for path, row in rows.items() if fields.get(path, row) != row
    ]
    assert [] == differing
    assert [] == sorted(set(rows) - set(fields)), "rows for keys the model does not have"


def test_every_key_is_in_the_example_and_the_example_is_valid():
    path = ROOT / "config/syncd.example.yaml"
    settings = config.load(path, {"CLOUDFLARE_API_TOKEN": "example"})
    text = path.read_text()
    raw = yaml.safe_load(text)
    missing = [
        p
        for p in sorted(set(key_paths(config.Settings)))
        if not _present(raw, p) and f"# {p.rsplit('.', 1)[-1]}:" not in text  # shown commented
    ]
    assert [] == missing
    assert settings.cloudflare.zones[0].policy == "upsert-only"


def _present(raw: Any, path: str) -> bool:
    node = raw
    for part in path.split("."):
        key = part.removesuffix("[]")
        if not isinstance(node, dict) or key not in node:
            return False
        node = node[key]
        if part.endswith("[]"):
            node = node[0] if isinstance(node, list) and node else {}
        if node is None:
            return True
    return True
