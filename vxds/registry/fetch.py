"""One revision of a registry, fetched into a bare cache: a partial fetch, no checkout.

The cache is ``.vxds/registry/<digest of the URL>.git``, a partial clone of the registry
(its remote ``origin`` is the promisor). ``fetch`` brings one commit and its trees (``git
fetch --depth 1 --filter=blob:none``); ``fetch_paths`` then brings the blobs under the
paths a reader needs (the manifest, one dataset's lock folder) in one request. A server
that refuses filters (``uploadpack.allowFilter`` unset) sends the whole tree instead, which
Git says with a warning and which works the same. Every call to Git here runs with a
terminal prompt turned off, so an unreachable or private registry is an error, not a hang.
"""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path
from urllib.parse import urlsplit

from vxds.errors import UsageError, VxdsError
from vxds.hashing import digest_text

SHA_RE = re.compile(r"[0-9a-f]{40}\Z")
FETCHED = "refs/vxds/fetched"


class RegistryError(VxdsError):
    """A registry that cannot be reached, or a revision it does not have."""


def check_url(url: str) -> str:
    """``url`` if it carries no credentials; ``UsageError`` otherwise (as for sources)."""
    if "://" in url:
        parts = urlsplit(url)
        if parts.password is not None or (parts.username is not None and parts.scheme != "ssh"):
            raise UsageError(
                f"registry URL {parts.scheme}://...@{parts.hostname}: must not carry credentials",
                hint="give them to Git instead (a credential helper or an SSH key)",
            )
    return url


def shown(url: str) -> str:
    """``url`` for messages and the manifest: a local path made absolute."""
    return url if "://" in url or ":" in url.split("/", 1)[0] else str(Path(url).resolve())


def _git(
    args: list[str], *, cwd: Path | None = None, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "GIT_TERMINAL_PROMPT": "0", "GIT_ASKPASS": "true"}
    return subprocess.run(
        ["git", *args], cwd=cwd, env=env, input=stdin, capture_output=True, text=True, check=False
    )


def _reason(result: subprocess.CompletedProcess[str]) -> str:
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    return lines[-1].removeprefix("fatal: ") if lines else f"git exited with {result.returncode}"


PROMISOR = {  # a partial clone of origin: what Git itself sets for 'git clone --filter'
    "core.repositoryformatversion": "1",
    "remote.origin.promisor": "true",
    "remote.origin.partialclonefilter": "blob:none",
    "extensions.partialclone": "origin",
}
FILTERED = ["--quiet", "--no-tags", "--filter=blob:none"]


def cache_for(cache_dir: Path, url: str) -> Path:
    """The bare partial clone caching ``url``'s fetched revisions (created when missing)."""
    bare = cache_dir / "registry" / f"{digest_text(url).partition(':')[2][:16]}.git"
    if not (bare / "HEAD").is_file():
        bare.parent.mkdir(parents=True, exist_ok=True)
        result = _git(["init", "--bare", "--quiet", str(bare)])
        if result.returncode != 0:
            raise RegistryError(f"{bare}: cannot create the registry cache: {_reason(result)}")
    if _git(["config", "remote.origin.url"], cwd=bare).stdout.strip() != url:
        for key, value in {"remote.origin.url": url, **PROMISOR}.items():
            result = _git(["config", key, value], cwd=bare)
            if result.returncode != 0:
                raise RegistryError(f"{bare}: cannot set up the registry cache: {_reason(result)}")
    return bare


def fetch(bare: Path, url: str, rev: str) -> str:
    """Fetch ``rev`` of ``url`` (that commit and its trees, depth 1, no blobs) into ``bare``;
    its commit sha."""
    result = _git(["fetch", *FILTERED, "--depth", "1", "origin", f"+{rev}:{FETCHED}"], cwd=bare)
    if result.returncode != 0 and SHA_RE.match(rev):  # a sha is not a ref: fetch it by name
        result = _git(["fetch", *FILTERED, "--depth", "1", "origin", rev], cwd=bare)
        if result.returncode == 0:
            result = _git(["update-ref", FETCHED, rev], cwd=bare)
    if result.returncode != 0:
        raise RegistryError(f"registry {url}: cannot fetch {rev!r}: {_reason(result)}")
    return resolved(bare, FETCHED)


def fetch_paths(bare: Path, commit: str, paths: list[str]) -> int:
    """Fetch the blobs under ``paths`` at ``commit`` that the cache lacks, in one request;
    how many were fetched (none when they are there, or the server sent every blob)."""
    listed = _git(["ls-tree", "-r", "--full-tree", commit, "--", *paths], cwd=bare)
    if listed.returncode != 0:
        raise RegistryError(f"{bare}: cannot list {', '.join(paths)} at {commit[:12]}: {_reason(listed)}")
    wanted = {line.split()[2] for line in listed.stdout.splitlines() if line.split()[1:2] == ["blob"]}
    missing = _git(["rev-list", "--objects", "--missing=print", commit], cwd=bare)
    absent = {line[1:] for line in missing.stdout.splitlines() if line.startswith("?")}
    oids = sorted(wanted & absent)
    if oids:
        result = _git(
            [
                "-c",
                "fetch.negotiationAlgorithm=noop",
                "fetch",
                *FILTERED,
                "--no-write-fetch-head",
                "--stdin",
                "origin",
            ],
            cwd=bare,
            stdin="".join(f"{oid}\n" for oid in oids),
        )
        if result.returncode != 0:
            where = f"{', '.join(paths)} at {commit[:12]}"
            raise RegistryError(f"{bare}: cannot fetch {where}: {_reason(result)}")
    return len(oids)


def resolved(bare: Path, ref: str) -> str:
    result = _git(["rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}"], cwd=bare)
    if result.returncode != 0:
        raise RegistryError(f"{bare}: no commit {ref!r} in the registry cache")
    return result.stdout.strip()


def remote_commit(url: str, rev: str) -> str:
    """The commit ``rev`` names in the registry now, asked with ``git ls-remote`` (no fetch).

    A full sha names itself. A tag is peeled to its commit.
    """
    if SHA_RE.match(rev):
        return rev
    result = _git(["ls-remote", "--", url, rev, f"{rev}^{{}}"])
    if result.returncode != 0:
        raise RegistryError(f"registry {url}: unreachable: {_reason(result)}")
    refs: dict[str, str] = {}
    for line in result.stdout.splitlines():
        sha, _, name = line.partition("\t")
        refs[name] = sha
    for name in (f"refs/tags/{rev}^{{}}", f"refs/tags/{rev}", f"refs/heads/{rev}", rev):
        if name in refs:
            return refs[name]
    if rev == "HEAD" and "HEAD" in refs:
        return refs["HEAD"]
    raise RegistryError(f"registry {url}: no branch or tag {rev!r}")
