"""``load_lock("git+URL@REV#NAME@V")``, the partial fetch of one dataset's files, and a
registry whose ``[tool.vxds]`` moves its manifest and locks: real Git, local bare repos."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

import vxds
from tests.api.conftest import sharded_lock
from tests.helpers import REPO, Invoke, commit_all, git
from tests.registry.conftest import Registry
from vxds.errors import UsageError
from vxds.registry.fetch import RegistryError
from vxds.registry.remote import RemoteSpec, parse_remote


@pytest.mark.parametrize(
    ("spec", "parsed"),
    [
        ("git+file:///srv/reg.git@v3#viseg@2", RemoteSpec("file:///srv/reg.git", "v3", "viseg@2")),
        ("git+file:///srv/reg.git#viseg", RemoteSpec("file:///srv/reg.git", "HEAD", "viseg")),
        ("git+/srv/reg@feature/x#a@1", RemoteSpec("/srv/reg", "feature/x", "a@1")),
        ("git+ssh://git@host/org/reg.git#a", RemoteSpec("ssh://git@host/org/reg.git", "HEAD", "a")),
        ("git+ssh://git@host/org/reg.git@v1#a", RemoteSpec("ssh://git@host/org/reg.git", "v1", "a")),
        ("git+git@host:org/reg.git#a", RemoteSpec("git@host:org/reg.git", "HEAD", "a")),
        ("git+https://host/org/reg@0123abc#a@3", RemoteSpec("https://host/org/reg", "0123abc", "a@3")),
    ],
)
def test_a_git_spec_is_url_rev_and_dataset(spec: str, parsed: RemoteSpec) -> None:
    assert parse_remote(spec) == parsed


@pytest.mark.parametrize("spec", ["git+file:///srv/reg.git", "git+#a", "git+/srv/reg@#a", "git+/srv/reg#"])
def test_a_malformed_git_spec_is_refused(spec: str) -> None:
    with pytest.raises(UsageError, match=r"expected git\+URL\[@REV\]#NAME\[@VERSION\]"):
        parse_remote(spec)


def test_load_lock_reads_a_registry_lock_without_importing_it(registry: Registry, consumer: Path) -> None:
    local = vxds.load_lock("viseg_training@2", root=REPO)
    by_url = vxds.load_lock(f"git+{registry.bare.as_uri()}@v1#viseg_training@2")
    assert by_url.digest == local.digest
    assert [r.id for r in by_url] == [r.id for r in local]
    by_path = vxds.load_lock(f"git+{registry.bare}@main#viseg_training")  # a plain path; the highest
    assert by_path.header.key == "viseg_training@2"
    assert vxds.load_lock(f"git+{registry.bare}#all_basel_data@1").header.key == "all_basel_data@1"
    assert (consumer / "datasets.yaml").read_text() == "# training datasets, imported from the registry\n\n"
    assert not (consumer / "locks").exists()  # nothing imported
    assert list((consumer / ".vxds/registry").glob("*.git"))  # the import cache, reused


def test_load_lock_from_a_registry_outside_any_project(
    registry: Registry, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    outside = tmp_path / "notebook"
    outside.mkdir()
    monkeypatch.chdir(outside)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    lock = vxds.load_lock(f"git+{registry.bare.as_uri()}@v1#clinical_cohort@1")
    assert lock.digest == vxds.load_lock("clinical_cohort@1", root=REPO).digest
    assert list((tmp_path / "cache/vxds/registry").glob("*.git"))
    assert not (outside / ".vxds").exists()


def test_load_lock_from_a_registry_refuses_credentials_and_names_a_bad_rev(
    registry: Registry, consumer: Path
) -> None:
    with pytest.raises(
        UsageError, match=r"registry URL https://\.\.\.@example\.org: must not carry credentials"
    ):
        vxds.load_lock("git+https://me:token@example.org/reg.git@v1#viseg_training@1")
    with pytest.raises(RegistryError, match=r"cannot fetch 'v9'"):
        vxds.load_lock(f"git+{registry.bare}@v9#viseg_training@1")


# --- a partial fetch: only the imported dataset's files -------------------------------------

MANIFEST = """\
- name: alpha
  version: 1
  script_location: ./recipes/r.py
- name: beta
  version: 1
  script_location: ./recipes/r.py
"""


def _two_dataset_registry(tmp_path: Path, *, allow_filter: bool, layout: str = "") -> Path:
    """A registry of two sharded datasets, pushed to a bare repository; its URL."""
    work, bare = tmp_path / "two", tmp_path / "two.git"
    top = work / layout if layout else work
    sharded_lock(top / "locks/alpha/1", name="alpha")
    sharded_lock(top / "locks/beta/1", name="beta")
    (top / "datasets.yaml").write_text(MANIFEST)
    (top / "recipes").mkdir()
    (top / "recipes/r.py").write_text("import vxds\n")
    if layout:
        (work / "pyproject.toml").write_text(
            f'[tool.vxds]\nmanifest = "{layout}/datasets.yaml"\nlocks = "{layout}/locks"\n'
        )
    git(work, "init", "-q", "-b", "main")
    commit_all(work, "two datasets")
    git(tmp_path, "init", "-q", "--bare", "-b", "main", str(bare))
    if allow_filter:  # what a server must allow for a partial fetch over file:// (and any transport)
        git(bare, "config", "uploadpack.allowFilter", "true")
    git(work, "push", "-q", str(bare), "main")
    return bare


def _blobs(repo: Path, *paths: str) -> set[str]:
    listed = git(repo, "ls-tree", "-r", "HEAD", "--", *paths)
    return {line.split()[2] for line in listed.splitlines() if line.split()[1] == "blob"}


def _present(cache: Path) -> set[str]:
    """The objects in the cache, listed without fetching any that are missing."""
    out = subprocess.run(
        ["git", "cat-file", "--batch-all-objects", "--batch-check=%(objectname) %(objecttype)"],
        cwd=cache,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return {line.split()[0] for line in out.splitlines() if line.split()[1] == "blob"}


def test_an_import_fetches_only_that_datasets_files(tmp_path: Path, consumer: Path, invoke: Invoke) -> None:
    bare = _two_dataset_registry(tmp_path, allow_filter=True)
    result = invoke("import", bare.as_uri(), "alpha@1")
    assert result.exit_code == 0, result.output
    (cache,) = (consumer / ".vxds/registry").glob("*.git")
    present = _present(cache)
    alpha, beta = _blobs(bare, "locks/alpha"), _blobs(bare, "locks/beta")
    assert len(beta) > 3  # beta's shards and header
    assert present == alpha | _blobs(bare, "datasets.yaml")  # nothing else: beta, recipes absent
    assert present.isdisjoint(beta)
    assert vxds.load_lock("alpha@1").digest == vxds.load_lock(tmp_path / "two/locks/alpha/1").digest
    assert invoke("verify", "--no-exec").exit_code == 0  # the check reads alpha's files only
    assert _present(cache).isdisjoint(beta)


def test_a_server_that_refuses_filters_sends_everything_and_the_import_still_works(
    tmp_path: Path, consumer: Path, invoke: Invoke
) -> None:
    bare = _two_dataset_registry(tmp_path, allow_filter=False)
    result = invoke("import", str(bare), "beta")
    assert result.exit_code == 0, result.output
    (cache,) = (consumer / ".vxds/registry").glob("*.git")
    assert _present(cache) == _blobs(bare)  # the whole tree of that commit
    assert vxds.load_lock("beta@1").digest == vxds.load_lock(tmp_path / "two/locks/beta/1").digest


def test_a_registry_with_its_own_layout_is_followed(tmp_path: Path, consumer: Path, invoke: Invoke) -> None:
    bare = _two_dataset_registry(tmp_path, allow_filter=True, layout="data/registry")
    result = invoke("import", bare.as_uri(), "beta@1")
    assert result.exit_code == 0, result.output
    assert (consumer / "locks/beta/1/lock.toml").is_file()
    remote = vxds.load_lock(f"git+{bare.as_uri()}#alpha@1")
    assert remote.digest == vxds.load_lock(tmp_path / "two/data/registry/locks/alpha/1").digest
    (cache,) = (consumer / ".vxds/registry").glob("*.git")
    assert _present(cache).isdisjoint(_blobs(bare, "data/registry/recipes"))


@pytest.mark.parametrize("locks", ["../elsewhere", "/abs/locks"])
def test_a_registry_layout_outside_the_repository_is_refused(
    tmp_path: Path, consumer: Path, invoke: Invoke, locks: str
) -> None:
    bare = _two_dataset_registry(tmp_path, allow_filter=True)
    work = tmp_path / "two"
    (work / "pyproject.toml").write_text(f'[tool.vxds]\nlocks = "{locks}"\n')
    commit_all(work, "move the locks out")
    git(work, "push", "-q", str(bare), "main")
    with pytest.raises(
        RegistryError, match=f"\\[tool.vxds\\] locks must be a path inside the repository, got '{locks}'"
    ):
        vxds.load_lock(f"git+{bare}#alpha@1")
