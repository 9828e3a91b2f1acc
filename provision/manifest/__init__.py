"""The manifest: what a user asks for (parse.py reads and validates it)."""

from __future__ import annotations

from pathlib import Path
from typing import Final

# Here rather than in parse.py so the CLI's help text can name it without importing YAML and
# JSON Schema (start-up time).
DEFAULT_MANIFEST: Final = Path("manifests/models.yaml")
