"""Edit a manifest in place: add or remove entries, keeping every other byte as it was.

A team's manifest carries comments, a chosen order, flow or block sections and its own
indentation; re-serialising it (even with a round-trip library) normalises some of that. So
ruamel.yaml parses the file only to learn where each section and entry sits, the edit is
spliced into the original text, and the result is parsed again and compared with the
intended data: an edit that would change anything else is refused, never written.
"""

from __future__ import annotations

import io
import json
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any, Final

import yaml as pyyaml
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import YAMLError

from provision.errors import SdprovError

_FLOW_UNSAFE: Final = frozenset(":#,[]{}?&*!|>'\"%@`")


class ManifestEditError(SdprovError):
    """The manifest cannot be edited safely in place (exit 2: the file needs a hand edit)."""

    exit_code = 2


def _yaml() -> YAML:
    yaml = YAML(typ="rt")
    yaml.width = 4096  # never fold a long URL onto two lines
    return yaml


def _load(text: str, file: str) -> CommentedMap:
    try:
        data = _yaml().load(text) if text.strip() else None
    except YAMLError as exc:
        raise ManifestEditError(f"{file}: not valid YAML ({exc})") from exc
    if data is None:
        return CommentedMap()
    if not isinstance(data, CommentedMap):
        raise ManifestEditError(f"{file}: the manifest must be a mapping of sections")
    return data


def _plain(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


@dataclass(frozen=True, slots=True)
class _Lines:
    """The text split into lines (ends kept) with a line/column → offset map."""

    lines: list[str]

    @classmethod
    def of(cls, text: str) -> _Lines:
        return cls(text.splitlines(keepends=True))

    def offset(self, line: int, col: int) -> int:
        return sum(len(x) for x in self.lines[:line]) + col

    def indent(self, i: int) -> int:
        line = self.lines[i]
        return len(line) - len(line.lstrip(" "))

    def blank(self, i: int) -> bool:
        return not self.lines[i].strip()

    def comment(self, i: int) -> bool:
        return self.lines[i].lstrip().startswith("#")


def add_entry(text: str, section: str, entry: Mapping[str, Any], *, file: str) -> str:
    """`text` with `entry` appended to `section` (created at the end when missing)."""
    data = _load(text, file)
    value = data.get(section)
    if value is not None and not isinstance(value, CommentedSeq):
        raise ManifestEditError(f"{file}: `{section}` is not a list; fix it by hand first")
    expected = _plain(data)
    expected[section] = [*(expected.get(section) or []), _plain(entry)]
    if isinstance(value, CommentedSeq) and _is_flow(text, data, section):
        new = _add_flow(text, data, section, entry)
    elif isinstance(value, CommentedSeq) and len(value):
        new = _add_block(text, value, entry)
    elif section in data:
        new = _add_under_key(text, data, section, entry)
    else:
        new = _append_section(text, data, section, entry)
    return _checked(new, expected, file, f"add to `{section}`")


def remove_entries(text: str, targets: Collection[tuple[str, int]], *, file: str) -> str:
    """`text` without the entries at (section, index); other bytes are kept."""
    data = _load(text, file)
    expected = _plain(data)
    for section in {s for s, _ in targets}:
        drop = {i for s, i in targets if s == section}
        expected[section] = [e for i, e in enumerate(expected[section]) if i not in drop]
        if not expected[section] and not data[section].fa.flow_style():
            expected[section] = None  # an emptied block section is a bare `key:` (null)
    new = text
    # Bottom-up, so earlier offsets stay valid while later text changes.
    for section, index in sorted(targets, key=lambda t: _position(data, t), reverse=True):
        seq = data[section]
        if seq.fa.flow_style():
            new = _remove_flow(new, data, section, index)
        else:
            new = _remove_block(new, seq, index)
    return _checked(new, expected, file, "remove")


def _is_flow(text: str, data: CommentedMap, section: str) -> bool:
    value = data[section]
    if value.fa.flow_style():
        return True
    line, col = data.lc.value(section)  # an empty `[]` does not report its style
    return text[_Lines.of(text).offset(int(line), int(col)) :].startswith("[")


def _position(data: CommentedMap, target: tuple[str, int]) -> tuple[int, int]:
    line, col = data[target[0]].lc.item(target[1])
    return int(line), int(col)


def _checked(new: str, expected: Any, file: str, what: str) -> str:
    # Both readers must see exactly the intended data: ruamel (YAML 1.2) and PyYAML (YAML 1.1,
    # which the manifest loader uses).
    if _plain(_load(new, file)) != expected or _pyyaml(new) != expected:
        raise ManifestEditError(
            f"{file}: cannot {what} without disturbing the rest of the file "
            "(unusual layout); make this edit by hand"
        )
    return new


def _pyyaml(text: str) -> Any:
    try:
        return pyyaml.safe_load(text) or {}
    except pyyaml.YAMLError:
        return None


# --------------------------------------------------------------------------- rendering


def _scalar(value: Any, *, flow: bool = False) -> str:
    """One value as YAML text, quoted only when YAML needs it; mappings in flow style."""
    if isinstance(value, Mapping):
        inner = ", ".join(f"{k}: {_scalar(v, flow=True)}" for k, v in value.items())
        return "{" + inner + "}"
    if isinstance(value, str) and flow and any(c in value for c in _FLOW_UNSAFE):
        return json.dumps(value, ensure_ascii=False)  # YAML 1.1 readers stumble on `:` in flow
    yaml = _yaml()
    yaml.default_flow_style = True
    out = io.StringIO()
    yaml.dump([value], out)
    return out.getvalue().strip()[1:-1].strip()  # drop the `[...]` wrapper


def _flow_entry(entry: Mapping[str, Any]) -> str:
    return _scalar(entry, flow=True)


def _block_entry(entry: Mapping[str, Any], dash_col: int, gap: int) -> str:
    lines = []
    for n, (key, value) in enumerate(entry.items()):
        lead = " " * dash_col + "-" + " " * (gap - 1) if n == 0 else " " * (dash_col + gap)
        lines.append(f"{lead}{key}: {_scalar(value)}\n")
    return "".join(lines)


def _style(data: CommentedMap, lines: _Lines) -> tuple[int, int]:
    """(dash column, gap from dash to content) of the file's first block section."""
    for value in data.values():
        if isinstance(value, CommentedSeq) and len(value) and not value.fa.flow_style():
            line, col = (int(x) for x in value.lc.item(0))
            dash = _find_dash(lines.lines[line], col)
            return dash, max(col - dash, 2)
    return 2, 2


# --------------------------------------------------------------------------- block lists


def _item_span(lines: _Lines, seq: CommentedSeq, index: int) -> tuple[int, int, int]:
    """Lines [start, end) of a block item (its own comment lines above included), and the
    dash column. Trailing comments at or left of the dash belong to what follows."""
    line, col = seq.lc.item(index)
    start = int(line)
    dash = _find_dash(lines.lines[start], int(col))
    end = start + 1
    limit = int(seq.lc.item(index + 1)[0]) if index + 1 < len(seq) else len(lines.lines)
    while end < limit:
        if not lines.blank(end) and not lines.comment(end) and lines.indent(end) <= dash:
            break
        end += 1
    while end > start + 1 and (
        lines.blank(end - 1) or (lines.comment(end - 1) and lines.indent(end - 1) <= dash)
    ):
        end -= 1
    while start > 0 and lines.comment(start - 1) and lines.indent(start - 1) == dash:
        start -= 1
    return start, end, dash


def _find_dash(line: str, content_col: int) -> int:
    # ruamel records the item's content column; the dash sits before it (`- `, `-   `).
    at = line.rfind("-", 0, content_col)
    return at if at >= 0 else content_col


def _remove_block(text: str, seq: CommentedSeq, index: int) -> str:
    lines = _Lines.of(text)
    start, end, _ = _item_span(lines, seq, index)
    above = lines.lines[start - 1] if start else ""
    before_is_gap = not above.strip() or above.split(" #")[0].rstrip().endswith(":")
    if before_is_gap and end < len(lines.lines) and lines.blank(end):
        end += 1  # no double blank line, no blank line right under the section key
    return "".join(lines.lines[:start] + lines.lines[end:])


def _add_block(text: str, seq: CommentedSeq, entry: Mapping[str, Any]) -> str:
    lines = _Lines.of(text)
    last = len(seq) - 1
    _, end, dash = _item_span(lines, seq, last)
    gap = int(seq.lc.item(last)[1]) - dash
    if end > 0 and not lines.lines[end - 1].endswith("\n"):
        lines.lines[end - 1] += "\n"
    rendered = _block_entry(entry, dash, max(gap, 2))
    return "".join([*lines.lines[:end], rendered, *lines.lines[end:]])


def _add_under_key(text: str, data: CommentedMap, section: str, entry: Mapping[str, Any]) -> str:
    lines = _Lines.of(text)
    key_line = int(data.lc.key(section)[0])
    line = lines.lines[key_line]
    body, sep, comment = line.partition(" #")
    head = body.rstrip("\n").rstrip()
    for token in ("~", "null", "Null", "NULL", "[]"):
        if head.endswith(f": {token}"):  # an explicit empty value gives way to the list
            cut = head[: -len(token)].rstrip()
            lines.lines[key_line] = cut + (f" #{comment.rstrip()}\n" if sep else "\n")
    dash, gap = _style(data, lines)
    dash = max(dash, lines.indent(key_line) + 2) if dash else lines.indent(key_line)
    rendered = _block_entry(entry, dash, gap)
    return "".join([*lines.lines[: key_line + 1], rendered, *lines.lines[key_line + 1 :]])


def _append_section(text: str, data: CommentedMap, section: str, entry: Mapping[str, Any]) -> str:
    dash, gap = _style(data, _Lines.of(text))
    out = text
    if out and not out.endswith("\n"):
        out += "\n"
    if out.strip() and not out.endswith("\n\n"):
        out += "\n"
    return out + f"{section}:\n" + _block_entry(entry, dash, gap)


# --------------------------------------------------------------------------- flow lists


def _flow_segments(text: str, open_at: int) -> tuple[list[tuple[int, int]], int]:
    """Top-level item spans inside the flow sequence whose `[` is at `open_at`, and the
    offset of its `]`. Quotes, nesting and comments are skipped over."""
    depth, i, start = 0, open_at, open_at + 1
    spans: list[tuple[int, int]] = []
    while i < len(text):
        c = text[i]
        if c in "'\"":
            i = _skip_quoted(text, i)
            continue
        if c == "#" and (i == 0 or text[i - 1] in " \t\n"):
            i = text.find("\n", i)
            i = len(text) if i < 0 else i
            continue
        if c in "[{":
            depth += 1
        elif c in "]}":
            depth -= 1
            if depth == 0:
                if text[start:i].strip():
                    spans.append((start, i))
                return spans, i
        elif c == "," and depth == 1:
            spans.append((start, i))
            start = i + 1
        i += 1
    raise ManifestEditError("unterminated flow sequence")


def _skip_quoted(text: str, i: int) -> int:
    quote, i = text[i], i + 1
    while i < len(text):
        if quote == "'" and text[i] == "'":
            if text[i + 1 : i + 2] == "'":
                i += 2
                continue
            return i + 1
        if quote == '"' and text[i] == "\\":
            i += 2
            continue
        if quote == '"' and text[i] == '"':
            return i + 1
        i += 1
    return i


def _flow_open(text: str, data: CommentedMap, section: str) -> int:
    lines = _Lines.of(text)
    line, col = data.lc.value(section)
    at = lines.offset(int(line), int(col))
    bracket = text.find("[", at)
    if bracket < 0:
        raise ManifestEditError(f"cannot find the `[` of `{section}`")
    return bracket


def _add_flow(text: str, data: CommentedMap, section: str, entry: Mapping[str, Any]) -> str:
    open_at = _flow_open(text, data, section)
    spans, close = _flow_segments(text, open_at)
    item = _flow_entry(entry)
    if not spans:
        return text[: open_at + 1] + item + text[close:]
    last_start, last_end = spans[-1]
    segment = text[last_start:last_end]
    item_col = last_start + _leading(_strip_comments(segment))
    multiline = "\n" in text[last_start:item_col]
    line_start = text.rfind("\n", 0, item_col) + 1
    gap = "\n" + " " * (item_col - line_start) if multiline else " "
    if text[last_end] == ",":  # a trailing comma: the new item goes after it, and keeps one
        return text[: last_end + 1] + gap + item + "," + text[last_end + 1 :]
    content_end = last_start + len(segment.rstrip())
    return text[:content_end] + "," + gap + item + text[content_end:]


def _strip_comments(segment: str) -> str:
    """The segment with whole-line and end-of-line comments blanked (offsets kept)."""
    out = []
    for line in segment.split("\n"):
        at = line.find("#")
        out.append(line if at < 0 else line[:at] + " " * (len(line) - at))
    return "\n".join(out)


def _leading(segment: str) -> int:
    return len(segment) - len(segment.lstrip())


def _remove_flow(text: str, data: CommentedMap, section: str, index: int) -> str:
    open_at = _flow_open(text, data, section)
    spans, close = _flow_segments(text, open_at)
    if len(spans) == 1:
        return text[: open_at + 1] + text[close:]
    start, end = spans[index]
    if index + 1 < len(spans):
        # Drop this item and its comma; the next item takes over this one's leading space.
        next_start = spans[index + 1][0]
        lead = text[start : start + _leading(text[start:end])]
        nxt = text[next_start : spans[index + 1][1]]
        first, newline, rest = nxt.partition("\n")
        if newline and (not first.strip() or first.strip().startswith("#")):
            nxt = rest  # the removed item's own end-of-line comment goes with it
        return text[:start] + lead + nxt.lstrip() + text[spans[index + 1][1] :]
    prev_end = spans[index - 1][1]  # the comma before the last item goes with it
    tail = text[start:end]
    return text[:prev_end] + tail[len(tail.rstrip()) :] + text[end:]
