"""Where the locked bytes come from, as the lockfile records it: one frozen dataclass per source.

`from_raw` validates the on-disk shape and names the bad field, so a hand-edited or truncated
lock is a clear exit-2 error when it is read, never a KeyError at sync. `RawFields` is the
small validating reader the lockfile uses for its own fields too.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Final, NoReturn

from provision.errors import LockfileError

_COMMIT: Final = re.compile(r"[0-9a-f]{40}")


class RawFields:
    """Typed access to one JSON object of the lock; every failure names `where` and the field."""

    def __init__(self, raw: object, where: str, prefix: str = "") -> None:
        self.where = where
        self.prefix = prefix
        if not isinstance(raw, Mapping):
            self._fail_at(prefix.rstrip(".") or "(entry)", f"must be an object, got {_kind(raw)}")
        self.raw: Mapping[str, Any] = raw

    def _fail_at(self, field: str, problem: str) -> NoReturn:
        raise LockfileError(
            f"{self.where}: {field}: {problem}", hint="regenerate it with `sdprov lock`"
        )

    def fail(self, key: str, problem: str) -> NoReturn:
        self._fail_at(f"{self.prefix}{key}", problem)

    def _get(self, key: str) -> Any:
        if key not in self.raw:
            self.fail(key, "missing")
        return self.raw[key]

    def req_int(self, key: str, *, minimum: int = 0) -> int:
        value = self._get(key)
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            self.fail(key, f"must be an integer ≥ {minimum}, got {_show(value)}")
        return value

    def req_str(self, key: str, *, pattern: re.Pattern[str] | None = None) -> str:
        value = self._get(key)
        if not isinstance(value, str) or not value:
            self.fail(key, f"must be a non-empty string, got {_show(value)}")
        if pattern is not None and not pattern.fullmatch(value):
            self.fail(key, f"{_show(value)} does not match {pattern.pattern}")
        return value

    def opt_str(self, key: str) -> str | None:
        value = self.raw.get(key)
        if value is not None and not isinstance(value, str):
            self.fail(key, f"must be a string or null, got {_show(value)}")
        return value

    def opt_bool(self, key: str) -> bool:
        value = self.raw.get(key, False)
        if not isinstance(value, bool):
            self.fail(key, f"must be true or false, got {_show(value)}")
        return value

    def opt_str_list(self, key: str) -> tuple[str, ...]:
        value = self.raw.get(key, [])
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            self.fail(key, f"must be a list of strings, got {_show(value)}")
        return tuple(value)

    def opt_object(self, key: str) -> RawFields | None:
        value = self.raw.get(key)
        return None if value is None else RawFields(value, self.where, f"{self.prefix}{key}.")

    def unknown(self, known: frozenset[str]) -> None:
        extra = sorted(set(self.raw) - known)
        if extra:
            where = self.prefix.rstrip(".") or "(entry)"
            self._fail_at(
                where, f"unknown field {_show(extra[0])} (known: {', '.join(sorted(known))})"
            )


def _kind(value: object) -> str:
    return "null" if value is None else type(value).__name__


def _show(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 60 else f"{text[:57]}..."


@dataclass(frozen=True, slots=True, kw_only=True)
class CivitaiSource:
    type: ClassVar[str] = "civitai"
    model_id: int
    version_id: int
    file_id: int
    air: str
    model_type: str | None = None  # Civitai's label ("LORA", "Checkpoint", …)
    model_name: str | None = None
    version_name: str | None = None
    file_name: str | None = None
    base_model: str | None = None  # Civitai's base-model label ("SDXL 1.0", "Pony", …)

    def to_raw(self) -> dict[str, Any]:
        raw: dict[str, Any] = {
            "type": self.type,
            "model_id": self.model_id,
            "version_id": self.version_id,
            "file_id": self.file_id,
            "air": self.air,
        }
        for key in _CIVITAI_OPTIONAL:
            if (value := getattr(self, key)) is not None:
                raw[key] = value
        return raw

    @classmethod
    def from_raw(cls, raw: object, where: str) -> CivitaiSource:
        f = RawFields(raw, where, "source.")
        f.unknown(
            frozenset({"type", "model_id", "version_id", "file_id", "air"}) | _CIVITAI_OPTIONAL
        )
        return cls(
            model_id=f.req_int("model_id", minimum=1),
            version_id=f.req_int("version_id", minimum=1),
            file_id=f.req_int("file_id", minimum=1),
            air=f.req_str("air"),
            **{key: f.opt_str(key) for key in sorted(_CIVITAI_OPTIONAL)},
        )


_CIVITAI_REQUIRED: Final = frozenset({"type", "model_id", "version_id", "file_id", "air"})
_CIVITAI_OPTIONAL: Final = frozenset(
    {"model_type", "model_name", "version_name", "file_name", "base_model"}
)


@dataclass(frozen=True, slots=True, kw_only=True)
class HfSource:
    type: ClassVar[str] = "hf"
    repo: str
    path: str
    revision: str  # what the manifest asked for ("main" when it named none)
    commit: str  # what that resolved to: the bytes are fetched from this commit

    def to_raw(self) -> dict[str, Any]:
        return {
            "type": self.type,
            "repo": self.repo,
            "path": self.path,
            "revision": self.revision,
            "commit": self.commit,
        }

    @classmethod
    def from_raw(cls, raw: object, where: str) -> HfSource:
        f = RawFields(raw, where, "source.")
        f.unknown(frozenset({"type", "repo", "path", "revision", "commit"}))
        return cls(
            repo=f.req_str("repo"),
            path=f.req_str("path"),
            revision=f.req_str("revision"),
            commit=f.req_str("commit", pattern=_COMMIT),
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class UrlSource:
    type: ClassVar[str] = "url"
    url: str

    def to_raw(self) -> dict[str, Any]:
        return {"type": self.type, "url": self.url}

    @classmethod
    def from_raw(cls, raw: object, where: str) -> UrlSource:
        f = RawFields(raw, where, "source.")
        f.unknown(frozenset({"type", "url"}))
        url = f.req_str("url")
        if not url.startswith(("https://", "http://")):
            f.fail("url", f"must be an http(s) URL, got {_show(url)}")
        return cls(url=url)


LockedSource = CivitaiSource | HfSource | UrlSource
_VARIANTS: Final[dict[str, type[CivitaiSource] | type[HfSource] | type[UrlSource]]] = {
    v.type: v for v in (CivitaiSource, HfSource, UrlSource)
}


def source_from_raw(raw: object, where: str) -> LockedSource:
    """The `source` object of a lock entry; `where` names the file and the entry."""
    f = RawFields(raw, where, "source.")
    kind = f.raw.get("type")
    variant = _VARIANTS.get(kind) if isinstance(kind, str) else None
    if variant is None:
        f.fail("type", f"unknown source type {_show(kind)} (known: {', '.join(_VARIANTS)})")
    return variant.from_raw(raw, where)
