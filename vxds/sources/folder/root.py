"""The folder a folder source's URL names, and the paths in it, without importing the source.

``vxds verify`` needs only this to check a plain file's bytes (or that a local source is
still there); the folder source itself, with its DICOM, BIDS and cache modules, is
imported when a resource needs it.
"""

from __future__ import annotations

import os
from pathlib import Path

from vxds.errors import SourceError


def folder_path(url: str, base: Path) -> Path:
    """The folder a ``./dir``, ``/abs/dir`` or ``file://`` URL names."""
    if url.startswith("file://"):
        url = url[len("file://") :]
    elif url.startswith("file:"):
        url = url[len("file:") :]
    path = Path(url)
    return path if path.is_absolute() else base / path


def folder_root(url: str, base: Path) -> Path:
    """``folder_path``, or the ``SourceError`` opening the source gives when it is not a folder."""
    root = folder_path(url, base)
    if not root.is_dir():
        raise SourceError(f"source {url!r}: folder {root} does not exist")
    return root


def shown(rel: str) -> str:
    """A path as one line of a message: quoted, escapes visible; bytes when not UTF-8."""
    try:
        rel.encode("utf-8")
    except UnicodeEncodeError:  # os.scandir's surrogate escapes: show the bytes on disk
        return repr(os.fsencode(rel))
    return repr(rel)


def leads_out(path: str, real_root: str) -> str | None:
    """Where ``path`` leads when it is a symbolic link resolving outside ``real_root``."""
    if not os.path.islink(path):
        return None
    real = os.path.realpath(path)
    if real.startswith(real_root + os.sep):
        return None
    try:
        return os.readlink(path)
    except OSError:
        return real
