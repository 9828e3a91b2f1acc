"""`sdprov lock`: resolve a manifest into a lockfile, touching only what changed.

An entry whose manifest text is unchanged keeps its locked resolution (no network); pinned
entries never move; `--upgrade` re-resolves unpinned ones. Every problem (bad extension,
pickle without `allow_pickle`, kind mismatch, colliding file names) is reported at once with
the entry's position; nothing is written unless every entry resolved.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import Final

from provision.errors import (
    ManifestError,
    ManifestProblem,
    ResolveFailed,
    UsageError,
)
from provision.inspection import FileReport, describe_report
from provision.kinds import (
    DECLARED_ALSO,
    NAMED_BY_BASENAME,
    PICKLE_EXTENSIONS,
    Family,
    Kind,
    accepts,
    file_format,
)
from provision.lock import names
from provision.lock.fetch import Resolution, resolve_all
from provision.lock.lockfile import CivitaiScan, Inspected, LockEntry, Lockfile
from provision.manifest.parse import Manifest, ModelSpec
from provision.sources import ResolvedFile, SourceContext
from provision.sources.locked import CivitaiSource, RawFields

# Resolutions in flight, and the most requests one host sees at once: 200 Civitai entries at
# 50 ms a request wait 200 x 2 x 50 ms / 16 = 1.25 s (docs/decisions.md, Performance: lock).
DEFAULT_JOBS: Final = 16

# Lock-time compatibility check hook (see provision.inspection): returns problems as text.
CompatCheck = Callable[[list[tuple[ModelSpec, LockEntry]]], list[tuple[ModelSpec, str]]]


@dataclass(slots=True, kw_only=True)
class LockOutcome:
    lockfile: Lockfile
    resolved: list[str] = field(default_factory=list)
    reused: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def is_fresh(manifest: Manifest, lock: Lockfile | None) -> bool:
    return lock is not None and lock.manifest_sha256 == manifest.sha256


def lock_manifest(
    manifest: Manifest,
    previous: Lockfile | None,
    ctx: SourceContext,
    *,
    upgrade: Collection[str] | None = None,
    jobs: int = DEFAULT_JOBS,
    compat_check: CompatCheck | None = None,
) -> LockOutcome:
    """`upgrade=None`: no upgrade; empty: every unpinned entry; names: those entries."""
    old = {e.entry_digest: e for e in previous.models} if previous else {}
    if upgrade:
        _check_upgrade_names(manifest, old, upgrade)
    todo: list[int] = []
    kept: dict[int, LockEntry] = {}
    for i, spec in enumerate(manifest.specs):
        entry = old.get(spec.digest)
        if entry is not None and not _wants_upgrade(spec, entry, upgrade):
            kept[i] = entry
        else:
            todo.append(i)
    outcome_resolved: dict[int, Resolution] = {}
    failures: list[str] = []
    if todo:
        for i, outcome in resolve_all(manifest, todo, ctx, jobs).items():
            if isinstance(outcome, Resolution):
                outcome_resolved[i] = outcome
                continue
            label, text = manifest.specs[i].label, outcome.render()
            failures.append(text if text.startswith(label) else f"{label}: {text}")
    if failures:
        raise ResolveFailed(failures)
    problems: list[ManifestProblem] = []
    entries: list[LockEntry] = []
    for i, spec in enumerate(manifest.specs):
        if i in kept:
            entries.append(kept[i])
            continue
        entry = _to_entry(spec, outcome_resolved[i], problems)
        if entry is not None:
            entries.append(entry)
    problems.extend(_path_collisions(manifest, entries))
    warnings: list[str] = []
    if not problems and compat_check is not None and manifest.base_check != "off":
        # Without problems every spec produced its entry, in manifest order.
        pairs = list(zip(manifest.specs, entries, strict=True))
        for spec, message in compat_check(pairs):
            if manifest.base_check == "warn":
                warnings.append(f"{spec.location}: {message}")
            else:
                problems.append(ManifestProblem(spec.location, message))
    if problems:
        raise ManifestError(problems)
    lockfile = Lockfile(manifest_sha256=manifest.sha256, models=tuple(entries))
    return LockOutcome(
        lockfile=lockfile,
        resolved=[entries[i].path for i in sorted(outcome_resolved)],
        reused=[kept[i].path for i in sorted(kept)],
        warnings=warnings,
    )


def _wants_upgrade(spec: ModelSpec, entry: LockEntry, upgrade: Collection[str] | None) -> bool:
    if upgrade is None or spec.pinned:
        return False
    return not upgrade or entry.name in upgrade or (spec.name is not None and spec.name in upgrade)


def _check_upgrade_names(
    manifest: Manifest, old: dict[str, LockEntry], upgrade: Collection[str]
) -> None:
    known = {e.name for e in old.values()} | {s.name for s in manifest.specs if s.name}
    unknown = sorted(set(upgrade) - known)
    if unknown:
        raise UsageError(
            f"--upgrade: no locked model named {', '.join(unknown)}",
            hint=f"names in the lock: {', '.join(sorted(known)) or '(none)'}",
        )
    pinned = sorted(
        s.name or old[s.digest].name
        for s in manifest.specs
        if s.pinned and s.digest in old and (s.name or old[s.digest].name) in upgrade
    )
    if pinned:
        raise UsageError(
            f"--upgrade: {', '.join(pinned)} pinned to a version in the manifest; "
            "edit the manifest to move it"
        )


def _to_entry(
    spec: ModelSpec, resolution: Resolution, problems: list[ManifestProblem]
) -> LockEntry | None:
    def problem(message: str) -> None:
        problems.append(ManifestProblem(spec.location, f"{spec.label}: {message}"))

    resolved, report = resolution.file, resolution.report

    source_name = PurePosixPath(resolved.file_name)
    ext = source_name.suffix.lower()
    count = len(problems)
    if ext not in spec.kind.extensions:
        allowed = ", ".join(sorted(spec.kind.extensions))
        problem(
            f"the source file {resolved.file_name!r} has extension {ext or '(none)'!r}, which "
            f"WebUI does not load from {spec.kind.folder}/ (allowed: {allowed})"
        )
    if ext in PICKLE_EXTENSIONS and not spec.allow_pickle:
        problem(
            f"{resolved.file_name!r} is a pickle file, which can run code when loaded; "
            "prefer a .safetensors file, or set `allow_pickle: true` (it will be scanned)"
        )
    declared = resolved.declared_kind
    if declared is not None and declared not in (spec.kind, *DECLARED_ALSO.get(spec.kind, ())):
        problem(
            f"the source says this is a {declared.value} "
            f"({getattr(resolved.source, 'model_type', None)}), but it is listed under "
            f"`{spec.kind.section}`; move it to `{declared.section}`"
        )
    if spec.sha256 is not None and spec.sha256 != resolved.sha256:
        problem(
            f"the manifest says sha256 {spec.sha256} but the source has {resolved.sha256}; "
            "the source changed or the manifest is wrong"
        )
    if report is not None and not accepts(spec.kind, report.kind):
        problem(
            f"the file itself is {describe_report(report)}, not a {spec.kind.value} "
            f"(evidence: {'; '.join(report.evidence[1:3])}); "
            + (
                f"list it under `{Kind(report.kind).section}`"
                if report.kind in Kind.__members__.values()
                else f"WebUI does not load it from {spec.kind.folder}/"
            )
        )
    if len(problems) > count:
        return None
    stem = spec.name.removesuffix(ext) if spec.name else source_name.stem
    path = spec.folder() / f"{stem}{ext}"
    if message := names.target_problem(path, resolved, named=spec.name is not None):
        problem(message)
        return None
    # The family the file's tensors declare wins over the source's label; a `base:` in the
    # manifest wins over both (the user knows better, e.g. a merge our rules misread).
    file_family = _family_of(report)
    base = spec.base or file_family or resolved.base
    details = _details(resolved, spec.label)
    civitai_entry = isinstance(resolved.source, CivitaiSource)
    return LockEntry(
        name=stem,
        kind=spec.kind,
        path=path.as_posix(),
        size=resolved.size,
        sha256=resolved.sha256,
        base=base,
        format=file_format(resolved.file_name),
        source=resolved.source,
        entry_digest=spec.digest,
        allow_pickle=spec.allow_pickle,
        base_model=resolved.base_model,
        base_declared=spec.base is not None,
        autov2=details.opt_str("autov2"),
        trained_words=details.opt_str_list("trained_words"),
        civitai_scan=CivitaiScan.from_fields(scan)
        if (scan := details.opt_object("civitai_scan"))
        else None,
        inspected=None
        if report is None
        else Inspected(
            kind=report.kind,
            variant=report.variant,
            family=report.family,
            flags=tuple(report.flags),
        ),
        card=spec.card if civitai_entry else None,
        preview_url=choose_preview(resolved.images, spec.card.preview) if civitai_entry else None,
    )


def _details(resolved: ResolvedFile, label: str) -> RawFields:
    """The source's extra facts (AutoV2, trained words, scans), checked like a lock entry's."""
    return RawFields(resolved.extra, f"{label}: what the source reported")


# Civitai's own safe-for-work browsing levels: PG (1) and PG-13 (2). 0 means not rated yet.
SFW_LEVELS: Final = 1 | 2


def choose_preview(images: tuple[tuple[str, int, str], ...], mode: str) -> str | None:
    """The card's preview: the first still image the mode allows (the first is not always SFW)."""
    if mode == "none":
        return None
    for image_url, level, media in images:
        if media != "image":
            continue  # a video has no still frame to convert without a decoder
        if mode == "any" or (level and not level & ~SFW_LEVELS):
            return image_url
    return None


def _family_of(report: FileReport | None) -> Family | None:
    if report is None or report.family not in Family.__members__.values():
        return None
    return Family(report.family)


def _path_collisions(manifest: Manifest, entries: list[LockEntry]) -> list[ManifestProblem]:
    by_digest = {s.digest: s for s in manifest.specs}
    problems: list[ManifestProblem] = []
    seen_paths: dict[str, LockEntry] = {}
    seen_names: dict[tuple[str, str], LockEntry] = {}
    for entry in entries:
        spec = by_digest[entry.entry_digest]
        first = seen_paths.get(entry.path.lower())
        if first is None and entry.kind in NAMED_BY_BASENAME:
            first = seen_names.get((entry.kind.value, PurePosixPath(entry.path).name.lower()))
        if first is not None:
            other = by_digest[first.entry_digest]
            problems.append(
                ManifestProblem(
                    spec.location,
                    f"{spec.label}: resolves to {entry.path}, which collides with "
                    f"{other.label} ({first.path})"
                    + (
                        f"; WebUI names {entry.kind.value}s by file name alone"
                        if entry.kind in NAMED_BY_BASENAME
                        else ""
                    )
                    + "; give one of them another `name:`",
                )
            )
            continue
        seen_paths[entry.path.lower()] = entry
        seen_names[(entry.kind.value, PurePosixPath(entry.path).name.lower())] = entry
    return problems
