"""The package is layered: each stage imports only from the stages below it.

A reader finds each concern in a folder named for it, and a change low in the stack (the
network layer, the lockfile) never drags in a command or the cloud. This test walks every
module's imports (lazy ones inside functions included) and fails on any import that runs
back up the layers.
"""

from __future__ import annotations

import ast
from pathlib import Path

import provision

PACKAGE = Path(provision.__file__).parent

# Lowest first. A module may import its own layer and any layer before it.
LAYERS: tuple[frozenset[str], ...] = (
    frozenset({"__init__", "errors", "kinds", "console"}),
    frozenset({"net"}),
    frozenset({"inspection"}),
    frozenset({"manifest"}),
    frozenset({"sources"}),
    frozenset({"lock"}),
    frozenset({"importers"}),
    frozenset({"sync"}),
    frozenset({"mirror"}),
    frozenset({"webui"}),
    frozenset({"cloudsync"}),
    frozenset({"commands"}),
    frozenset({"cli", "infra"}),
)


def layer_of(part: str) -> int:
    for rank, names in enumerate(LAYERS):
        if part in names:
            return rank
    raise AssertionError(f"provision.{part} belongs to no layer: add it to LAYERS")


def top_part(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def is_submodule(name: str) -> bool:
    return (PACKAGE / f"{name}.py").exists() or (PACKAGE / name / "__init__.py").exists()


def imported_modules(path: Path) -> list[tuple[int, str]]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module == "provision":
                # `from provision import X`: a submodule, or a name of the package itself
                found += [
                    (node.lineno, f"provision.{a.name}" if is_submodule(a.name) else "provision")
                    for a in node.names
                ]
            elif node.module.startswith("provision."):
                found.append((node.lineno, node.module))
        elif isinstance(node, ast.Import):
            found += [
                (node.lineno, alias.name)
                for alias in node.names
                if alias.name.startswith("provision.")
            ]
    return found


def test_every_module_has_a_layer() -> None:
    for path in PACKAGE.iterdir():
        if path.name.startswith((".", "_")) and path.name != "__init__.py":
            continue
        if path.suffix == ".py" or (path.is_dir() and (path / "__init__.py").exists()):
            layer_of(path.stem)


def test_no_import_runs_back_up_the_layers() -> None:
    violations: list[str] = []
    modules = sorted(PACKAGE.rglob("*.py"))
    assert len(modules) > 40
    for path in modules:
        rel = path.relative_to(PACKAGE.parent).with_suffix("")
        module = ".".join(rel.parts)
        own = layer_of(top_part(module))
        for line, target in imported_modules(path):
            if layer_of(top_part(target)) > own:
                violations.append(f"{path.relative_to(PACKAGE.parent)}:{line}: imports {target}")
    assert not violations, "imports that run back up the layers:\n" + "\n".join(violations)
