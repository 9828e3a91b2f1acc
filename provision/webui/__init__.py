"""WebUI integration: launch flags, API client, list verification, hash-cache seeding.

Entry points other parts call (keep these stable; see docs/decisions.md "WebUI integration"):

- `launch.webui_args(models_root, data_dir, ...)`: the command-line flags for A1111/Forge.
- `verify.refresh_and_verify(lock, models_root, url, auth)`: after `sync --webui`.
- `verify.status_rows(lock, models_root, url, auth)`: for `status --webui` (read-only).
- `hashcache.seed_cache(lock, models_root, data_dir, ...)`: pre-seed WebUI's sha256 cache.
"""

from __future__ import annotations

from provision.webui.errors import WebuiError

__all__ = ["WebuiError"]
