"""The YAML reader: PyYAML's safe loader refusing what would crash or stall it (duplicate
keys, deep nesting, alias bombs, bad bytes), pointing at line and column, never quoting a line."""

from __future__ import annotations

import re
from collections.abc import Hashable
from typing import Any

import yaml

from syncd.config.values import shown
from syncd.errors import ConfigError

MAX_DEPTH = 50  # nesting levels; the deepest key of the model is 5 levels down
MAX_NODES = 200_000  # nodes aliases may add; a file's own nodes are not limited


def read_yaml(text: str | bytes) -> Any:
    """Parse one YAML document safely; every failure is a ``ConfigError`` with line and column,
    never the text of the line (it may hold a secret). The caller names the file (``source``
    of the error: ``loader.parse``)."""
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError as exc:
            line, column = _position(text, exc.start)
            raise file_problem(
                f"the file is not UTF-8 text: byte 0x{text[exc.start]:02x} at {line}, {column}"
            ) from None
    try:
        return _construct(text)
    except yaml.MarkedYAMLError as exc:
        raise file_problem(f"the file is not valid YAML: {_yamlfile_problem(exc)}") from None
    except yaml.reader.ReaderError as exc:
        line, column = _position(text, exc.position)
        problem = f"character #x{exc.character:04x} is not allowed in YAML at {line}, {column}"
        raise file_problem(f"the file is not valid YAML: {problem}") from None
    except yaml.YAMLError:  # pragma: no cover (every error PyYAML raises is one of the above)
        raise file_problem("the file is not valid YAML") from None


def file_problem(message: str) -> ConfigError:
    """A problem of the file as a whole (no key path)."""
    return ConfigError([("", message)])


def _construct(text: str) -> Any:
    loader = _Loader(text)  # the reader checks the characters here already
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        _check_expansion(node)
        return loader.construct_document(node)
    finally:
        loader.dispose()


def _position(data: bytes | str, offset: int) -> tuple[str, str]:
    newline = b"\n" if isinstance(data, bytes) else "\n"
    line = data.count(newline, 0, offset) + 1  # type: ignore[arg-type]
    column = offset - (data.rfind(newline, 0, offset) + 1) + 1  # type: ignore[arg-type]
    return f"line {line}", f"column {column}"


def _at(mark: yaml.Mark | None) -> str:
    return f"line {mark.line + 1}, column {mark.column + 1}" if mark else "an unknown position"


_QUOTED = re.compile(r"'[^']*'|\"[^\"]*\"")


def _yamlfile_problem(exc: yaml.MarkedYAMLError) -> str:
    """PyYAML's problem at its line and column, with quoted text (a tag, an anchor, a piece of
    the line) left out: only PyYAML's own words and the position are shown."""
    problem = _QUOTED.sub("(...)", exc.problem or "syntax error")
    return f"{problem} at {_at(exc.problem_mark)}"


class _Loader(yaml.SafeLoader):
    """PyYAML's safe loader, refusing duplicate keys and deep nesting, with dates left as text
    (nothing in the configuration is a date; ``2026-13-45`` would crash the constructor)."""

    yaml_implicit_resolvers = {
        first: [r for r in resolvers if r[0] != "tag:yaml.org,2002:timestamp"]
        for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
    }

    def __init__(self, text: str) -> None:
        super().__init__(text)
        self._depth = 0

    def compose_node(self, parent: yaml.Node | None, index: Any) -> yaml.Node | None:
        self._depth += 1
        try:
            if self._depth > MAX_DEPTH:
                mark = self.peek_event().start_mark  # type: ignore[no-untyped-call]
                raise file_problem(f"nesting deeper than {MAX_DEPTH} levels at {_at(mark)}")
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1

    def construct_object(self, node: yaml.Node, deep: bool = False) -> Any:  # noqa: FBT001, FBT002
        try:
            return super().construct_object(node, deep=deep)
        except (ValueError, OverflowError) as exc:  # !!int 0x, !!float x, a 5,000-digit int
            name = node.tag.rsplit(":", 1)[-1]
            raise file_problem(
                f"a value at {_at(node.start_mark)} is not a valid {name}: {type(exc).__name__}"
            ) from None

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> Any:  # noqa: FBT001, FBT002
        seen: dict[Any, yaml.Node] = {}
        for key_node, _ in node.value:
            if not isinstance(key_node, yaml.ScalarNode) or key_node.tag.endswith(":merge"):
                continue  # a merge (<<) may override on purpose; other keys fail in the model
            key = self.construct_object(key_node)
            if isinstance(key, Hashable) and key in seen:
                raise file_problem(
                    f"duplicate key {shown(key)} at line {key_node.start_mark.line + 1} "
                    f"(first at line {seen[key].start_mark.line + 1}); "
                    "YAML would silently keep only the last"
                )
            if isinstance(key, Hashable):
                seen[key] = key_node
        return super().construct_mapping(node, deep=deep)


def _check_expansion(root: yaml.Node) -> None:
    """Refuse aliases that add more than ``MAX_NODES`` nodes to the document, nest it deeper
    than ``MAX_DEPTH`` levels, or refer to themselves (an alias bomb of under 1 KB can expand to
    billions of nodes), in time linear in the document: each node's expanded size and height are
    computed once. Only what aliases add is counted, so a large file without aliases (tens of
    thousands of static entries) is never refused for its size."""
    done: dict[int, tuple[int, int]] = {}  # id(node) -> (expanded size, height)
    active: set[int] = set()
    added = 0  # nodes the aliases copy into the document

    def visit(node: yaml.Node, depth: int, parent: yaml.Node) -> tuple[int, int]:
        nonlocal added
        key = id(node)
        if key in active:
            raise file_problem(
                f"the anchored node at {_at(node.start_mark)} contains an alias of itself"
            )
        if key in done:  # a second reference: an alias (or a merge) copies the node
            size, height = done[key]
            added += size
            if added > MAX_NODES:
                raise file_problem(
                    f"aliases expand to more than {MAX_NODES:,} nodes at {_at(parent.start_mark)}"
                )
        else:
            size, height = _expand(node, depth)
        if depth + height > MAX_DEPTH:
            raise file_problem(f"nesting deeper than {MAX_DEPTH} levels at {_at(node.start_mark)}")
        return size, height

    def _expand(node: yaml.Node, depth: int) -> tuple[int, int]:
        key = id(node)
        active.add(key)
        children: list[yaml.Node] = []
        if isinstance(node, yaml.SequenceNode):
            children = list(node.value)
        elif isinstance(node, yaml.MappingNode):
            children = [n for pair in node.value for n in pair]
        size, height = 1, 0
        for child in children:
            child_size, child_height = visit(child, depth + 1, node)
            size, height = size + child_size, max(height, child_height + 1)
        active.discard(key)
        done[key] = (size, height)
        return size, height

    visit(root, 0, root)
