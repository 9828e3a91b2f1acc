"""Errors of the WebUI integration. Messages never carry the WebUI password."""

from __future__ import annotations

from provision.errors import SdprovError


class WebuiError(SdprovError):
    """WebUI could not be reached, refused us, or answered something we cannot use (exit 1)."""


class WebuiAuthError(WebuiError):
    def __init__(self, url: str) -> None:
        super().__init__(
            f"WebUI at {url} refused the request (HTTP 401): it runs with --api-auth",
            hint="pass the same user:password as its --api-auth (--webui-auth, or the "
            "SDPROV_WEBUI_AUTH environment variable)",
        )


class CacheBusyError(WebuiError):
    """Refusal to write `cache.json` while a WebUI that owns it (≤1.8) may be running."""

    def __init__(self, cache_file: str, why: str) -> None:
        super().__init__(
            f"not writing {cache_file}: {why}. A1111 ≤1.8 keeps cache.json in memory and "
            "rewrites the whole file after its next hash, so entries written now would be lost",
            hint="stop WebUI and run seed-cache again (seed before WebUI starts), or pass "
            "--force if you know this WebUI is 1.9+ or uses another data dir",
        )
