"""What test modules share: the repository's path, real Git, lock builders, the demo project.

Test modules import these from here rather than from each other or from a conftest.
"""

from __future__ import annotations

import socket
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

from click.testing import Result

from vxds.locks.format import Header
from vxds.locks.splits import Split
from vxds.locks.store import Lock
from vxds.resource import Resource

REPO = Path(__file__).resolve().parents[1]
# Real BIDS datasets from the BIDS project's example collection (see its README there).
BIDS_EXAMPLES = REPO / "tests/data/realdata/bids-examples"
GIT_ENV = {
    "GIT_AUTHOR_NAME": "Test",
    "GIT_AUTHOR_EMAIL": "test@example.com",
    "GIT_COMMITTER_NAME": "Test",
    "GIT_COMMITTER_EMAIL": "test@example.com",
}

Invoke = Callable[..., Result]
T1 = "sample-data/basel/sub-BS01/ses-01/anat/sub-BS01_ses-01_T1w"
REMOVED_T2 = "sample-data/basel/sub-BS08/ses-01/anat/sub-BS08_ses-01_T2w.nii.gz"


def git(cwd: Path, *args: str) -> str:
    return subprocess.run(
        ["git", *args],
        cwd=cwd,
        check=True,
        capture_output=True,
        text=True,
        env={**GIT_ENV, "PATH": "/usr/bin:/bin", "HOME": str(cwd)},
    ).stdout


def commit_all(root: Path, message: str) -> str:
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", message)
    return git(root, "rev-parse", "HEAD").strip()


EXAMPLE_TOOL = '[tool.vxds]\nmanifest = "datasets.yaml"\nlocks = "locks"\nsource = "./sample-data"\n'


def example_project(root: Path, *, pyproject: str, locks: bool, ignore: str = ".vxds/\n") -> Path:
    """A copy of the repository's example project (manifest, recipes, sample data, and its
    committed locks when ``locks``) at ``root``, committed in a new Git repository."""
    import shutil

    root.mkdir()
    for name in ("datasets.yaml", ".gitattributes"):
        shutil.copy(REPO / name, root / name)
    for name in ("recipes", "sample-data", *(("locks",) if locks else ())):
        shutil.copytree(REPO / name, root / name)
    (root / "pyproject.toml").write_text(pyproject)
    (root / ".gitignore").write_text(ignore)
    git(root, "init", "-q", "-b", "main")
    commit_all(root, "example project")
    return root


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


DEMO_RECIPE = """\
import vxds


@vxds.recipe()
def demo(client, test_subject="02"):
    splits = {"train": [], "test": []}
    for volume in client.query(type="Volume"):
        split = "test" if volume.attrs["subject"] == test_subject else "train"
        splits[split].append(volume)
    return splits
"""

DEMO_MANIFEST = """\
- name: demo
  version: 1
  description: T2w volumes of three subjects.
  script_location: ./recipes/demo.py
  group_by: attrs.subject
"""


# --- small locks built in memory -----------------------------------------------------------


def make_resource(rid: str, version: int = 1, **attrs: Any) -> Resource:
    return Resource(rid, version, type="Volume" if rid < "n" else "Mask", attrs=attrs)


def make_split(*resources: Resource) -> Split:
    return Split.from_lines([r.canonical_line() for r in sorted(resources, key=lambda r: r.id)])


def make_lock(version: int = 1, **splits: Split) -> Lock:
    header = Header(
        name="d",
        version=version,
        script="r.py",
        entrypoint=None,
        params={},
        script_digest="x:0",
        entry_digest="x:0",
        source=".",
        snapshot="x:0",
        splits={name: (split.count, split.digest) for name, split in splits.items()},
    )
    return Lock(header, dict(splits))


R = make_resource
OLD = make_lock(
    train=make_split(R("a", site="basel"), R("b"), R("c"), R("m"), R("s", site="basel")),
    test=make_split(R("t"), R("u")),
)
NEW = make_lock(
    train=make_split(R("a", site="zurich"), R("b", 2), R("n"), R("s", site="basel"), R("u")),
    test=make_split(R("t"), R("m")),
    val=make_split(R("v")),
)
