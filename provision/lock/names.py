"""File names that come from a server, checked before they become paths under the models root.

Civitai's `files[].name`, the last segment of a Hugging Face path and of a plain URL (after
percent-decoding) are chosen by whoever runs the server or uploads the model. When the manifest
entry has no `name:`, that text becomes the file name WebUI shows and prompts reference, so a
bad one is refused at lock with what the server sent, rather than quietly rewritten: a renamed
file would silently change every `<lora:…>` in the team's prompts. The way out is one line in
the manifest (`name:`), after which the server's name only contributes its extension, which the
kind's allow-list already constrains. The rules themselves live in `manifest.filenames`.
"""

from __future__ import annotations

from pathlib import PurePosixPath

from provision.manifest.filenames import file_name_problem, relative_path_problem
from provision.sources import ResolvedFile


def target_problem(path: PurePosixPath, resolved: ResolvedFile, *, named: bool) -> str | None:
    """Why the lock must not place `resolved` at `path`, or None.

    `named`: the manifest gave `name:`, so the server's file name only supplied the extension.
    """
    if not named and (problem := file_name_problem(resolved.file_name)):
        source = resolved.source.type
        return (
            f"the file name the {source} source sent is unusable: {problem}; "
            "give the entry a `name:` in the manifest"
        )
    if problem := relative_path_problem(path.as_posix()):
        return f"cannot place the file at {path.as_posix()[:120]!r}: {problem}"
    return None
