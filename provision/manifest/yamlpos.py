"""YAML loading that remembers where every value came from and refuses duplicate keys.

PyYAML's safe loader keeps the last of two equal keys silently and forgets positions. We
compose the node tree ourselves, convert it to plain Python, and keep a map from key path
(e.g. ("loras", 3, "sha256")) to the 1-based position of that key and of its value.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Final

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


# A manifest of a thousand entries has ~10k values. Aliases let a few lines expand to billions
# ("billion laughs"), so expansion is budgeted, and nesting beyond any manifest's is refused.
MAX_VALUES: Final = 50_000
MAX_DEPTH: Final = 32
_CORE: Final = "tag:yaml.org,2002:"
# Plain YAML types only: `!!python/...`, `!!binary`, `!!set` and custom tags have no meaning in
# a manifest, and silently reading `!!python/object/apply:os.system [...]` as a list would hide
# what the author (or an attacker) wrote.
ALLOWED_TAGS: Final = frozenset(
    _CORE + name for name in ("str", "int", "float", "bool", "null", "seq", "map", "timestamp")
)


_BRACKETS: Final = re.compile(r"[\[\]{}]")


class _Refused(Exception):
    """Stops conversion: the document is too large, too deep or recursive."""

    def __init__(self, node: yaml.Node, message: str) -> None:
        super().__init__(message)
        self.node = node
        self.message = message


# libyaml's parser when PyYAML was built with it (the wheels are): ~12x faster than the
# pure-Python one on a 1,000-entry manifest, with the same node marks, and it refuses nesting
# past 1,000 levels itself (a ScannerError, reported like any syntax error).
_COMPOSING_LOADER: Final = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


_INDENTATION_WORDS: Final = (
    "expected <block end>",
    "mapping values are not allowed",
    "did not find expected '-' indicator",
    "did not find expected key",
)


def _loc(file: str, mark: yaml.Mark) -> Location:
    return Location(file, mark.line + 1, mark.column + 1)


class _Composer:
    def __init__(self, file: str) -> None:
        self.positions = Positions(file)
        self.problems: list[ManifestProblem] = []
        self._scalars = yaml.SafeLoader("")
        self._count = 0
        self._open: set[int] = set()  # nodes being converted: an alias back to one recurses

    def close(self) -> None:
        self._scalars.dispose()

    def convert(self, node: yaml.Node, path: PathKey) -> Any:
        self._count += 1
        if self._count > MAX_VALUES:
            raise _Refused(node, f"the manifest expands to more than {MAX_VALUES} values "
                           "(aliases repeating aliases?)")  # fmt: skip
        if len(path) > MAX_DEPTH:
            raise _Refused(node, f"values nested more than {MAX_DEPTH} levels deep")
        if id(node) in self._open:
            raise _Refused(node, "an alias refers to a value that contains it (recursive)")
        self.positions.values[path] = _loc(self.positions.file, node.start_mark)
        if node.tag not in ALLOWED_TAGS:
            tag = node.tag.replace(_CORE, "!!")
            self._problem(node, f"the YAML tag {tag!r} is not allowed in a manifest; "
                          "write plain values")  # fmt: skip
            return None
        self._open.add(id(node))
        try:
            if isinstance(node, yaml.MappingNode):
                return self._mapping(node, path)
            if isinstance(node, yaml.SequenceNode):
                return [self.convert(child, (*path, i)) for i, child in enumerate(node.value)]
            return self._scalar(node)
        finally:
            self._open.discard(id(node))

    def _scalar(self, node: yaml.Node) -> Any:
        # Resolve the scalar with the safe loader's rules (ints, bools, null, strings), but
        # keep timestamps as strings: nothing in a manifest is a date.
        if node.tag == _CORE + "timestamp":
            return str(node.value)
        try:
            return self._scalars.construct_object(node, deep=True)
        except ValueError:  # an integer of thousands of digits
            self._problem(node, f"the number starting {str(node.value)[:20]!r} is too large")
        except yaml.YAMLError as exc:
            self._problem(node, f"cannot read this value: {getattr(exc, 'problem', exc)}")
        return None

    def _problem(self, node: yaml.Node, message: str) -> None:
        where = _loc(self.positions.file, node.start_mark)
        self.problems.append(ManifestProblem(where, message))

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


def _flow_too_deep(text: str, file: str) -> ManifestProblem | None:
    """PyYAML scans nested `[`/`{` in quadratic time (10 KB of them: a minute): count first.

    Brackets inside quotes count too; a real manifest never has 32 unclosed ones anyway.
    """
    depth = 0
    for match in _BRACKETS.finditer(text):
        depth += 1 if match[0] in "[{" else -1
        if depth > MAX_DEPTH:
            line = text.count("\n", 0, match.start()) + 1
            column = match.start() - (text.rfind("\n", 0, match.start()) + 1) + 1
            where = Location(file, line, column)
            return ManifestProblem(where, f"values nested more than {MAX_DEPTH} levels deep")
    return None


def load_yaml_with_positions(text: str, file: str) -> tuple[Any, Positions, list[ManifestProblem]]:
    """Parse `text`; syntax errors and duplicate keys come back as problems, never exceptions."""
    composer = _Composer(file)
    if deep := _flow_too_deep(text, file):
        return None, composer.positions, [deep]
    try:
        node = yaml.compose(text, Loader=_COMPOSING_LOADER)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = _loc(file, mark) if mark else Location(file, 1, 1)
        detail = " ".join(str(part) for part in (exc.context, exc.problem) if part)
        # PyYAML's and libyaml's words for a list item or key at the wrong indentation.
        if any(words in detail for words in _INDENTATION_WORDS):
            detail = f"check the indentation and the '-' of list items ({detail})"
        return None, composer.positions, [ManifestProblem(where, f"invalid YAML: {detail}")]
    except yaml.YAMLError as exc:
        return (
            None,
            composer.positions,
            [ManifestProblem(Location(file, 1, 1), f"invalid YAML: {exc}")],
        )
    except RecursionError:  # PyYAML composes recursively: `[[[[…` thousands deep
        message = "invalid YAML: values nested thousands of levels deep"
        return None, composer.positions, [ManifestProblem(Location(file, 1, 1), message)]
    if node is None:
        return None, composer.positions, []
    try:
        data = composer.convert(node, ())
    except _Refused as exc:
        where = _loc(file, exc.node.start_mark)
        return None, composer.positions, [ManifestProblem(where, exc.message)]
    finally:
        composer.close()
    return data, composer.positions, composer.problems
