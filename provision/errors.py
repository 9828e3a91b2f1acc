"""The sdprov error tree.

Library code raises these; only the CLI turns them into messages and exit codes. Every class
builds a message a user can act on: what happened, to which model or file, and what to do next.
Secrets never reach a message: URLs are redacted before they are stored here.
"""

from __future__ import annotations

import errno
import os
from dataclasses import dataclass
from pathlib import Path


class SdprovError(Exception):
    """Base of every error sdprov reports to a user. Exit code 1 unless a subclass says so."""

    exit_code: int = 1

    def __init__(
        self,
        message: str,
        *,
        hint: str | None = None,
        path: str | None = None,
        url: str | None = None,
        status: int | None = None,
    ) -> None:
        self.message = message
        self.hint = hint
        # Structured context for `--json` failures. `url` must already be redacted (no query,
        # no userinfo: provision.net.http.redact); `path` is a file or a lock path.
        self.path = path
        self.url = url
        self.status = status
        super().__init__(self.render())

    def render(self) -> str:
        return f"{self.message}\n  hint: {self.hint}" if self.hint else self.message

    def to_json(self) -> dict[str, object]:
        """The error as `--json` reports it: an object, never a bare string."""
        raw: dict[str, object] = {"type": type(self).__name__, "message": self.message}
        for key in ("hint", "path", "url", "status"):
            if (value := getattr(self, key)) is not None:
                raw[key] = value
        raw["exit_code"] = self.exit_code
        return raw


class UsageError(SdprovError):
    """Bad command-line usage or a bad lockfile/argument: exit 2."""

    exit_code = 2


@dataclass(frozen=True, slots=True, order=True)
class Location:
    """1-based position in a source file."""

    file: str
    line: int
    column: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.column}"


@dataclass(frozen=True, slots=True, order=True)
class ManifestProblem:
    """One problem found in a manifest; sortable by position."""

    location: Location
    message: str

    def __str__(self) -> str:
        return f"{self.location}: error: {self.message}"


class ManifestError(SdprovError):
    """Every problem of a manifest at once (exit 2)."""

    exit_code = 2

    def __init__(self, problems: list[ManifestProblem]) -> None:
        self.problems = sorted(problems)
        noun = "problem" if len(self.problems) == 1 else "problems"
        lines = [str(p) for p in self.problems]
        lines.append(f"{len(self.problems)} {noun} in the manifest; nothing was changed")
        super().__init__("\n".join(lines))


class LockfileError(SdprovError):
    """The lockfile is missing, unreadable, of an unknown version, or stale."""

    exit_code = 2


class StaleLockError(LockfileError):
    def __init__(self, manifest: str, lockfile: str, reason: str) -> None:
        super().__init__(
            f"{lockfile} does not match {manifest}: {reason}",
            hint=f"run `sdprov lock {manifest}` and commit the new lockfile",
        )


class SourceError(SdprovError):
    """A model source (Civitai, Hugging Face, URL) could not give us what the manifest asks for."""


class NotFound(SourceError):
    pass


class AuthRequired(SourceError):
    pass


class AccessDenied(SourceError):
    pass


class RateLimited(SourceError):
    pass


class ResolveFailed(SourceError):
    """Some manifest entries could not be resolved; the lockfile was left as it was."""

    def __init__(self, failures: list[str]) -> None:
        self.failures = failures
        noun = "entry" if len(failures) == 1 else "entries"
        super().__init__(
            f"{len(failures)} manifest {noun} could not be resolved; the lockfile was not "
            "changed:\n" + "\n".join(f"  {f}" for f in failures)
        )


class DownloadError(SdprovError):
    """A download failed; nothing unverified was placed."""


# What to do about a sha256 mismatch depends on where the bytes came from: a Civitai version
# can be re-locked, a Hugging Face file is pinned to a commit, a URL has only the manifest's word.
MISMATCH_HINTS: dict[str, str] = {
    "civitai": "the source changed the file behind the locked version; check it and re-lock "
    "with `sdprov lock --upgrade NAME` if the new bytes are wanted",
    "hf": "the repository no longer serves the locked bytes at that commit (a rewritten "
    "history or a mirror); check it, then run `sdprov lock --upgrade NAME`",
    "url": "the bytes at the URL are not the ones the manifest's `sha256:` names: either the "
    "file changed or the manifest's sha256 is wrong; check the file, fix `sha256:` in the "
    "manifest and run `sdprov lock`",
    "mirror": "the OSS mirror object holds other bytes than the lock; nothing was placed. "
    "Repair it with `sdprov mirror push --verify`, or sync without --mirror",
}


class ChecksumMismatch(DownloadError):
    def __init__(self, what: str, expected: str, actual: str, *, source_type: str = "") -> None:
        super().__init__(
            f"{what}: sha256 mismatch (expected {expected}, got {actual}); the file was not placed",
            hint=MISMATCH_HINTS.get(
                source_type,
                "the source changed the file; check it and re-lock with `sdprov lock` if the "
                "new bytes are wanted",
            ),
        )


class SizeMismatch(DownloadError):
    def __init__(self, what: str, expected: int, actual: int) -> None:
        super().__init__(
            f"{what}: size mismatch (expected {expected} bytes, got {actual}); "
            "the file was not placed",
            hint="retry; a persistent mismatch means the source changed the file",
        )


class MirrorError(SdprovError):
    """The OSS mirror refused or failed a request (access, missing bucket, network)."""


class LeaseHeld(SdprovError):
    """Another sdprov process is writing to the same models root."""


class InspectionError(SdprovError):
    """A file's own bytes contradict what the lock says, or it is unsafe to place."""


class InfraConfigError(SdprovError):
    exit_code = 2


class FileSystemError(SdprovError):
    """The operating system refused a file operation (permissions, read-only, full, names)."""


# errno -> (what happened, what to do). `{path}` is the file or folder the OS named.
_OS_ADVICE: dict[int, tuple[str, str]] = {
    errno.EACCES: (
        "permission denied",
        "check the owner and mode of {path}, or run sdprov as a user who may write there",
    ),
    errno.EPERM: ("operation not permitted", "check the owner and mode of {path}"),
    errno.EROFS: (
        "the file system is read-only",
        "mount it read-write or choose a folder on a writable file system",
    ),
    errno.ENOTDIR: (
        "a path component is a file, not a folder",
        "remove or rename the file, or choose another folder",
    ),
    errno.EEXIST: ("a file is in the way", "remove or rename it, or choose another folder"),
    errno.ENAMETOOLONG: (
        "the file name is too long for this file system",
        "give the entry a shorter `name:` in the manifest and run `sdprov lock`",
    ),
    errno.ENOSPC: ("no space left on the device", "free some space, or sync fewer models"),
    errno.EDQUOT: ("disk quota exceeded", "free some space or raise the quota"),
    errno.ENOENT: ("no such file or folder", "check the path"),
    errno.EISDIR: ("a folder is where a file should be", "remove or rename the folder"),
}


def from_os_error(exc: OSError, *, doing: str = "", space: str = "") -> FileSystemError:
    """One actionable message for an OSError: the path, what happened, what to do.

    `doing` says what sdprov was doing ("writing the lockfile"); `space` (for ENOSPC) says how
    much was needed and how much is free.
    """
    path = exc.filename if isinstance(exc.filename, str) else None
    if path is None and isinstance(exc.filename, bytes):
        path = os.fsdecode(exc.filename)
    what, todo = _OS_ADVICE.get(exc.errno or 0, (exc.strerror or type(exc).__name__, ""))
    if exc.errno == errno.EEXIST and path is not None and not Path(path).is_dir():
        what = "it exists and is not a folder"
    if path is None and exc.strerror and exc.errno and exc.strerror != os.strerror(exc.errno):
        what = f"{what}: {exc.strerror}"  # a library's own text, e.g. naming its folder
    where = f"{path}: " if path else ""
    context = f" while {doing}" if doing else ""
    detail = f" ({space})" if space else ""
    return FileSystemError(
        f"{where}{what}{context}{detail}",
        hint=todo.format(path=path or "the folder") or None,
        path=path,
    )


class InternalError(SdprovError):
    """A bug: something sdprov did not expect. One line for the user, details under -v."""

    def __init__(self, exc: BaseException) -> None:
        text = str(exc).splitlines()[0] if str(exc) else ""
        super().__init__(
            f"internal error ({type(exc).__name__}{': ' + text if text else ''}); "
            "rerun with --verbose for the details",
        )
