"""The manifest: what models a WebUI should have, as a team writes it in YAML.

Loading collects every problem at once, each with `file:line:column`, the field and what is
allowed; it never raises anything but `ManifestError`. Structure is checked by the JSON Schema
that ships with the package (editors use the same file); meaning (references, paths,
collisions) is checked here.
"""

from __future__ import annotations

import difflib
import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any, Final

from provision.errors import Location, ManifestError, ManifestProblem
from provision.kinds import KIND_SECTIONS, NAMED_BY_BASENAME, SECTION_KINDS, Family, Kind
from provision.manifest import DEFAULT_MANIFEST
from provision.manifest.cards import CARD_KEY_KINDS, CardOptions
from provision.manifest.filenames import (
    name_problem,
    path_problem,
    source_name_problem,
    subfolder_problem,
)
from provision.manifest.refs import (
    CivitaiRef,
    HfRef,
    SourceRef,
    UrlRef,
    parse_civitai,
    parse_hf,
    parse_url,
)
from provision.manifest.yamlpos import PathKey, Positions, load_yaml_with_positions

if TYPE_CHECKING:
    from jsonschema import ValidationError

SOURCE_KEYS: Final = ("civitai", "hf", "url")
BASE_CHECK_MODES: Final = ("error", "warn", "off")
# ~20,000 entries. PyYAML reads about 1 MB/s; past this a file is a mistake or an attack.
MAX_MANIFEST_BYTES: Final = 2 * 1024 * 1024


@dataclass(frozen=True, slots=True, kw_only=True)
class FileSelector:
    format: str | None = None
    size: str | None = None
    fp: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class ModelSpec:
    """One manifest entry, validated."""

    kind: Kind
    index: int
    source: SourceRef
    name: str | None
    subfolder: str | None
    sha256: str | None
    allow_pickle: bool
    base: Family | None
    file_id: int | None
    file: FileSelector | None
    location: Location
    digest: str  # sha256 of the entry's canonical JSON: changes iff the entry changed
    card: CardOptions = field(default_factory=CardOptions)

    @property
    def pinned(self) -> bool:
        return self.source.pinned

    @property
    def label(self) -> str:
        """How messages name this entry: `loras[2]` plus its name when it has one."""
        where = f"{self.kind.section}[{self.index}]"
        return f"{where} ({self.name})" if self.name else where

    def folder(self) -> PurePosixPath:
        base = PurePosixPath(self.kind.folder)
        return base / self.subfolder if self.subfolder else base


@dataclass(frozen=True, slots=True, kw_only=True)
class Manifest:
    path: Path
    sha256: str
    specs: tuple[ModelSpec, ...]
    base_check: str = "error"
    includes: tuple[tuple[str, Location], ...] = ()  # `include:` targets, as written


@cache
def manifest_schema() -> dict[str, Any]:
    text = resources.files("provision.manifest").joinpath("schema.json").read_text("utf-8")
    schema: dict[str, Any] = json.loads(text)
    return schema


def load_manifest(path: Path) -> Manifest:
    try:
        with path.open("rb") as fh:
            raw = fh.read(MAX_MANIFEST_BYTES + 1)  # not all of /dev/zero
    except FileNotFoundError as exc:
        problem = ManifestProblem(Location(str(path), 1, 1), "manifest not found")
        raise ManifestError([problem]) from exc
    except OSError as exc:  # a directory, no permission
        message = f"cannot read the manifest: {exc.strerror or exc}"
        raise ManifestError([ManifestProblem(Location(str(path), 1, 1), message)]) from exc
    manifest = parse_manifest(raw, str(path))
    if manifest.includes:
        from provision.manifest.includes import resolve_includes

        return resolve_includes(manifest)
    return manifest


def parse_manifest(raw: bytes, file: str) -> Manifest:
    if len(raw) > MAX_MANIFEST_BYTES:
        message = f"the manifest is over {MAX_MANIFEST_BYTES} bytes; a manifest is a few KB"
        raise ManifestError([ManifestProblem(Location(file, 1, 1), message)])
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ManifestError(
            [ManifestProblem(Location(file, 1, 1), f"not UTF-8 text: {exc.reason}")]
        ) from exc
    data, positions, problems = load_yaml_with_positions(text, file)
    if data is None:
        if problems:  # a syntax error: nothing below it can be trusted
            raise ManifestError(problems)
        data = {}
    schema_problems, broken = _schema_problems(data, positions)
    problems.extend(schema_problems)
    specs: list[ModelSpec] = []
    if isinstance(data, dict):
        # Entries that passed the schema are checked for meaning too, so one run shows all.
        for kind, index, entry in _entries(data, broken):
            spec = _to_spec(kind, index, entry, positions, problems)
            if spec is not None:
                specs.append(spec)
        problems.extend(_collisions(specs))
    if problems:
        raise ManifestError(problems)
    options = data.get("options") or {}
    return Manifest(
        path=Path(file),
        sha256=hashlib.sha256(raw).hexdigest(),
        specs=tuple(specs),
        base_check=str(options.get("base_check", "error")),
        includes=tuple(
            (str(target), positions.of(("include", i)))
            for i, target in enumerate(data.get("include") or [])
        ),
    )


def _entries(
    data: dict[str, Any], broken: set[PathKey]
) -> Iterator[tuple[Kind, int, dict[str, Any]]]:
    for kind in Kind:
        section = data.get(kind.section)
        if not isinstance(section, list) or (kind.section,) in broken:
            continue
        for index, entry in enumerate(section):
            if (kind.section, index) not in broken:
                yield kind, index, entry


def _schema_problems(data: Any, positions: Positions) -> tuple[list[ManifestProblem], set[PathKey]]:
    """Schema problems, and the (section,) / (section, index) paths they make unusable."""
    if not isinstance(data, dict):
        where = positions.of(())
        sections = ", ".join(KIND_SECTIONS.values())
        message = f"the manifest must be a mapping with sections {sections}"
        return [ManifestProblem(where, message)], {()}
    import jsonschema  # here, not at the top: sync and status rarely parse a manifest

    validator = jsonschema.Draft202012Validator(manifest_schema())
    problems: list[ManifestProblem] = []
    broken: set[PathKey] = set()
    for error in validator.iter_errors(data):
        problems.extend(_translate(error, positions))
        path = tuple(error.absolute_path)
        broken.add(path[:2] if len(path) >= 2 else path[:1])
    return problems, broken


def _field_name(path: PathKey) -> str:
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else part)
    return text or "manifest"


def _translate(error: ValidationError, positions: Positions) -> list[ManifestProblem]:
    path: PathKey = tuple(error.absolute_path)
    field = _field_name(path)
    where = positions.of(path)
    schema = error.schema if isinstance(error.schema, dict) else {}
    if error.validator == "additionalProperties":
        allowed = sorted(schema.get("properties", {}))
        out = []
        instance = error.instance if isinstance(error.instance, dict) else {}
        for key in sorted(set(instance) - set(allowed)):
            hint = difflib.get_close_matches(key, allowed, n=1)
            did_you_mean = f" (did you mean {hint[0]!r}?)" if hint else ""
            out.append(
                ManifestProblem(
                    positions.of((*path, key), key=True),
                    f"unknown key {key!r} in {field}{did_you_mean}; allowed: {', '.join(allowed)}",
                )
            )
        return out
    if error.validator == "oneOf" and path and path[0] in SECTION_KINDS:
        return _source_problem(error.instance, path, field, positions)
    if error.validator == "type":
        expected = error.validator_value
        names = expected if isinstance(expected, list) else [expected]
        wanted = " or ".join("a list" if n == "array" else f"a {n}" for n in names if n != "null")
        return [
            ManifestProblem(where, f"{field} must be {wanted}, got {_describe(error.instance)}")
        ]
    if error.validator == "enum":
        choices = ", ".join(str(v) for v in schema.get("enum", []))
        return [
            ManifestProblem(
                where, f"{field}: {error.instance!r} is not allowed; allowed: {choices}"
            )
        ]
    if error.validator == "pattern" and path and path[-1] == "sha256":
        return [
            ManifestProblem(
                where, f"{field} must be 64 hex digits (a sha256), got {error.instance!r}"
            )
        ]
    if error.validator == "pattern" and path and path[-1] == "url":
        return [ManifestProblem(where, f"{field} must be an http(s) URL, got {error.instance!r}")]
    return [ManifestProblem(where, f"{field}: {error.message}")]


def _source_problem(
    instance: Any, path: PathKey, field: str, positions: Positions
) -> list[ManifestProblem]:
    if not isinstance(instance, dict):
        return []  # the type error for this entry is reported on its own
    present = [k for k in SOURCE_KEYS if k in instance]
    if not present:
        return [
            ManifestProblem(
                positions.of(path),
                f"{field} needs exactly one source: `civitai:`, `hf:` or `url:`",
            )
        ]
    return [
        ManifestProblem(
            positions.of((*path, present[1]), key=True),
            f"{field} has two sources ({', '.join(present)}); an entry has exactly one of "
            "`civitai:`, `hf:` or `url:`",
        )
    ]


def _describe(value: Any) -> str:
    if value is None:
        return "nothing (null)"
    kind = {bool: "a boolean", int: "a number", float: "a number", str: "a string",
            list: "a list", dict: "a mapping"}.get(type(value), type(value).__name__)  # fmt: skip
    return f"{kind} ({json.dumps(value)[:40]})" if not isinstance(value, (dict, list)) else kind


def _to_spec(
    kind: Kind, index: int, entry: dict[str, Any], positions: Positions,
    problems: list[ManifestProblem],
) -> ModelSpec | None:  # fmt: skip
    path: PathKey = (kind.section, index)
    field = _field_name(path)
    count_before = len(problems)

    def fail(key: str, message: str) -> None:
        problems.append(ManifestProblem(positions.of((*path, key)), f"{field}.{key}: {message}"))

    source: SourceRef | None = None
    try:
        if "civitai" in entry:
            source = parse_civitai(entry["civitai"])
        elif "hf" in entry:
            source = parse_hf(entry["hf"])
        else:
            source = parse_url(entry["url"])
    except ValueError as exc:
        fail(next(k for k in SOURCE_KEYS if k in entry), str(exc))
    if isinstance(source, UrlRef) and "sha256" not in entry:
        fail("url", "a `url:` source needs `sha256:` (the only way to know the bytes are right)")
    if not isinstance(source, CivitaiRef):
        for key in ("file", "file_id"):
            if key in entry:
                fail(key, "only applies to `civitai:` sources")
    for key, kinds, why in CARD_KEY_KINDS:
        if key in entry and kind not in kinds:
            fail(key, why)
    conflicting_file_id = "file_id" in entry and entry["file_id"] != getattr(
        source, "file_id", None
    )
    if isinstance(source, CivitaiRef) and source.file_id and conflicting_file_id:
        fail("file_id", f"conflicts with the file id {source.file_id} in the reference")
    name = entry.get("name")
    if name is not None and (message := name_problem(name)):
        fail("name", message)
    if name is None and (message := source_name_problem(source)):
        fail(next(k for k in SOURCE_KEYS if k in entry), message)
    subfolder = entry.get("subfolder")
    if subfolder is not None and (message := subfolder_problem(subfolder)):
        fail("subfolder", message)
    elif message := path_problem(kind, subfolder, name if isinstance(name, str) else None):
        fail("subfolder" if subfolder else "name", message)
    if len(problems) > count_before or source is None:
        return None
    selector = entry.get("file")
    file_id = int(entry["file_id"]) if "file_id" in entry else None  # 5.0 passes the schema
    if isinstance(source, CivitaiRef) and source.file_id and file_id is None:
        file_id = source.file_id
    canonical = json.dumps({"kind": kind.value, **entry}, sort_keys=True, separators=(",", ":"))
    return ModelSpec(
        kind=kind,
        index=index,
        source=source,
        name=name,
        subfolder=subfolder.strip("/") if subfolder else None,
        sha256=entry["sha256"].lower() if "sha256" in entry else None,
        allow_pickle=bool(entry.get("allow_pickle", False)),
        base=Family(entry["base"]) if "base" in entry else None,
        file_id=file_id,
        file=FileSelector(**selector) if selector else None,
        location=positions.of(path),
        digest=hashlib.sha256(canonical.encode()).hexdigest(),
        card=CardOptions.from_entry(entry),
    )


def _collisions(specs: list[ModelSpec]) -> list[ManifestProblem]:
    """Entries whose explicit names collide; names from sources are checked at lock time."""
    problems: list[ManifestProblem] = []
    seen: dict[tuple[Kind, str], ModelSpec] = {}
    for spec in specs:
        if spec.name is None:
            continue
        key = (spec.kind, spec.name.lower()) if spec.kind in NAMED_BY_BASENAME else (
            spec.kind, f"{spec.subfolder or ''}/{spec.name}".lower())  # fmt: skip
        if key in seen:
            first = seen[key]
            problems.append(
                ManifestProblem(
                    spec.location,
                    f"{spec.label}: name {spec.name!r} is already used by {first.label} "
                    f"(line {first.location.line}); "
                    + ("WebUI names this kind by file name alone, so one would hide the other"
                       if spec.kind in NAMED_BY_BASENAME else "both would be the same file"),
                )
            )  # fmt: skip
        else:
            seen[key] = spec
    return problems


__all__ = [
    "DEFAULT_MANIFEST",
    "FileSelector",
    "HfRef",
    "Manifest",
    "ModelSpec",
    "load_manifest",
    "parse_manifest",
]
