"""What must hold before a verified file becomes visible to WebUI.

The sha256 proves the bytes are the locked ones; this proves the locked bytes are what the
lock says they are (kind and base family, read from the file itself) and that a pickle is
allowed and safe. Raising keeps the file out of the kind folder.
"""

from __future__ import annotations

import logging
from pathlib import Path

from provision.errors import InspectionError
from provision.inspection import check_placement, inspect_file, scan_pickle
from provision.kinds import Family
from provision.lock.lockfile import LockEntry

log = logging.getLogger(__name__)


def check_before_place(entry: LockEntry, path: Path) -> None:
    # `path` is the partial download (no extension): judge it by the name it will have.
    report = inspect_file(path, name=entry.path)
    if report.format == "pickle":
        if not entry.allow_pickle:
            raise InspectionError(
                f"{entry.path}: the file is a pickle (it can run code when loaded) and the "
                "entry does not set `allow_pickle: true`; it was not placed",
                hint="prefer a .safetensors version of the model, or allow it in the manifest",
            )
        verdict = scan_pickle(path)
        if not verdict.safe:
            raise InspectionError(
                f"{entry.path}: refused, even with allow_pickle: {verdict.message}",
                hint="this file imports code outside what WebUI's safe unpickler accepts; "
                "do not use it",
            )
    # A `base:` the user declared overrides what the source says; trust it over our guess
    # of the family too, but never over the kind.
    family = Family.OTHER if entry.base_declared else entry.base
    check_placement(report, kind=entry.kind, family=family, name=entry.path)
    log.debug("%s: %s", entry.path, "; ".join(report.evidence[:2]))
