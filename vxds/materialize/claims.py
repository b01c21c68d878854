"""Which paths of OUT a run claims, the folders on the way to them, and temporary names.

Every target is claimed once, before anything is written: it must be a relative path valid
as a resource id, not one of vxds' own names, and not claimed already (by another resource,
or as a folder of files placed inside it). The folders above a target are created or
checked once each; a symlink or a file there is refused, so nothing is written outside OUT.
Bytes are written under temporary names in ``OUT/.vxds-tmp``, made fresh for each run.
"""

from __future__ import annotations

import os
import shutil
import threading
from collections.abc import Iterable
from pathlib import Path

from vxds.errors import VxdsError
from vxds.materialize.durable import check_not_symlink, write_error
from vxds.materialize.receipt import OWN, TMP_DIR
from vxds.resource import InvalidResource, check_id


def _plain_path(rel: str) -> bool:
    """A quick yes for ordinary relative paths; anything else goes through ``check_id``."""
    return (
        rel.isprintable()
        and rel[:1] not in ("", "/", ".")
        and "\\" not in rel
        and "//" not in rel
        and "/." not in rel
        and rel[-1] != "/"
        and rel[1:2] != ":"
    )


def _rel_problem(rel: str) -> str | None:
    """Why ``rel`` cannot be a path in OUT (not valid as an id, or one of vxds' own names)."""
    try:
        if not _plain_path(rel):
            check_id(rel)
    except InvalidResource as exc:
        return f"cannot place it at {rel!r}: {exc}"
    if rel.split("/", 1)[0] in OWN:
        return f"{rel!r} is a name vxds keeps for itself in OUT"
    return None


def _fresh_folder(path: Path) -> None:
    """An empty temporary folder: a killed run's leftovers removed, a symlink refused."""
    check_not_symlink(path)
    try:
        if path.is_dir():
            shutil.rmtree(path)  # never follows a symlink inside it
        elif os.path.lexists(path):
            os.unlink(path)
        os.mkdir(path)
    except OSError as exc:
        raise write_error(path, exc) from None


class Claims:
    """The paths one run places files at; thread-safe."""

    def __init__(self, out: Path) -> None:
        self._out_str = str(out)
        self._claimed: dict[str, str] = {}  # path -> what claimed it (for clear collisions)
        self._claimed_dirs: set[str] = set()
        self._safe_dirs: set[str] = {""}
        self._lock = threading.Lock()
        self._counter = 0
        self.tmp = out / TMP_DIR
        _fresh_folder(self.tmp)

    def claim(self, rel: str, rid: str | None, module: str) -> str | None:
        """None when ``OUT/rel`` is now this resource's (or generated file's); else why not."""
        what = f"{module}: {rid}" if rid is not None else f"{module}: generated file"
        problem = _rel_problem(rel)
        if problem is not None:
            return problem
        with self._lock:
            clash = self._claimed.get(rel)
            if clash is None and rel in self._claimed_dirs:
                clash = "files placed inside it"
            new_dirs = self._new_parents(rel) if clash is None else []
            if new_dirs and new_dirs[-1] in self._claimed:
                clash = self._claimed[new_dirs[-1]]
            if clash is not None:
                return f"{what} and {clash} would both be placed at {rel}"
            self._claimed[rel] = what
            self._claimed_dirs.update(new_dirs)
        return None

    def _new_parents(self, rel: str) -> list[str]:
        """The folders above ``rel`` not yet holding a claimed file, nearest first; stops at
        the first one that does (its own folders do too), or at a claimed file (last).

        A folder holding claimed files is never itself a claimed file, and its folders all
        hold claimed files: so only the new folders need checking against the claims."""
        found = []
        folder = rel
        while (cut := folder.rfind("/")) > 0:
            folder = folder[:cut]
            if folder in self._claimed_dirs:
                break
            found.append(folder)
            if folder in self._claimed:
                break
        return found

    def make_folders(self, rels: Iterable[str]) -> None:
        """Create the folders above every claimed ``rel`` at once, parents first (sorted),
        one ``mkdir`` each. A folder that cannot be made (or is a symlink, or a file) is left
        out: ``parent`` meets it again for each file below it and reports it there."""
        wanted: set[str] = set()
        for rel in rels:
            folder = rel
            while (cut := folder.rfind("/")) > 0:
                folder = folder[:cut]
                if folder in wanted or folder in self._safe_dirs:
                    break
                wanted.add(folder)
        failed: list[str] = []
        for folder in sorted(wanted):  # a parent sorts before its subfolders
            if any(folder.startswith(bad) for bad in failed):
                continue
            try:
                self._make_folder(folder)
            except (OSError, VxdsError):
                failed.append(folder + "/")

    def parent(self, rel: str) -> str:
        """Create (or check) the folders above ``OUT/rel``; refuse symlinks and files there."""
        folder, _, _ = rel.rpartition("/")
        if folder not in self._safe_dirs:
            parts = folder.split("/")
            for i in range(1, len(parts) + 1):
                sub = "/".join(parts[:i])
                if sub not in self._safe_dirs:
                    self._make_folder(sub)
        return f"{self._out_str}/{rel}"

    def _make_folder(self, sub: str) -> None:
        path = f"{self._out_str}/{sub}"
        try:
            os.mkdir(path)
        except FileExistsError:
            if os.path.islink(path) or not os.path.isdir(path):
                kind = "a symlink" if os.path.islink(path) else "not a folder"
                raise VxdsError(f"OUT/{sub} is {kind}; refusing to write through it") from None
        with self._lock:
            self._safe_dirs.add(sub)

    def tmp_name(self, rel: str) -> str:
        """A temporary path no other placement of this run uses."""
        with self._lock:
            self._counter += 1
            n = self._counter
        return f"{self.tmp}/{n}-{rel.rsplit('/', 1)[-1][:80]}"

    def remove_tmp(self) -> None:
        shutil.rmtree(self.tmp, ignore_errors=True)
