"""One revision of a registry, fetched into a bare cache: ``git fetch --depth 1``, no checkout.

The cache is ``.vxds/registry/<digest of the URL>.git``. Every call to Git here runs with a
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


def _git(args: list[str], *, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "GIT_TERMINAL_PROMPT": "0", "GIT_ASKPASS": "true"}
    return subprocess.run(["git", *args], cwd=cwd, env=env, capture_output=True, text=True, check=False)


def _reason(result: subprocess.CompletedProcess[str]) -> str:
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    return lines[-1].removeprefix("fatal: ") if lines else f"git exited with {result.returncode}"


def cache_for(cache_dir: Path, url: str) -> Path:
    """The bare repository caching ``url``'s fetched revisions (created when missing)."""
    bare = cache_dir / "registry" / f"{digest_text(url).partition(':')[2][:16]}.git"
    if not (bare / "HEAD").is_file():
        bare.parent.mkdir(parents=True, exist_ok=True)
        result = _git(["init", "--bare", "--quiet", str(bare)])
        if result.returncode != 0:
            raise RegistryError(f"{bare}: cannot create the registry cache: {_reason(result)}")
    return bare


def fetch(bare: Path, url: str, rev: str) -> str:
    """Fetch ``rev`` of ``url`` (only that commit, depth 1) into ``bare``; its commit sha."""
    result = _git(["fetch", "--quiet", "--depth", "1", "--no-tags", url, f"+{rev}:{FETCHED}"], cwd=bare)
    if result.returncode != 0 and SHA_RE.match(rev):  # a sha is not a ref: fetch it by name
        result = _git(["fetch", "--quiet", "--depth", "1", "--no-tags", url, rev], cwd=bare)
        if result.returncode == 0:
            result = _git(["update-ref", FETCHED, rev], cwd=bare)
    if result.returncode != 0:
        raise RegistryError(f"registry {url}: cannot fetch {rev!r}: {_reason(result)}")
    return resolved(bare, FETCHED)


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
