"""YAML loading that remembers where every value came from and refuses duplicate keys.

PyYAML's safe loader keeps the last of two equal keys silently and forgets positions. We
compose the node tree ourselves, convert it to plain Python, and keep a map from key path
(e.g. ("loras", 3, "sha256")) to the 1-based position of that key and of its value.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import yaml

from provision.errors import Location, ManifestProblem

PathKey = tuple[str | int, ...]


@dataclass(slots=True)
class Positions:
    """Where each value (and each mapping key) sits in the source file."""

    file: str
    values: dict[PathKey, Location] = field(default_factory=dict)
    keys: dict[PathKey, Location] = field(default_factory=dict)

    def of(self, path: PathKey, *, key: bool = False) -> Location:
        """Position of `path`, or of its closest ancestor when it has none (e.g. a missing key)."""
        table = self.keys if key else self.values
        probe = path
        while probe:
            if probe in table:
                return table[probe]
            if probe in self.values:
                return self.values[probe]
            probe = probe[:-1]
        return self.values.get((), Location(self.file, 1, 1))


def _loc(file: str, mark: yaml.Mark) -> Location:
    return Location(file, mark.line + 1, mark.column + 1)


class _Composer:
    def __init__(self, file: str) -> None:
        self.positions = Positions(file)
        self.problems: list[ManifestProblem] = []
        self._scalars = yaml.SafeLoader("")

    def close(self) -> None:
        self._scalars.dispose()

    def convert(self, node: yaml.Node, path: PathKey) -> Any:
        self.positions.values[path] = _loc(self.positions.file, node.start_mark)
        if isinstance(node, yaml.MappingNode):
            return self._mapping(node, path)
        if isinstance(node, yaml.SequenceNode):
            return [self.convert(child, (*path, i)) for i, child in enumerate(node.value)]
        assert isinstance(node, yaml.ScalarNode)
        # Resolve the scalar with the safe loader's rules (ints, bools, null, strings), but
        # keep timestamps as strings: nothing in a manifest is a date.
        if node.tag == "tag:yaml.org,2002:timestamp":
            return str(node.value)
        return self._scalars.construct_object(node, deep=True)

    def _mapping(self, node: yaml.MappingNode, path: PathKey) -> dict[str, Any]:
        result: dict[str, Any] = {}
        for key_node, value_node in node.value:
            key_loc = _loc(self.positions.file, key_node.start_mark)
            if not isinstance(key_node, yaml.ScalarNode):
                self.problems.append(ManifestProblem(key_loc, "keys must be plain strings"))
                continue
            key = str(key_node.value)
            if key in result:
                first = self.positions.keys[(*path, key)]
                self.problems.append(
                    ManifestProblem(
                        key_loc,
                        f"duplicate key {key!r} (first defined at line {first.line}); "
                        "YAML would silently keep only the last one",
                    )
                )
                continue
            self.positions.keys[(*path, key)] = key_loc
            result[key] = self.convert(value_node, (*path, key))
        return result


def load_yaml_with_positions(text: str, file: str) -> tuple[Any, Positions, list[ManifestProblem]]:
    """Parse `text`; syntax errors and duplicate keys come back as problems, never exceptions."""
    composer = _Composer(file)
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = _loc(file, mark) if mark else Location(file, 1, 1)
        detail = " ".join(str(part) for part in (exc.context, exc.problem) if part)
        if "expected <block end>" in detail or "mapping values are not allowed" in detail:
            detail = f"check the indentation and the '-' of list items ({detail})"
        return None, composer.positions, [ManifestProblem(where, f"invalid YAML: {detail}")]
    except yaml.YAMLError as exc:
        return (
            None,
            composer.positions,
            [ManifestProblem(Location(file, 1, 1), f"invalid YAML: {exc}")],
        )
    if node is None:
        return None, composer.positions, []
    try:
        data = composer.convert(node, ())
    finally:
        composer.close()
    return data, composer.positions, composer.problems
