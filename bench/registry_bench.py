"""``vxds import`` of one 1,000,000-resource sharded lock from a registry that holds another
large dataset: what the partial fetch brings, against a full ``git fetch --depth 1`` of the
same commit (what the import did before) in the same run.

Locks are generated (``shard_bench.line``, about 445 bytes a line) and written directly over
a one-resource ``vxds lock`` (``shard_readers.put``); the registry is a bare repository with
``uploadpack.allowFilter`` set, reached by a ``file://`` URL.

Targets (issue 17): the import fetches none of the other dataset's blobs, and no blob but the
imported lock folder's, the manifest and pyproject.toml (trees are fetched whole: they are
what lists the folders). Sizes are of the cache on disk (packed, compressed).

    python bench/registry_bench.py [--resources 1000000] [--other 200000] [--strict]
"""

from __future__ import annotations

import subprocess
from collections.abc import Sequence
from pathlib import Path

import orjson
from benchlib import Report, finish, fmt_mib, fmt_s, parser, run, vxds_argv, workdir
from shard_bench import line
from shard_readers import GIT_ENV, RECIPE, git, put

from vxds.locks.shards import RULE

MANIFEST = (
    "- name: big\n  version: 1\n  script_location: ./recipes/big.py\n"
    "- name: other\n  version: 1\n  script_location: ./recipes/big.py\n"
)


def registry(root: Path, resources: int, other: int) -> Path:
    """The registry's working tree with big@1 and other@1, committed; its bare repository."""
    (root / "recipes").mkdir(parents=True)
    (root / "source").mkdir()
    (root / "source" / "README.txt").write_text("one file\n")
    (root / "pyproject.toml").write_text('[tool.vxds]\nsource = "./source"\n')
    (root / "recipes" / "big.py").write_text(RECIPE)
    (root / "datasets.yaml").write_text(MANIFEST)
    (root / ".gitignore").write_text(".vxds/\n")
    run([*vxds_argv(), "lock", "--all", "--quiet", "--root", str(root)]).check()
    put(root / "locks/big/1", lines(resources, "sub"), RULE)
    put(root / "locks/other/1", lines(other, "oth"), RULE)
    git(root, "init", "-q", "-b", "main")
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "registry")
    bare = root.parent / "registry.git"
    git(root.parent, "clone", "-q", "--bare", str(root), str(bare))
    git(bare, "config", "uploadpack.allowFilter", "true")
    return bare


def lines(n: int, prefix: str) -> list[bytes]:
    """``n`` generated lock lines (newline-terminated), sorted by id."""
    return sorted((line(i, prefix=prefix) for i in range(n)), key=lambda b: orjson.loads(b)["id"])


def consumer(root: Path) -> Path:
    root.mkdir()
    (root / "pyproject.toml").write_text('[tool.vxds]\nmanifest = "datasets.yaml"\n')
    (root / "datasets.yaml").write_text("# imported\n")
    git(root, "init", "-q", "-b", "main")
    return root


def blobs(repo: Path, *paths: str) -> dict[str, int]:
    """The blobs under ``paths`` at HEAD (every blob with no path): oid -> size."""
    out = subprocess.run(
        ["git", "ls-tree", "-r", "-l", "HEAD", "--", *paths],
        cwd=repo,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return {f[2]: int(f[3]) for f in (line.split() for line in out.splitlines()) if f[1] == "blob"}


def present(cache: Path) -> set[str]:
    out = subprocess.run(
        ["git", "cat-file", "--batch-all-objects", "--batch-check=%(objectname) %(objecttype)"],
        cwd=cache,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return {f[0] for f in (line.split() for line in out.splitlines()) if f[1] == "blob"}


def size_mib(folder: Path) -> float:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file()) / (1 << 20)


def main(argv: Sequence[str] | None = None) -> int:
    p = parser(__doc__ or "")
    p.add_argument("--resources", type=int, default=1_000_000)
    p.add_argument("--other", type=int, default=200_000)
    args = p.parse_args(argv)
    report = Report(
        f"vxds import of {args.resources:,} resources beside {args.other:,} others",
        ["fetch", "seconds", "peak MiB", "cache MiB", "blobs", "other's blobs"],
    )
    with workdir(args.workdir, args.keep, "vxds-registry-bench-") as scratch:
        bare = registry(scratch / "registry", args.resources, args.other)
        big, other = blobs(bare, "locks/big/1"), blobs(bare, "locks/other/1")
        training = consumer(scratch / "training")
        imported = run([*vxds_argv(), "import", bare.as_uri(), "big@1", "-q"], cwd=training).check()
        (cache,) = (training / ".vxds/registry").glob("*.git")
        have = present(cache)
        report.row(
            "vxds import (partial)", fmt_s(imported.seconds), fmt_mib(imported.peak_mib),
            f"{size_mib(cache):.1f}", len(have), len(have & set(other)),
        )  # fmt: skip
        full = scratch / "full.git"
        git(scratch, "init", "-q", "--bare", str(full))
        fetched = run(
            ["git", "fetch", "-q", "--depth", "1", bare.as_uri(), "+HEAD:refs/x"], cwd=full, env=GIT_ENV
        )
        full_have = present(full)
        report.row(
            "git fetch --depth 1 (baseline)", fmt_s(fetched.check().seconds), fmt_mib(fetched.peak_mib),
            f"{size_mib(full):.1f}", len(full_have), len(full_have & set(other)),
        )  # fmt: skip
        own = sum(big.values()) / (1 << 20)
        report.notes.append(
            f"big@1's files: {len(big)} blobs, {own:.1f} MiB; other@1's: {len(other)} blobs, "
            f"{sum(other.values()) / (1 << 20):.1f} MiB (uncompressed)"
        )
        report.target(
            "none of the other dataset's blobs", f"{len(have & set(other))} fetched", not have & set(other)
        )
        expected = set(big) | set(blobs(bare, "datasets.yaml", "pyproject.toml"))
        extra = len(have - expected)
        report.target(
            "blobs fetched: the dataset's, the manifest, pyproject.toml", f"{extra} others", extra == 0
        )
    return finish(report, args.strict)


if __name__ == "__main__":
    raise SystemExit(main())
