"""``git+URL[@REV]#NAME[@V]``: a registry's lock read without importing it (``load_lock``).

``URL`` is anything Git takes (``file://``, ``https://``, ``ssh://``, a plain path);
``REV`` (default: the registry's ``HEAD``) follows the last ``@`` of the URL's path, so an
``ssh://git@host/...`` user is not taken for one. The revision is fetched into the same
cache as ``vxds import`` (``fetch``), only the dataset's own files with it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from vxds.errors import UsageError
from vxds.project.manifest import parse_spec
from vxds.registry.fetch import cache_for, check_url, fetch, shown
from vxds.registry.read import RegistryLock, registry_lock

PREFIX = "git+"


@dataclass(frozen=True)
class RemoteSpec:
    url: str
    rev: str
    dataset: str  # NAME or NAME@V


def is_remote(spec: object) -> bool:
    return isinstance(spec, str) and spec.startswith(PREFIX)


def parse_remote(spec: str) -> RemoteSpec:
    """The parts of ``git+URL[@REV]#NAME[@V]``; ``UsageError`` for a malformed one."""
    body, sep, dataset = spec.removeprefix(PREFIX).rpartition("#")
    if not sep or not body or not dataset:
        raise UsageError(f"{spec!r}: expected git+URL[@REV]#NAME[@VERSION]")
    scheme = body.find("://")
    if scheme >= 0:
        path_start = body.find("/", scheme + 3)
    elif ":" in body.split("/", 1)[0]:  # scp-like user@host:path
        path_start = body.find(":")
    else:  # a plain path
        path_start = 0
    at = body.rfind("@")
    url, rev = (body[:at], body[at + 1 :]) if at > max(path_start, 0) else (body, "HEAD")
    if not url or not rev:
        raise UsageError(f"{spec!r}: expected git+URL[@REV]#NAME[@VERSION]")
    return RemoteSpec(url, rev, dataset)


def remote_lock(spec: str, cache_dir: Path) -> tuple[RemoteSpec, str, RegistryLock]:
    """The lock ``spec`` names, read from its registry: the spec, the commit, the lock."""
    parsed = parse_remote(spec)
    url = shown(check_url(parsed.url))
    name, version = parse_spec(parsed.dataset)
    bare = cache_for(cache_dir, url)
    commit = fetch(bare, url, parsed.rev)
    return parsed, commit, registry_lock(bare, commit, url, name, version)
