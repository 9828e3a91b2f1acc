"""A loopback Hugging Face Hub: the endpoint (``HF_ENDPOINT``) and the LFS CDN it redirects to.

Headers, status codes and error codes follow /work/shared/reference/civitai-hf.md §2
(huggingface_hub source): resolve answers 302 + X-Linked-Etag/X-Linked-Size for LFS files and
200 + ETag (git blob sha1) for plain git files; errors carry X-Error-Code / X-Error-Message.
"""

from __future__ import annotations

import hashlib
import re
import threading
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Final
from urllib.parse import quote, unquote

from tests.fakes.common import (
    Content,
    FakeHandler,
    FakeHosts,
    Faults,
    LoopbackServer,
    Recorded,
    UrlSigner,
    Verdict,
    content_digests,
    content_size,
    git_blob_sha1,
    s3_error_xml,
)

JSON = dict[str, Any]

LAST_MODIFIED: Final = "2024-01-01T00:00:00.000Z"
_SHA1_RE: Final = re.compile(r"[0-9a-f]{40}")
_RESOLVE_RE: Final = re.compile(r"/(?P<repo>[^/]+(?:/[^/]+)?)/resolve/(?P<rev>[^/]+)/(?P<path>.+)")
_API_RE: Final = re.compile(
    r"/api/models/(?P<repo>[^/]+(?:/[^/]+)?)/(?P<what>revision|tree)/(?P<rev>[^/]+)(?:/(?P<path>.*))?"
)
_REFS_RE: Final = re.compile(r"/api/models/(?P<repo>[^/]+(?:/[^/]+)?)/refs")
_CDN_RE: Final = re.compile(r"/repos/[0-9a-f]{2}/[0-9a-f]{2}/(?P<sha>[0-9a-f]{64})")


@dataclass(eq=False)
class HfFile:
    path: str
    content: Content
    lfs: bool

    @property
    def size(self) -> int:
        return content_size(self.content)

    @cached_property
    def sha256(self) -> str:
        return content_digests(self.content).sha256

    @cached_property
    def pointer(self) -> bytes:
        """The LFS pointer git stores instead of the content."""
        return (
            f"version https://git-lfs.github.com/spec/v1\noid sha256:{self.sha256}\n"
            f"size {self.size}\n"
        ).encode()

    @cached_property
    def blob_id(self) -> str:
        """Git object id of what git stores: the pointer for LFS files, the bytes otherwise."""
        if self.lfs:
            return git_blob_sha1(self.pointer)
        data = self.content if isinstance(self.content, bytes) else self.content.read_bytes()
        return git_blob_sha1(data)


@dataclass(eq=False)
class HfRepo:
    commits: dict[str, dict[str, HfFile]] = field(default_factory=dict)
    branches: dict[str, str] = field(default_factory=dict)
    gated: bool = False
    approved: bool = True  # a valid token on a gated repo: False → 403 "not in the authorized list"


def _error(h: FakeHandler, status: int, code: str | None, message: str) -> None:
    headers = {"X-Error-Message": message}
    if code is not None:
        headers["X-Error-Code"] = code
    body = f'{{"error":"{message}"}}'.encode()
    h.respond(status, body, content_type="application/json; charset=utf-8", headers=headers)


class HfServer(FakeHosts):
    """huggingface.co stand-in (``endpoint``) plus the signed LFS CDN (``cdn_url``)."""

    def __init__(self, *, token: str | None = None, signed_url_ttl: float = 3600.0) -> None:
        self.token = token
        self.faults = Faults()
        self.requests: list[Recorded] = []
        self._repos: dict[str, HfRepo] = {}
        self._renamed: dict[str, str] = {}
        self._lock = threading.Lock()
        self._signer = UrlSigner(signed_url_ttl)
        self._hub = LoopbackServer("hf", self._route_hub, self.faults, self.requests)
        self._cdn = LoopbackServer("cdn", self._route_cdn, self.faults, self.requests)
        self.endpoint = self._hub.url
        self.cdn_url = self._cdn.url
        self._hosts = (self._hub, self._cdn)

    # ----------------------------------------------------------------- test API

    def add_file(
        self,
        repo: str,
        path: str,
        content: Content,
        *,
        revision: str = "main",
        commit: str | None = None,
        lfs: bool = True,
        sha256: str | None = None,
    ) -> str:
        """Commit one file on branch ``revision``; returns the new commit sha.

        Each call makes a new commit holding the branch's files plus this one (older commits
        stay resolvable). Passing an existing ``commit`` adds the file to that commit instead,
        to build a multi-file commit with a chosen sha. ``sha256``, when the caller knows it,
        spares hashing a multi-GB file at the first resolve (benchmarks).
        """
        entry = HfFile(path, content, lfs)
        if sha256 is not None:
            entry.__dict__["sha256"] = sha256.lower()  # pre-fills the cached_property
        with self._lock:
            state = self._repos.setdefault(repo, HfRepo())
            parent = state.branches.get(revision)
            if commit is not None and commit in state.commits:
                state.commits[commit][path] = entry
            else:
                files = dict(state.commits[parent]) if parent else {}
                files[path] = entry
                commit = commit or _commit_sha(repo, revision, parent, path, content)
                state.commits[commit] = files
            state.branches[revision] = commit
            return commit

    def gate(self, repo: str, *, approved: bool = True) -> None:
        """Gate ``repo``: no or wrong token → 401; ``self.token`` → allowed, 403 unless approved."""
        with self._lock:
            state = self._repos.setdefault(repo, HfRepo())
            state.gated, state.approved = True, approved

    def rename(self, old: str, new: str) -> None:
        """Requests to ``old`` get a relative 307 to ``new`` on the same host, like a moved repo."""
        with self._lock:
            self._renamed[old] = new

    def clear_requests(self) -> None:
        self.requests.clear()

    def expire_signed_urls(self) -> None:
        self._signer.expire_all()

    def resolve_url(self, repo: str, path: str, revision: str = "main") -> str:
        return f"{self.endpoint}/{repo}/resolve/{quote(revision, safe='')}/{quote(path)}"

    # ----------------------------------------------------------------- lookups

    def _repo(self, name: str) -> HfRepo | None:
        with self._lock:
            return self._repos.get(name)

    def _commit_of(self, state: HfRepo, revision: str) -> str | None:
        if revision in state.branches:
            return state.branches[revision]
        return revision if _SHA1_RE.fullmatch(revision) and revision in state.commits else None

    def _access_denied(self, h: FakeHandler, repo: str, state: HfRepo | None) -> bool:
        """Send RepoNotFound / GatedRepo when the request may not see the repo's files."""
        if state is None:
            _error(h, 401, "RepoNotFound", "Repository not found")  # same as private: 401
            return True
        if not state.gated:
            return False
        token = h.bearer_token()
        if self.token is None or token != self.token:
            message = (
                f"Access to model {repo} is restricted. You must have access to it and be "
                "authenticated to access it. Please log in."
            )
            _error(h, 401, "GatedRepo", message)
            return True
        if not state.approved:
            message = (
                f"Access to model {repo} is restricted and you are not in the authorized list. "
                f"Visit https://huggingface.co/{repo} to ask for access."
            )
            _error(h, 403, "GatedRepo", message)
            return True
        return False

    # ----------------------------------------------------------------- hub routes

    def _route_hub(self, h: FakeHandler) -> None:
        path = h.route_path
        if h.command not in ("GET", "HEAD"):
            _error(h, 405, None, "Method not allowed")
        elif match := _RESOLVE_RE.fullmatch(path):
            self._resolve(h, match["repo"], unquote(match["rev"]), unquote(match["path"]))
        elif match := _API_RE.fullmatch(path):
            rev, sub = unquote(match["rev"]), unquote(match["path"] or "")
            if match["what"] == "revision":
                self._revision_info(h, match["repo"], rev)
            else:
                self._tree(h, match["repo"], rev, sub)
        elif match := _REFS_RE.fullmatch(path):
            self._refs(h, match["repo"])
        else:
            _error(h, 404, None, "Sorry, we can't find the page you are looking for.")

    def _moved(self, h: FakeHandler, repo: str) -> bool:
        with self._lock:
            new = self._renamed.get(repo)
        if new is None:
            return False
        # Same path with the new name: /{repo}/resolve/... or /api/models/{repo}/...
        location = h.path.replace(f"/{repo}/", f"/{new}/", 1)
        h.respond(
            307,
            f"Temporary Redirect. Redirecting to {location}".encode(),
            content_type="text/plain; charset=utf-8",
            headers={"Location": location},
        )
        return True

    def _resolve(self, h: FakeHandler, repo: str, revision: str, path: str) -> None:
        if self._moved(h, repo):
            return
        state = self._repo(repo)
        if self._access_denied(h, repo, state):
            return
        assert state is not None
        commit = self._commit_of(state, revision)
        if commit is None:
            _error(h, 404, "RevisionNotFound", f"Invalid rev id: {revision}")
            return
        file = state.commits[commit].get(path)
        if file is None:
            _error(h, 404, "EntryNotFound", "Entry not found")
            return
        name = path.rsplit("/", 1)[-1]
        disposition = f"inline; filename*=UTF-8''{quote(name)}; filename=\"{name}\";"
        if file.lfs:
            self._redirect_to_cdn(h, commit, file, disposition)
            return
        headers = {
            "ETag": f'"{file.blob_id}"',
            "X-Repo-Commit": commit,
            "Content-Disposition": disposition,
        }
        h.serve_content(file.content, headers=headers)

    def _redirect_to_cdn(self, h: FakeHandler, commit: str, file: HfFile, disposition: str) -> None:
        sha = file.sha256
        cdn_path = f"/repos/{sha[:2]}/{sha[2:4]}/{sha}"
        query = self._signer.sign(cdn_path, [("response-content-disposition", disposition)])
        location = f"{self.cdn_url}{cdn_path}?{query}"
        headers = {
            "Location": location,
            "X-Repo-Commit": commit,
            "X-Linked-Etag": f'"{sha}"',
            "X-Linked-Size": str(file.size),
            "ETag": f'"{file.blob_id}"',  # the pointer's git oid; clients prefer X-Linked-Etag
        }
        h.respond(
            302,
            f"Found. Redirecting to {location}".encode(),
            content_type="text/plain; charset=utf-8",
            headers=headers,
        )

    def _revision_info(self, h: FakeHandler, repo: str, revision: str) -> None:
        if self._moved(h, repo):
            return
        state = self._repo(repo)
        if state is None:
            _error(h, 401, "RepoNotFound", "Repository not found")
            return
        commit = self._commit_of(state, revision)
        if commit is None:
            _error(h, 404, "RevisionNotFound", f"Invalid rev id: {revision}")
            return
        blobs = h.query.get("blobs", "").lower() in ("1", "true")
        files = sorted(state.commits[commit].values(), key=lambda f: f.path)
        info: JSON = {
            "_id": hashlib.md5(repo.encode(), usedforsecurity=False).hexdigest()[:24],
            "id": repo,
            "modelId": repo,
            "author": repo.split("/")[0],
            "sha": commit,
            "lastModified": LAST_MODIFIED,
            "private": False,
            "disabled": False,
            "gated": "manual" if state.gated else False,
            "tags": [],
            "siblings": [_sibling(f, blobs=blobs) for f in files],
        }
        h.send_json(200, info)

    def _tree(self, h: FakeHandler, repo: str, revision: str, sub: str) -> None:
        state = self._repo(repo)
        if self._access_denied(h, repo, state):
            return
        assert state is not None
        commit = self._commit_of(state, revision)
        if commit is None:
            _error(h, 404, "RevisionNotFound", f"Invalid rev id: {revision}")
            return
        recursive = h.query.get("recursive", "").lower() in ("1", "true")
        prefix = f"{sub.strip('/')}/" if sub.strip("/") else ""
        entries: dict[str, JSON] = {}
        for file in state.commits[commit].values():
            if not file.path.startswith(prefix):
                continue
            parts = file.path[len(prefix) :].split("/")
            for depth in range(1, len(parts)):
                if depth > 1 and not recursive:
                    break
                folder = prefix + "/".join(parts[:depth])
                entries[folder] = {"type": "directory", "oid": "0" * 40, "size": 0, "path": folder}
            if recursive or len(parts) == 1:
                entries[file.path] = _tree_entry(file)
        if not entries and prefix:
            _error(h, 404, "EntryNotFound", f'{sub} does not exist on "{revision}"')
            return
        h.send_json(200, [entries[key] for key in sorted(entries)])

    def _refs(self, h: FakeHandler, repo: str) -> None:
        state = self._repo(repo)
        if state is None:
            _error(h, 401, "RepoNotFound", "Repository not found")
            return
        branches = [
            {"name": name, "ref": f"refs/heads/{name}", "targetCommit": sha}
            for name, sha in sorted(state.branches.items())
        ]
        h.send_json(200, {"branches": branches, "converts": [], "tags": []})

    # ----------------------------------------------------------------- CDN

    def _find_blob(self, sha: str) -> HfFile | None:
        with self._lock:
            states = list(self._repos.values())
        for state in states:
            for files in state.commits.values():
                for file in files.values():
                    if file.lfs and file.sha256 == sha:
                        return file
        return None

    def _route_cdn(self, h: FakeHandler) -> None:
        if h.headers.get("Authorization"):
            # S3/CloudFront refuse two auth mechanisms: the bug of forwarding the hub token.
            message = (
                "Only one auth mechanism allowed; only the X-Amz-Algorithm query parameter, "
                "Signature query string parameter or the Authorization header should be specified"
            )
            h.respond(400, s3_error_xml("InvalidArgument", message), content_type="application/xml")
            return
        match = _CDN_RE.fullmatch(h.route_path)
        verdict = self._signer.check(h.route_path, h.raw_query) if match else Verdict.BAD_SIGNATURE
        if verdict is not Verdict.OK:
            code, message = (
                ("AccessDenied", "Request has expired")
                if verdict is Verdict.EXPIRED
                else ("SignatureDoesNotMatch", "The request signature does not match")
            )
            h.respond(403, s3_error_xml(code, message), content_type="application/xml")
            return
        assert match is not None
        file = self._find_blob(match["sha"])
        if file is None:
            h.respond(
                404,
                s3_error_xml("NoSuchKey", "The specified key does not exist."),
                content_type="application/xml",
            )
            return
        headers = {"ETag": f'"{file.sha256}"'}
        disposition = h.query.get("response-content-disposition")
        if disposition:
            headers["Content-Disposition"] = disposition
        h.serve_content(file.content, headers=headers)


def _commit_sha(repo: str, revision: str, parent: str | None, path: str, content: Content) -> str:
    # Deterministic across runs without hashing multi-GB content: bytes are hashed (small),
    # a Path contributes its location and size.
    what = content if isinstance(content, bytes) else f"{content}:{content_size(content)}".encode()
    seed = f"{repo}\0{revision}\0{parent or ''}\0{path}\0".encode() + what
    return hashlib.sha1(seed, usedforsecurity=False).hexdigest()


def _sibling(file: HfFile, *, blobs: bool) -> JSON:
    if not blobs:
        return {"rfilename": file.path}
    out: JSON = {"rfilename": file.path, "blobId": file.blob_id, "size": file.size}
    if file.lfs:
        out["lfs"] = {"sha256": file.sha256, "size": file.size, "pointerSize": len(file.pointer)}
    return out


def _tree_entry(file: HfFile) -> JSON:
    out: JSON = {"type": "file", "oid": file.blob_id, "size": file.size, "path": file.path}
    if file.lfs:
        out["lfs"] = {"oid": file.sha256, "size": file.size, "pointerSize": len(file.pointer)}
    return out


__all__ = ["HfFile", "HfRepo", "HfServer"]
