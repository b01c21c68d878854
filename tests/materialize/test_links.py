"""New links made a batch at a time (``vxds.materialize.links``): the same files, entries and
receipt as the general path, and every file the hash cache does not vouch for handed back to it."""

from __future__ import annotations

import errno
import os
from collections.abc import Callable
from pathlib import Path

import pytest

from vxds.materialize import Report, Target, materialize, open_target_source, transfer
from vxds.materialize.check import check_output
from vxds.materialize.receipt import JOURNAL, RECEIPT, read_receipt

MakeTarget = Callable[..., Target]
MASK = "basel/derivatives/lesions/sub-BS01/ses-01/anat/sub-BS01_ses-01_desc-lesion_mask.nii.gz"
T2W = "basel/sub-BS02/ses-01/anat/sub-BS02_ses-01_T2w.nii.gz"


@pytest.fixture
def cache(sample: Path, target: MakeTarget) -> Path:
    """A cache folder whose hash cache holds every sample file, as ``vxds lock`` leaves it."""
    folder = sample / ".vxds"
    source = open_target_source(target("viseg_training", 1), folder)
    assert source is not None
    source.scan()  # hashes every file of the source and saves the hash cache
    assert (folder / "hashes.json").is_file()
    return folder


@pytest.fixture
def general(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The ids the general path links (``link_file`` as ``place`` calls it), in order."""
    seen: list[str] = []
    real = transfer.link_file

    def spy(resource: object, *args: object, **kwargs: object) -> object:
        seen.append(getattr(resource, "id", ""))
        return real(resource, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr("vxds.materialize.place.link_file", spy)
    return seen


def _run(t: Target, out: Path, cache: Path | None, mode: str = "hardlink") -> Report:
    return materialize(t, out, ["files"], mode=mode, jobs=1, cache_dir=cache)


def test_vouched_links_skip_the_general_path_and_write_the_same_receipt(
    sample: Path, target: MakeTarget, cache: Path, general: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    t = target("viseg_training", 1)
    fast = _run(t, sample / "fast", cache)
    assert (fast.ok, fast.placed, fast.notices) == (True, 26, [])
    assert general == []  # every file was linked by the Linker
    unknown = _run(t, sample / "unknown", None)  # no hash cache: the Linker hashes each file
    assert (unknown.ok, unknown.placed, general) == (True, 26, [])
    monkeypatch.setattr("vxds.materialize.place.Linker.usable", staticmethod(lambda placer: False))
    slow = _run(t, sample / "slow", cache)  # the general path: each file hashed, then linked
    assert len(general) == 26
    assert (sample / "fast" / RECEIPT).read_bytes() == (sample / "slow" / RECEIPT).read_bytes()
    assert (sample / "unknown" / RECEIPT).read_bytes() == (sample / "slow" / RECEIPT).read_bytes()
    placed, original = sample / "fast/train" / MASK, sample / "sample-data" / MASK
    assert placed.stat().st_ino == original.stat().st_ino
    assert not (sample / "fast" / JOURNAL).exists()
    assert check_output(sample / "fast") == []
    assert slow.placed == 26


def test_a_source_file_changed_since_it_was_hashed_is_checked_again(
    sample: Path, target: MakeTarget, cache: Path, general: list[str]
) -> None:
    changed = sample / "sample-data" / MASK
    changed.write_bytes(bytes(b ^ 1 for b in changed.read_bytes()))  # same size, other bytes
    touched = sample / "sample-data" / T2W
    st = touched.stat()
    os.utime(touched, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))  # same bytes
    report = _run(target("viseg_training", 1), sample / "out", cache)
    assert general == [MASK]  # T2W hashed by the Linker and linked; MASK handed back, refused
    assert [(f.resource, f.message) for f in report.failures] == [
        (MASK, "content does not match the locked hash " + _locked(target, MASK))
    ]
    assert not (sample / "out/train" / MASK).exists()
    assert (sample / "out/train" / T2W).stat().st_ino == touched.stat().st_ino
    assert report.placed == 25


def _locked(target: MakeTarget, rid: str) -> str:
    split = target("viseg_training", 1).splits["train"]
    (found,) = [r.hash for r in split.resources() if r.id == rid]
    assert found is not None
    return found


def test_a_source_file_linked_out_of_the_tree_is_refused(
    sample: Path, target: MakeTarget, cache: Path, tmp_path: Path
) -> None:
    secret = tmp_path / "secret.nii.gz"
    source_file = sample / "sample-data" / MASK
    secret.write_bytes(source_file.read_bytes())
    source_file.unlink()
    source_file.symlink_to(secret)
    report = _run(target("viseg_training", 1), sample / "out", cache)
    assert [f.resource for f in report.failures] == [MASK]
    assert "outside the source folder" in report.failures[0].message
    assert not os.path.lexists(sample / "out/train" / MASK)


def test_a_symlinked_folder_in_out_is_not_linked_through(
    sample: Path, target: MakeTarget, cache: Path
) -> None:
    out = sample / "out"
    elsewhere = sample / "elsewhere"
    (out / "train").mkdir(parents=True)
    elsewhere.mkdir()
    (out / "train/basel").symlink_to(elsewhere)
    t = target("viseg_training", 1)
    below = sorted(r.id for r in t.splits["train"].resources() if r.id.startswith("basel/"))
    report = _run(t, out, cache)
    assert sorted(f.resource or "" for f in report.failures) == below
    assert all(
        f.message == "OUT/train/basel is a symlink; refusing to write through it" for f in report.failures
    )
    assert list(elsewhere.iterdir()) == []
    assert report.placed == 26 - len(below)


def test_symlinks_point_at_the_source_files(sample: Path, target: MakeTarget, cache: Path) -> None:
    report = _run(target("viseg_training", 1), sample / "soft", cache, mode="symlink")
    assert (report.ok, report.placed) == (True, 26)
    link = sample / "soft/train" / MASK
    assert Path(os.readlink(link)) == (sample / "sample-data" / MASK).resolve()
    assert check_output(sample / "soft") == []


def test_a_file_system_that_cannot_link_copies_as_before(
    sample: Path, target: MakeTarget, cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def cross_device(src: object, dst: object) -> None:
        raise OSError(errno.EXDEV, os.strerror(errno.EXDEV))

    monkeypatch.setattr(os, "link", cross_device)
    report = _run(target("viseg_training", 1), sample / "out", cache)
    assert (report.ok, report.placed) == (True, 26)
    assert report.notices == [
        "hardlink was not possible for 26 file(s) (invalid cross-device link); copied them"
    ]
    assert check_output(sample / "out") == []


def test_a_rerun_finds_the_links_in_place(sample: Path, target: MakeTarget, cache: Path) -> None:
    t = target("viseg_training", 1)
    _run(t, sample / "out", cache)
    first = read_receipt(sample / "out")
    again = _run(t, sample / "out", cache)
    assert (again.placed, again.unchanged) == (0, 26)
    assert read_receipt(sample / "out") == first


def test_the_command_pauses_the_cycle_collector_while_it_runs(
    sample: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import gc

    from click.testing import CliRunner

    import vxds.materialize
    from vxds.cli.main import cli

    seen: list[bool] = []
    real = vxds.materialize.materialize

    def spy(*args: object, **kwargs: object) -> Report:
        seen.append(gc.isenabled())
        return real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(vxds.materialize, "materialize", spy)
    lockfile = "locks/viseg_training/1/resources.test.jsonl"
    argv = ["materialize", "-f", lockfile, "-o", "out", "-m", "files", "--source", "./sample-data", "-q"]
    monkeypatch.chdir(sample)
    result = CliRunner().invoke(cli, argv, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert seen == [False]
    assert gc.isenabled()
    assert check_output(sample / "out") == []


def test_a_file_the_cache_does_not_know_is_linked_only_with_the_stat_it_was_found_with(
    sample: Path, target: MakeTarget, general: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from vxds.materialize import links

    real = links.hash_file_key

    def moved(path: str) -> tuple[str, tuple[int, int, int]]:
        digest, (size, mtime, inode) = real(path)
        return digest, (size, mtime + 1, inode)  # as if written between the stat and the read

    monkeypatch.setattr(links, "hash_file_key", moved)
    report = _run(target("viseg_training", 1), sample / "out", None)
    assert (report.ok, report.placed) == (True, 26)
    assert len(general) == 26  # each handed back to the general path, which checks it again
