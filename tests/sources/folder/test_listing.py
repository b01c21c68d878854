"""vxds/sources/folder/listing.py: no dot-files, but a dataset root's .bidsignore and a Zarr's."""

from __future__ import annotations

from pathlib import Path

from vxds.sources.folder.listing import listing


def _names(folder: Path, rel: str = "") -> tuple[list[str], list[str]]:
    (names, subdirs), _ = listing(rel, str(folder), None)
    return sorted(names), sorted(subdirs)


def test_a_bidsignore_is_seen_only_beside_a_dataset_description(tmp_path: Path) -> None:
    (tmp_path / ".bidsignore").write_text("extra\n")
    (tmp_path / ".DS_Store").write_bytes(b"\0")
    (tmp_path / ".git").mkdir()
    assert _names(tmp_path) == ([], [])
    (tmp_path / "dataset_description.json").write_text("{}")
    assert _names(tmp_path) == ([".bidsignore", "dataset_description.json"], [])
    (tmp_path / ".bidsignore").unlink()
    (tmp_path / ".bidsignore").mkdir()  # a folder of that name is no ignore file
    assert _names(tmp_path) == (["dataset_description.json"], [])


def test_a_zarr_lists_its_dot_files(tmp_path: Path) -> None:
    store = tmp_path / "sub-01_SPIM.ome.zarr"
    (store / "0").mkdir(parents=True)
    (store / ".zattrs").write_text("{}")
    assert _names(store, "sub-01_SPIM.ome.zarr/") == ([".zattrs"], ["0"])
