"""Which manifests a repository has, for `sdprov lock --all`.

Every manifest a Pulumi stack selects (`sdprov:manifest` in the stack files under
Pulumi.yaml's `stackConfigDir`), plus every `manifests/*.yaml` that no other manifest
includes: a team base that only exists to be included gets no lock of its own.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from provision.errors import ManifestError, UsageError
from provision.manifest.parse import DEFAULT_MANIFEST


def repo_manifests(root: Path) -> list[Path]:
    from provision.manifest.includes import included_files

    candidates = dict.fromkeys(_stack_manifests(root))
    folder = root / DEFAULT_MANIFEST.parent
    for path in sorted([*folder.glob("*.yaml"), *folder.glob("*.yml")]):
        candidates.setdefault(path.relative_to(root), None)
    included: set[Path] = set()
    for path in candidates:
        try:
            included.update(p.resolve() for p in included_files(root / path))
        except (ManifestError, OSError):
            continue  # locking it reports the problem at its file:line
    found = [p for p in candidates if (root / p).resolve() not in included]
    if not found:
        raise UsageError(
            f"no manifest found in {folder} or in the Pulumi stacks",
            hint="create manifests/models.yaml or give a MANIFEST",
        )
    return found


def _stack_manifests(root: Path) -> list[Path]:
    project = _read_yaml(root / "Pulumi.yaml")
    stack_dir = root / str(project.get("stackConfigDir") or ".")
    found: list[Path] = []
    for stack in sorted(stack_dir.glob("Pulumi.*.yaml")):
        config = _read_yaml(stack).get("config") or {}
        manifest = config.get("sdprov:manifest") if isinstance(config, dict) else None
        if isinstance(manifest, str) and manifest:
            found.append(Path(manifest))
        else:
            found.append(DEFAULT_MANIFEST)  # the stack's default (provision/infra/config.py)
    return list(dict.fromkeys(found))


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, yaml.YAMLError, UnicodeDecodeError) as exc:
        raise UsageError(f"{path}: cannot read it ({exc})") from exc
    return data if isinstance(data, dict) else {}
