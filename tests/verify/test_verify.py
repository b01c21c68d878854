"""vxds/verify.py: every check as findings with stable codes, file and line."""

from __future__ import annotations

import dataclasses
import os
import shutil
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vxds.hashing import digest_bytes
from vxds.locks.splits import Split
from vxds.locks.status import STALE, lock_status
from vxds.locks.store import Lock, read_lock, write_lock
from vxds.project.config import load_config
from vxds.project.manifest import Entry, load_manifest
from vxds.recipes.resolver import Resolver
from vxds.resource import InvalidResource, validate_record
from vxds.verify import Sample, valid_block, verify
from vxds.verify.findings import ERROR, SKIPPED, WARNING, Finding

LOCK = Path("locks/demo/1")


def _entry(project: Path) -> Entry:
    config = load_config(project)
    return load_manifest(config.manifest, default_source=config.source).find("demo")


@pytest.fixture
def locked(project: Path) -> Path:
    config = load_config(project)
    write_lock(Resolver(config).resolve(_entry(project)), project / LOCK)
    return project


def _verify(project: Path, **options: object) -> list[Finding]:
    return verify(load_config(project), **options)  # type: ignore[arg-type]


def _codes(findings: list[Finding]) -> list[str]:
    return [f.code for f in findings]


def _edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new))


def _rewrite(project: Path, lines: dict[str, list[bytes]]) -> None:
    """Replace the demo lock's splits with these raw lines, with every digest made to match."""
    lock = read_lock(project / LOCK)
    splits = {name: Split.from_bytes(b"".join(line + b"\n" for line in body)) for name, body in lines.items()}
    header = dataclasses.replace(lock.header, splits={n: (s.count, s.digest) for n, s in splits.items()})
    shutil.rmtree(project / LOCK)
    write_lock(Lock(header, splits), project / LOCK)


def _lines(project: Path, split: str) -> list[bytes]:
    return (project / LOCK / f"resources.{split}.jsonl").read_bytes().splitlines()


def test_a_fresh_lock_has_no_findings(locked: Path) -> None:
    assert _verify(locked) == []
    assert _verify(locked, no_exec=True, data=True, reproduce=True) == [
        Finding(
            "VX603", SKIPPED, "not re-run: --no-exec runs no recipe code", "demo@1", "locks/demo/1/lock.toml"
        )
    ]


def test_missing_lock(project: Path) -> None:
    assert _verify(project) == [
        Finding("VX201", ERROR, "no lock at locks/demo/1; run 'vxds lock demo@1'", "demo@1", "locks/demo/1")
    ]


def test_orphan_lock_is_a_warning_and_still_checked(locked: Path) -> None:
    shutil.copytree(locked / LOCK, locked / "locks" / "gone" / "3")
    findings = _verify(locked)
    assert [(f.code, f.severity, f.dataset) for f in findings] == [
        ("VX202", WARNING, "gone@3"),
        ("VX311", ERROR, "gone@3"),  # its header names demo@1
    ]
    assert _verify(locked, specs=["demo"]) == []  # naming datasets leaves orphans alone


@pytest.mark.parametrize(
    ("file", "old", "new", "reason"),
    [
        ("recipes/demo.py", 'test_subject="02"', 'test_subject="03"', "the recipe script"),
        ("datasets.yaml", "group_by: attrs.subject", "group_by: attrs.session", "the manifest entry changed"),
        (
            "datasets.yaml",
            "  group_by:",
            "  params: {test_subject: '03'}\n  group_by:",
            "the recipe params changed",
        ),
    ],
)
def test_stale_agrees_with_lock_status(locked: Path, file: str, old: str, new: str, reason: str) -> None:
    _edit(locked / file, old, new)
    findings = _verify(locked, no_exec=True)
    assert _codes(findings) == ["VX203"]
    assert reason in findings[0].message
    assert findings[0].file == "locks/demo/1/lock.toml"
    assert lock_status(_entry(locked), load_config(locked)).state == STALE


def test_description_change_is_not_stale(locked: Path) -> None:
    _edit(locked / "datasets.yaml", "T2w volumes of three subjects.", "Other words.")
    assert _verify(locked) == []


def test_invalid_manifest_still_checks_the_locks(locked: Path) -> None:
    _edit(locked / "datasets.yaml", "version: 1", "version: one")
    (locked / LOCK / "lock.toml").write_text("format = = 1\n")
    findings = _verify(locked)
    assert [(f.code, f.file, f.line) for f in findings] == [
        ("VX101", "datasets.yaml", 2),
        ("VX301", "locks/demo/1/lock.toml", 1),
    ]
    assert "field 'version' must be an integer" in findings[0].message


def test_missing_script(locked: Path) -> None:
    (locked / "recipes" / "demo.py").unlink()
    findings = _verify(locked)
    assert [(f.code, f.file, f.line) for f in findings] == [("VX102", "datasets.yaml", 1)]


def test_edited_line_is_found_by_its_digest(locked: Path) -> None:
    path = locked / LOCK / "resources.train.jsonl"
    path.write_bytes(path.read_bytes().replace(b'"size":', b'"size":1', 1))
    findings = _verify(locked)
    assert [(f.code, f.file) for f in findings] == [("VX304", "locks/demo/1/resources.train.jsonl")]
    assert findings[0].message == "resources.train.jsonl does not match its digest"


def test_broken_line_is_named_with_its_line(locked: Path) -> None:
    path = locked / LOCK / "resources.train.jsonl"
    lines = path.read_bytes().splitlines()
    lines[1] = lines[1][:-5]
    path.write_bytes(b"\n".join(lines) + b"\n")
    findings = _verify(locked)
    assert [(f.code, f.line) for f in findings] == [("VX304", None), ("VX305", 2)]


@pytest.mark.parametrize(
    ("change", "code", "line"),
    [
        (lambda ls: [ls[1], ls[0]], "VX308", 2),
        (lambda ls: [ls[0], ls[0]], "VX309", 2),
        (lambda ls: [ls[0], b'{"id": "x", "version": 1}'], "VX307", 2),
        (
            lambda ls: [
                ls[0],
                b'{"attrs":{},"hash":null,"id":"z","size":-1,"type":"File","uri":null,"version":1}',
            ],
            "VX306",
            2,
        ),
        (lambda ls: [ls[0], b"not json"], "VX305", 2),
        (lambda ls: [ls[0] + b"," + ls[1]], "VX305", 1),  # two records on one line
        (lambda ls: [ls[0], ls[1].replace(b'"version":', b'"versio":')], "VX306", 2),
        (
            lambda ls: [
                b'{"attrs":{},"hash":null,"id":"../etc/passwd","size":null,"type":"File","uri":null,"version":1}'
            ],
            "VX310",
            1,
        ),
    ],
)
def test_crafted_lines_with_matching_digests(locked: Path, change: object, code: str, line: int) -> None:
    train = _lines(locked, "train")
    _rewrite(locked, {"train": change(train), "test": _lines(locked, "test")})  # type: ignore[operator]
    findings = _verify(locked)
    assert [(f.code, f.file, f.line) for f in findings] == [
        (code, "locks/demo/1/resources.train.jsonl", line)
    ]


def test_unknown_format(locked: Path) -> None:
    _edit(locked / LOCK / "lock.toml", "format = 2", "format = 9")
    findings = _verify(locked)
    assert [(f.code, f.message) for f in findings] == [
        ("VX302", "lock.toml has format 9; this vxds reads formats 1 and 2")
    ]


def test_lock_digest(locked: Path) -> None:
    _edit(locked / LOCK / "lock.toml", 'snapshot = "', 'snapshot = "x')
    assert _codes(_verify(locked)) == ["VX303"]


def test_id_in_two_splits(locked: Path) -> None:
    train, test = _lines(locked, "train"), _lines(locked, "test")
    _rewrite(locked, {"train": train, "test": sorted([*test, train[0]], key=lambda b: orjson.loads(b)["id"])})
    findings = _verify(locked)
    assert _codes(findings) == ["VX401", "VX402"]
    rid = orjson.loads(train[0])["id"]
    assert f"1 id(s) in more than one split: {rid} (test, train)" in findings[0].message
    assert 'group_by attrs.subject: 1 group(s) in more than one split: "01"' in findings[1].message


def test_group_in_two_splits(locked: Path) -> None:
    train, test = _lines(locked, "train"), _lines(locked, "test")
    moved = orjson.loads(train[0])
    moved["id"] = "sub-zz/" + moved["id"]
    line = orjson.dumps(moved, option=orjson.OPT_SORT_KEYS)
    _rewrite(locked, {"train": train, "test": sorted([*test, line], key=lambda b: orjson.loads(b)["id"])})
    assert _codes(_verify(locked)) == ["VX402"]
    _edit(
        locked / "datasets.yaml",
        "group_by: attrs.subject",
        "group_by: attrs.subject\n  allow_group_overlap: true",
    )
    assert _codes(_verify(locked)) == ["VX203"]  # the entry changed, but overlap is now allowed


def test_remembered_results_never_hide_new_bytes(locked: Path) -> None:
    assert _verify(locked) == []
    assert (locked / ".vxds" / "verified.json").is_file()
    train = _lines(locked, "train")
    _rewrite(locked, {"train": [train[1], train[0]], "test": _lines(locked, "test")})
    assert _codes(_verify(locked)) == ["VX308"]
    assert _codes(_verify(locked, use_cache=False)) == ["VX308"]


# --- --data ------------------------------------------------------------------------------


def test_data_changed_and_missing(locked: Path) -> None:
    assert _verify(locked, data=True) == []
    (locked / "data/sub-01/anat/sub-01_T2w.nii.gz").write_bytes(b"\x5c\x01\x00\x00volume 1!!")
    (locked / "data/sub-02/anat/sub-02_T2w.nii.gz").unlink()
    findings = _verify(locked, data=True)
    assert [(f.code, f.message.split(":")[0], f.line) for f in findings] == [
        ("VX501", "sub-02/anat/sub-02_T2w.nii.gz", 1),
        ("VX502", "sub-01/anat/sub-01_T2w.nii.gz", 1),
    ]


def test_data_same_size_change_is_found_by_hash(locked: Path) -> None:
    path = locked / "data/sub-03/anat/sub-03_T2w.nii.gz"
    path.write_bytes(path.read_bytes()[:-1] + b"X")
    findings = _verify(locked, data=True)
    assert [f.message for f in findings] == [
        "sub-03/anat/sub-03_T2w.nii.gz: changed in the source (hash differs)"
    ]


def test_data_reads_bytes_again_despite_the_hash_cache(locked: Path) -> None:
    path = locked / "data/sub-03/anat/sub-03_T2w.nii.gz"
    stat = path.stat()
    path.write_bytes(path.read_bytes()[:-1] + b"X")
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))  # a stat cache would not see this
    assert _codes(_verify(locked, data=True)) == ["VX502"]


def test_sample_is_seeded(locked: Path) -> None:
    config = load_config(locked)
    from vxds.verify import Options, run

    def checked(seed: int) -> int:
        return run(config, options=Options(data=True, sample=Sample.parse("1"), seed=seed)).data_checked

    assert checked(1) == 1
    # A changed file is found by exactly the seeds whose sample picks it, run after run.
    (locked / "data/sub-01/anat/sub-01_T2w.nii.gz").write_bytes(b"changed")
    found = [
        bool(run(config, options=Options(data=True, sample=Sample(count=1), seed=s)).findings)
        for s in range(12)
    ]
    assert any(found)
    assert not all(found)
    assert found == [
        bool(run(config, options=Options(data=True, sample=Sample(count=1), seed=s)).findings)
        for s in range(12)
    ]
    assert run(config, options=Options(data=True, sample=Sample.parse("50%"))).data_checked == 2  # rounded up
    assert run(config, options=Options(data=True)).data_checked == 3


def test_sample_parse() -> None:
    assert Sample.parse("5%").size(1000) == 50
    assert Sample.parse("0.1%").size(10) == 1
    assert Sample.parse("7").size(3) == 3
    from vxds.errors import UsageError

    for bad in ("0", "-1", "x", "0%", "101%"):
        with pytest.raises(UsageError):
            Sample.parse(bad)


def test_escaping_ids_and_uris_read_nothing_outside(locked: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    secret = locked / "secret.txt"
    secret.write_bytes(b"secret")
    digest = digest_bytes(b"secret")
    good = orjson.loads(_lines(locked, "test")[0])

    def line(**fields: object) -> bytes:
        record = {**good, "hash": digest, "version": digest, "size": 6, **fields}
        return orjson.dumps(record, option=orjson.OPT_SORT_KEYS)

    opened: list[str] = []
    real_open, real_stat = open, os.stat

    def spy_open(file: object, *args: object, **kwargs: object) -> object:
        opened.append(os.path.abspath(str(file)))
        return real_open(file, *args, **kwargs)  # type: ignore[call-overload]

    def spy_stat(path: object, *args: object, **kwargs: object) -> os.stat_result:
        opened.append(os.path.abspath(str(path)))
        return real_stat(path, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr("builtins.open", spy_open)
    monkeypatch.setattr(os, "stat", spy_stat)
    _rewrite(locked, {"test": [line(id="../secret.txt", uri=None)]})
    assert _codes(_verify(locked, data=True)) == ["VX503", "VX310"]  # data skipped: the lock is corrupt
    for uri in ("../secret.txt", str(secret), "sub-01/../../secret.txt"):
        _rewrite(locked, {"test": [line(id="x", uri=uri)]})
        findings = _verify(locked, data=True)
        assert _codes(findings) == ["VX503", "VX310"]  # a uri that leaves the source is a corrupt lock
    assert str(secret) not in opened


# --- --reproduce and --no-exec -------------------------------------------------------------

MARKER_RECIPE = """\
import pathlib
import vxds

pathlib.Path(__file__).with_name("MARKER").write_text("imported")


@vxds.recipe()
def demo(client, test_subject="02"):
    splits = {"train": [], "test": []}
    for volume in client.query(type="Volume"):
        splits["test" if volume.attrs["subject"] == test_subject else "train"].append(volume)
    return splits
"""


def test_no_exec_never_imports_a_recipe(project: Path) -> None:
    (project / "recipes" / "demo.py").write_text(MARKER_RECIPE)
    marker = project / "recipes" / "MARKER"
    config = load_config(project)
    write_lock(Resolver(config).resolve(_entry(project)), project / LOCK)
    assert marker.exists()  # the recipe does write its marker when imported
    marker.unlink()
    for data in (False, True):
        for reproduce in (False, True):
            for sample in (None, Sample(count=1)):
                for manifest_only in (False, True):
                    findings = _verify(
                        project,
                        no_exec=True,
                        data=data,
                        reproduce=reproduce,
                        sample=sample if data else None,
                        manifest_only=manifest_only,
                    )
                    assert not [f for f in findings if f.severity == ERROR]
                    assert not marker.exists()
    _verify(project, reproduce=True)
    assert marker.exists()


def test_reproduce_reports_drift_with_counts(locked: Path) -> None:
    assert _verify(locked, reproduce=True) == []
    (locked / "data/sub-04/anat").mkdir(parents=True)
    (locked / "data/sub-04/anat/sub-04_T2w.nii.gz").write_bytes(b"\x5c\x01\x00\x00volume four")
    findings = _verify(locked, reproduce=True)
    assert _codes(findings) == ["VX601"]
    assert findings[0].message == (
        "re-running the recipe gives another lock: 1 added; header: snapshot (3 unchanged)"
    )


def test_reproduce_reports_a_failing_recipe(locked: Path) -> None:
    (locked / "recipes" / "demo.py").write_text(
        "import vxds\n\n@vxds.recipe()\ndef demo(client, test_subject='02'):\n    1/0\n"
    )
    findings = _verify(locked, reproduce=True)
    assert _codes(findings) == ["VX203", "VX602"]
    assert "ZeroDivisionError" in findings[1].message


def test_symlinked_folder_out_of_the_source_is_not_followed(locked: Path, tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_bytes(b"secret")
    (locked / "data" / "sub-01" / "link").symlink_to(outside, target_is_directory=True)
    (locked / "data" / "sub-02" / "inner").symlink_to(locked / "data" / "sub-03", target_is_directory=True)
    good = orjson.loads(_lines(locked, "test")[0])
    digest = digest_bytes(b"secret")
    lines = [
        orjson.dumps({**good, "id": rid, "uri": None, "hash": digest, "size": 6}, option=orjson.OPT_SORT_KEYS)
        for rid in ("sub-01/link/secret.txt", "sub-02/inner/anat/sub-03_T2w.nii.gz")
    ]
    _rewrite(locked, {"test": lines})
    findings = _verify(locked, data=True)
    assert [(f.code, f.message.split(":")[0]) for f in findings] == [
        ("VX505", "sub-01/link/secret.txt"),  # leads outside: not read
        ("VX502", "sub-02/inner/anat/sub-03_T2w.nii.gz"),  # a link inside the source is followed
    ]


# --- the column-wise fast path accepts exactly the valid, usual records ------------------------


_segment = st.sampled_from(["a", "sub-01", ".", "..", "", "x:y", "b\\c", "d\x01", "é", "C:", " "])
_json = st.one_of(
    st.none(), st.booleans(), st.integers(-3, 3), st.sampled_from(["", "x", "File", "1a", "a-b"])
)
# Any value of each field: valid ones, valid but unusual ones, and ones that break a rule.
_ANY = {
    "attrs": st.one_of(st.dictionaries(st.text(max_size=2), st.integers(), max_size=2), _json),
    "hash": st.one_of(
        st.sampled_from([None, "blake3:ab", "md5:0F", "x:", "blake3:ab\nblake3:cd", "B:1"]), _json
    ),
    "id": st.one_of(st.lists(_segment, min_size=1, max_size=3).map("/".join), _json),
    "size": st.one_of(st.integers(-2, 5), _json),
    "type": st.one_of(st.sampled_from(["Volume", "File", "1x", "a b", ""]), _json),
    "uri": st.one_of(st.sampled_from([None, "a/b", "s3://u:p@host/x", "x@y"]), _json),
    "version": st.one_of(st.integers(-1, 2), st.sampled_from(["", "v1"]), _json),
}
# Values of a valid record, usual unless an id with an '@' is also its uri (set in _blocks).
_USUAL = {
    "attrs": st.dictionaries(st.text(max_size=2), st.integers(), max_size=2),
    "hash": st.sampled_from([None, "blake3:ab", "md5:0F"]),
    "id": st.lists(st.sampled_from(["a", "sub-01", "é", " ", "x.y", "a@b"]), min_size=1, max_size=3).map(
        "/".join
    ),
    "size": st.one_of(st.none(), st.integers(0, 5)),
    "type": st.sampled_from(["Volume", "File", "T_1"]),
    "uri": st.none(),
    "version": st.one_of(st.integers(-1, 2), st.just("v1")),
}


@st.composite
def _blocks(draw: st.DrawFn) -> list[dict[str, Any]]:
    """Half the blocks valid and usual throughout; in a quarter one field of one record is
    any value; in a quarter every field of every record is."""
    shape = draw(st.sampled_from(["usual", "usual", "one field", "any"]))
    fields = _ANY if shape == "any" else _USUAL
    records = draw(st.lists(st.fixed_dictionaries(fields), min_size=1, max_size=4))
    if shape != "any":
        for record in records:
            if draw(st.booleans()):
                record["uri"] = record["id"]
    if shape == "one field":
        record = records[draw(st.integers(0, len(records) - 1))]
        name = draw(st.sampled_from(sorted(_ANY)))
        record[name] = draw(_ANY[name])
    return records


def _valid(record: dict[str, object]) -> bool:
    try:
        validate_record(record)
    except InvalidResource:
        return False
    return True


def _usual(record: dict[str, object]) -> bool:
    """What valid_block's docstring asks beyond validity: no ':' in the id, a uri that is
    null or the id and has no '@', attrs that are a dict."""
    rid, uri = record["id"], record["uri"]
    return (
        isinstance(rid, str)
        and ":" not in rid
        and (uri is None or (uri == rid and "@" not in rid))
        and type(record["attrs"]) is dict
    )


@settings(max_examples=400, deadline=None)
@given(_blocks())
def test_valid_block_is_true_exactly_for_valid_usual_records(records: list[dict[str, Any]]) -> None:
    expected = all(_valid(record) and _usual(record) for record in records)
    assert valid_block(records) == expected


def test_valid_block_accepts_ordinary_records(locked: Path) -> None:
    records = [orjson.loads(line) for line in _lines(locked, "train")]
    assert valid_block(records)
    with pytest.raises(InvalidResource):
        validate_record({**records[0], "id": "a/../b"})
    assert not valid_block([*records, {**records[0], "id": "a/../b"}])


def test_unopenable_source(locked: Path) -> None:
    shutil.rmtree(locked / "data")
    findings = _verify(locked, data=True)
    assert [(f.code, f.file) for f in findings] == [("VX504", "locks/demo/1/lock.toml")]
    assert findings[0].message.startswith("cannot open source './data': ")
    assert findings[0].message.count("'./data'") == 1  # named once


def test_other_hash_algorithms(locked: Path) -> None:
    import hashlib

    body = (locked / "data/sub-01/anat/sub-01_T2w.nii.gz").read_bytes()
    good = orjson.loads(_lines(locked, "train")[0])
    assert good["id"] == "sub-01/anat/sub-01_T2w.nii.gz"

    def line(digest: str) -> bytes:
        return orjson.dumps({**good, "hash": digest}, option=orjson.OPT_SORT_KEYS)

    _rewrite(locked, {"train": [line("md5:" + hashlib.md5(body).hexdigest())]})
    assert _verify(locked, data=True) == []
    _rewrite(locked, {"train": [line("md5:" + hashlib.md5(b"other").hexdigest())]})
    assert _codes(_verify(locked, data=True)) == ["VX502"]
    _rewrite(locked, {"train": [line("nosuchalgo:00")]})
    findings = _verify(locked, data=True)
    assert [(f.code, f.severity, f.message) for f in findings] == [
        ("VX503", SKIPPED, "sub-01/anat/sub-01_T2w.nii.gz: cannot check a nosuchalgo hash")
    ]


class _MemorySource:
    """A source that is not a folder: bytes by id, read through ``open``."""

    url = "memory:"
    snapshot = "s"
    time_travel = False

    def __init__(self, files: dict[str, bytes]) -> None:
        self.files = files

    def resources(self) -> list[object]:
        return []

    def get(self, id: str, version: object = None) -> object:
        from vxds.errors import NotFoundError

        raise NotFoundError(f"no {id}")

    def open(self, resource: object) -> object:
        import io

        from vxds.errors import NotFoundError

        rid = resource.id  # type: ignore[attr-defined]
        if rid not in self.files:
            raise NotFoundError(f"no {rid}")
        return io.BytesIO(self.files[rid])


def test_other_sources_are_read_through_open(locked: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    files = {
        orjson.loads(line)["id"]: (locked / "data" / orjson.loads(line)["id"]).read_bytes()
        for split in ("train", "test")
        for line in _lines(locked, split)
    }
    source = _MemorySource(files)
    monkeypatch.setattr("vxds.verify.data.open_source", lambda url, context: source)
    monkeypatch.setattr("vxds.verify.data.scheme_of", lambda url: "memory")  # not a folder
    assert _verify(locked, data=True) == []
    first = sorted(files)[0]
    files[first] = b"changed"
    del files[sorted(files)[1]]
    assert sorted(_codes(_verify(locked, data=True))) == ["VX501", "VX502"]
