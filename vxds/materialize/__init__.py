"""Turning a lock back into files: the run that drives the materializers.

``materialize(target, out, modules)`` opens OUT (refusing a file there, a symlink at one of
vxds' own names in it and a second run at once), reads what a previous run recorded, lets
each materializer place its files through one ``Placer``, keeps what the previous run
placed and this one does not want (removed only with ``prune``), and writes the receipt. A
folder holding another dataset or version is refused unless ``force``: nothing of a user's
is ever removed without being asked. Failures of single resources are
collected, never raised; a full disk stops the run (``DiskFull``, what was placed is kept).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from vxds.errors import UsageError, VxdsError
from vxds.hashing import digest_json
from vxds.locks.format import Header
from vxds.locks.splits import Split
from vxds.materialize.access import SourceAccess
from vxds.materialize.base import Job, Materializer
from vxds.materialize.durable import DiskFull, check_not_symlink, open_own
from vxds.materialize.ledger import Failure, Outcome, oserror_text
from vxds.materialize.place import Placer
from vxds.materialize.receipt import (
    LOCK_FILE,
    OWN,
    Entry,
    Receipt,
    ReceiptError,
    read_journal,
    read_receipt,
    remove_journal,
    write_receipt,
)
from vxds.progress import NO_PROGRESS, Progress
from vxds.sources.base import Source

if TYPE_CHECKING:
    from vxds.store.reader import StoreReader

GROUP = "vxds.materializers"
# The built-in modules, also found without the entry points (a source checkout not yet
# reinstalled); an installed entry point of the same name wins.
BUILTIN = {
    "files": "vxds.materialize.files:FilesMaterializer",
    "bids": "vxds.materialize.bids:BidsMaterializer",
    "clinical-csv": "vxds.materialize.clinical_csv:ClinicalCsvMaterializer",
    "clinical-to-csv": "vxds.materialize.clinical_csv:ClinicalCsvMaterializer",
    "fw-dataset": "vxds.materialize.fw_dataset:FwDatasetMaterializer",
}


def available() -> dict[str, str]:
    """Module name -> ``module:object`` for every materializer that can be chosen."""
    from importlib.metadata import entry_points

    found = dict(BUILTIN)
    found.update({ep.name: ep.value for ep in entry_points(group=GROUP)})
    return found


def load_materializer(name: str) -> Materializer:
    """The materializer called ``name``; ``UsageError`` naming the known ones if none is."""
    import importlib

    known = available()
    if name not in known:
        raise UsageError(f"no materializer named {name!r}; known: {', '.join(sorted(known))}")
    module, _, attr = known[name].partition(":")
    try:
        factory = getattr(importlib.import_module(module), attr)
    except (ImportError, AttributeError) as exc:
        raise UsageError(f"materializer {name!r} cannot be loaded: {exc}") from None
    materializer: Materializer = factory()
    return materializer


@dataclass(frozen=True)
class Target:
    """What to materialize: a lock (or bare lockfiles) and where its source is."""

    name: str
    version: int | None
    header: Header | None
    splits: Mapping[str, Split]
    source_url: str | None
    base: Path  # relative source URLs are resolved against this folder
    storage: Mapping[str, Any] = field(default_factory=dict, repr=False)  # [tool.vxds.storage]

    @property
    def key(self) -> str | None:
        return f"{self.name}@{self.version}" if self.version is not None else None

    @property
    def lock_digest(self) -> str:
        if self.header is not None:
            return self.header.digest
        return digest_json({name: split.digest for name, split in sorted(self.splits.items())})


@dataclass
class Report:
    out: Path
    modules: list[str]
    splits: list[str]
    placed: int = 0
    unchanged: int = 0
    removed: int = 0
    kept: int = 0
    failures: list[Failure] = field(default_factory=list)
    notices: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.failures

    def to_json(self) -> dict[str, Any]:
        return {
            "out": str(self.out),
            "modules": self.modules,
            "splits": self.splits,
            "placed": self.placed,
            "unchanged": self.unchanged,
            "removed": self.removed,
            "kept": self.kept,
            "failed": [f.to_json() for f in self.failures],
            "notices": self.notices,
        }


@contextlib.contextmanager
def _exclusive(out: Path) -> Iterator[None]:
    """Hold ``OUT/.vxds-lock`` so two runs never write one folder at once."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not POSIX: no locking
        yield
        return
    fd = open_own(out / LOCK_FILE, os.O_RDWR | os.O_CREAT)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            raise UsageError(f"another vxds materialize is writing {out}") from None
        yield
    finally:
        os.close(fd)


def _previous(out: Path, target: Target, notices: list[str], *, force: bool) -> dict[str, Any]:
    """What the receipt and journal say was placed. One that cannot be trusted is ignored
    (with a note): its files are then written over, and none of them is removed. A receipt
    of another dataset or version refuses the run, unless ``force``."""
    try:
        receipt = read_receipt(out)
    except ReceiptError as exc:
        notices.append(f"{exc}; every file is checked again")
        receipt = None
    if receipt is not None and not force:
        _refuse_other(out, receipt, target)
    previous = dict(receipt.files) if receipt is not None else {}
    try:
        previous.update(read_journal(out))
    except ReceiptError as exc:
        notices.append(f"{exc}; the journal is ignored")
    return previous


def _refuse_other(out: Path, receipt: Receipt, target: Target) -> None:
    """``UsageError`` naming both when ``out`` holds another dataset (or version) than ``target``."""
    if receipt.dataset is not None and target.key is not None:
        if receipt.dataset == target.key:
            return
        held, wanted = receipt.dataset, target.key
    elif receipt.lock_digest == target.lock_digest:
        return
    else:  # bare lockfiles: told apart by their digest
        held = receipt.dataset or f"lockfiles {receipt.lock_digest[:19]}"
        wanted = target.key or f"lockfiles {target.lock_digest[:19]}"
    raise UsageError(
        f"{out} holds {held}; not materializing {wanted} into it",
        hint=f"choose another -o, or --force to write it there (add --prune to remove the files of {held})",
    )


def _modules(names: Sequence[str]) -> list[tuple[str, Materializer]]:
    if not names:
        raise UsageError("choose at least one module with -m (files, bids, clinical-csv, fw-dataset)")
    chosen: dict[str, tuple[str, Materializer]] = {}
    for name in names:
        materializer = load_materializer(name)
        chosen.setdefault(materializer.name, (name, materializer))  # an alias counts once
    return list(chosen.values())


def select_splits(splits: Mapping[str, Split], wanted: Sequence[str]) -> dict[str, Split]:
    unknown = sorted(set(wanted) - set(splits))
    if unknown:
        raise UsageError(
            f"no split named {', '.join(map(repr, unknown))}; the lock has {', '.join(sorted(splits))}"
        )
    return {name: split for name, split in sorted(splits.items()) if not wanted or name in wanted}


def open_target_source(target: Target, cache_dir: Path | None) -> Source | None:
    if target.source_url is None:
        return None
    from vxds.sources import SourceContext, open_source

    context = SourceContext(base=target.base, cache_dir=cache_dir, options=target.storage)
    return open_source(target.source_url, context)


def materialize(
    target: Target,
    out: Path,
    modules: Sequence[str],
    *,
    splits: Sequence[str] = (),
    mode: str = "copy",
    jobs: int | None = None,
    progress: Progress = NO_PROGRESS,
    cache_dir: Path | None = None,
    source: Source | None = None,
    store: StoreReader | None = None,
    from_store: bool = False,
    prune: bool = False,
    force: bool = False,
    executor: str | None = None,
) -> Report:
    """Write ``target``'s splits under ``out`` in each module's layout (the module doc says
    what ``prune`` and ``force`` allow)."""
    chosen = _modules(modules)
    selected = select_splits(target.splits, splits)
    _preflight(chosen, selected)
    out = _open_out(out)
    report = Report(out=out, modules=[name for name, _ in chosen], splits=sorted(selected))
    with _exclusive(out):
        previous = _previous(out, target, report.notices, force=force)
        source = source if source is not None else open_target_source(target, cache_dir)
        total = sum(split.count for split in selected.values()) * len(chosen)
        task = progress.task(f"materializing into {out.name}", total=total or None)
        access = SourceAccess(source, store, from_store=from_store)
        placer = Placer(out, access, mode=mode, jobs=jobs, previous=previous, task=task, executor=executor)
        placer.ledger.prune = prune
        tools: dict[str, str] = {}
        try:
            _run(chosen, target, selected, placer, report.notices, tools)
            outcome = placer.finish()
        except BaseException:
            placer.abort()
            raise
        finally:
            task.close()
        kept_and_placed = {**placer.ledger.kept, **placer.entries}
        write_receipt(out, _receipt(target, selected, chosen, kept_and_placed, outcome, tools))
        remove_journal(out)
    report.placed, report.unchanged, report.removed = outcome.placed, outcome.unchanged, outcome.removed
    report.kept, report.failures = outcome.kept, _sorted(outcome.failures)
    report.notices.extend(outcome.notices)
    return report


def _open_out(out: Path) -> Path:
    """Create ``out`` if needed and return its real path; a file there is a usage error, and
    so is a symlink at one of vxds' own names in it."""
    if out.exists() and not out.is_dir():
        raise UsageError(f"output {out} exists and is not a folder")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(f"cannot create the output folder {out}: {oserror_text(exc)}") from None
    out = out.resolve()
    for name in sorted(OWN):
        check_not_symlink(out / name)
    return out


def _preflight(chosen: Sequence[tuple[str, Materializer]], selected: Mapping[str, Split]) -> None:
    """A run that cannot be done stops before anything is written."""
    for _, materializer in chosen:
        preflight = getattr(materializer, "preflight", None)
        if preflight is not None:
            preflight(selected)


def _run(
    chosen: Sequence[tuple[str, Materializer]],
    target: Target,
    selected: Mapping[str, Split],
    placer: Placer,
    notices: list[str],
    tools: dict[str, str],
) -> None:
    """Let each chosen materializer place its files; one that fails is a failure, not the end."""
    for name, materializer in chosen:
        job = Job(
            name=target.name,
            version=target.version,
            lock_digest=target.lock_digest,
            header=target.header,
            splits=selected,
            placer=placer,
            module=name,
            notices=notices,
            tools=tools,
        )
        try:
            materializer.materialize(job)
        except DiskFull:
            raise
        except VxdsError as exc:
            placer.outcome.failures.append(Failure(None, name, exc.message))


def _receipt(
    target: Target,
    selected: Mapping[str, Split],
    chosen: Sequence[tuple[str, Materializer]],
    files: dict[str, Entry],
    outcome: Outcome,
    tools: dict[str, str],
) -> Receipt:
    return Receipt(
        dataset=target.key,
        lock_digest=target.lock_digest,
        source=target.source_url,
        splits={name: (split.count, split.digest) for name, split in selected.items()},
        modules=[m.name for _, m in chosen],
        files=files,
        generator=_generator(),
        failed=[f.to_json() for f in _sorted(outcome.failures)],
        converters=tools,
    )


def _sorted(failures: list[Failure]) -> list[Failure]:
    return sorted(failures, key=lambda f: (f.path, f.resource or ""))


def _generator() -> str:
    from vxds import __version__

    return f"vxds {__version__}"
