"""`oss://BUCKET[/PREFIX]` and the content-addressed key scheme inside it."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final

from provision.errors import UsageError

# OSS bucket names: 3-63 characters, lowercase letters, digits and hyphens, no edge hyphen.
_BUCKET: Final = re.compile(r"^[a-z0-9][a-z0-9-]{1,61}[a-z0-9]$")
_SHA256: Final = re.compile(r"^[0-9a-f]{64}$")
_CARD_NAME: Final = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


@dataclass(frozen=True, slots=True)
class MirrorLocation:
    bucket: str
    prefix: str = ""  # no leading or trailing slash

    @classmethod
    def parse(cls, text: str) -> MirrorLocation:
        if not text.startswith("oss://"):
            raise UsageError(
                f"--mirror {text!r}: expected oss://BUCKET[/PREFIX]",
                hint="e.g. --mirror oss://my-models/sdprov",
            )
        bucket, _, prefix = text.removeprefix("oss://").partition("/")
        if not _BUCKET.match(bucket):
            raise UsageError(
                f"--mirror {text!r}: {bucket!r} is not an OSS bucket name "
                "(3-63 lowercase letters, digits and hyphens)"
            )
        prefix = prefix.strip("/")
        if any(part in ("", ".", "..") for part in prefix.split("/")) and prefix:
            raise UsageError(f"--mirror {text!r}: the prefix has an empty, '.' or '..' segment")
        return cls(bucket=bucket, prefix=prefix)

    def __str__(self) -> str:
        return f"oss://{self.bucket}/{self.prefix}" if self.prefix else f"oss://{self.bucket}"

    def _key(self, rest: str) -> str:
        return f"{self.prefix}/{rest}" if self.prefix else rest

    def object_key(self, sha256: str) -> str:
        """Where the bytes with this sha256 live: `[PREFIX/]sha256/ab/abcdef…`."""
        if not _SHA256.match(sha256):
            raise UsageError(f"not a lowercase sha256: {sha256!r}")
        return self._key(f"sha256/{sha256[:2]}/{sha256}")

    def card_key(self, sha256: str, name: str) -> str:
        """Where a model card of the model with this sha256 lives (`.civitai.info`, preview).

        The seam for mirroring model cards with their model: keyed by the model's sha256, so a
        card follows the bytes it describes and survives the model's takedown with them.
        """
        if not _CARD_NAME.match(name):
            raise UsageError(f"not a plain card file name: {name!r}")
        if not _SHA256.match(sha256):
            raise UsageError(f"not a lowercase sha256: {sha256!r}")
        return self._key(f"cards/{sha256}/{name}")

    def url(self, key: str) -> str:
        return f"oss://{self.bucket}/{key}"
