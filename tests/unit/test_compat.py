"""The lock-time base-model check reports each problem at its own entry's position."""

from __future__ import annotations

from provision.kinds import Family, Kind
from provision.lock.compat import compat_check
from provision.lock.lockfile import LockEntry
from provision.manifest.parse import parse_manifest
from provision.sources.locked import UrlSource

MANIFEST = b"""\
checkpoints:
  - url: https://example.org/xl.safetensors
    sha256: a111111111111111111111111111111111111111111111111111111111111111
loras:
  - url: https://example.org/a/detail.safetensors
    sha256: a222222222222222222222222222222222222222222222222222222222222222
embeddings:
  - url: https://example.org/b/detail.safetensors
    sha256: a333333333333333333333333333333333333333333333333333333333333333
"""


def _entry(kind: Kind, name: str, base: Family, sha: str) -> LockEntry:
    return LockEntry(
        name=name,
        kind=kind,
        path=f"{kind.folder}/{name}.safetensors",
        size=1,
        sha256=sha * 64,
        base=base,
        format="safetensors",
        source=UrlSource(url=f"https://example.org/{name}.safetensors"),
        entry_digest="d" * 64,
    )


def test_problem_is_reported_at_its_own_entry_when_names_repeat() -> None:
    manifest = parse_manifest(MANIFEST, "models.yaml")
    # The LoRA (line 5) is SD1 and does not fit the SDXL checkpoint; the embedding of the same
    # name (line 8) is SDXL and fits. Keyed by name, the problem landed on line 8.
    entries = [
        _entry(Kind.CHECKPOINT, "xl", Family.SDXL, "1"),
        _entry(Kind.LORA, "detail", Family.SD1, "2"),
        _entry(Kind.EMBEDDING, "detail", Family.SDXL, "3"),
    ]
    problems = compat_check(list(zip(manifest.specs, entries, strict=True)))
    assert [(spec.location.line, spec.kind) for spec, _ in problems] == [(5, Kind.LORA)]
    assert "matches no checkpoint" in problems[0][1]
