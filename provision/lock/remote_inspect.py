"""Inspect a remote safetensors file at lock time from its header alone.

The header (8-byte length + JSON) is fetched with ranged requests, written into a sparse
temporary file of the real size, and given to the same `inspect_file` that sync uses, so the
lock records the kind and family the file itself declares, before a byte of it is synced.
Pickle files need the whole file; they are inspected at sync.
"""

from __future__ import annotations

import tempfile
import threading
from pathlib import Path
from typing import Final

from provision.errors import InspectionError, SourceError
from provision.inspection import FileReport, inspect_file
from provision.kinds import file_format
from provision.sources import RangeSource, ResolvedFile, SourceContext
from provision.sources.peek import peek, read_range

MAX_HEADER: Final = 100 << 20  # the inspection's own bound; larger is refused there


def inspect_remote(
    resolved: ResolvedFile,
    source: RangeSource,
    ctx: SourceContext,
    what: str,
    *,
    scratch: Path | None = None,
) -> FileReport | None:
    """The file's report, or None when the header is not a safetensors header we can read.

    `scratch`: a private folder the caller removes (lock: one a run); without it, a temporary
    folder for this one file."""
    if file_format(resolved.file_name) != "safetensors":
        return None
    head = resolved.head or peek(source, ctx, what).head
    if len(head) < 8:
        return None
    length = int.from_bytes(head[:8], "little")
    if length > MAX_HEADER or 8 + length > resolved.size:
        return None  # sync's inspection reports the corrupt header with the file in hand
    if len(head) < 8 + length:
        head += read_range(source, ctx, what, len(head), 8 + length - 1)
    if scratch is not None:
        # One file per thread, rewritten for each entry: a folder per entry (mkdtemp, rmtree)
        # was a tenth of a 1,000-entry lock's time.
        return _inspect_header(head[: 8 + length], resolved.size, source, what, scratch)
    with tempfile.TemporaryDirectory(prefix="sdprov-header-") as tmp:
        return _inspect_header(head[: 8 + length], resolved.size, source, what, Path(tmp))


def _inspect_header(
    header: bytes, size: int, source: RangeSource, what: str, folder: Path
) -> FileReport:
    # A fixed name: the server's own may be too long, hold NUL or a path (lock.names).
    sparse = folder / f"header-{threading.get_ident()}.safetensors"
    with sparse.open("wb") as fh:
        fh.write(header)
        fh.truncate(size)  # tensors' offsets must fit the real size
    try:
        return inspect_file(sparse)
    except InspectionError as exc:
        detail = exc.message.removeprefix(f"{sparse}: ")
        raise SourceError(
            f"{what}: {source.describe()} serves a broken safetensors file ({detail}); "
            "WebUI could not load it",
            hint="pick another file or version of the model",
        ) from exc
