"""A source read as BIDS datasets: where a file lies in its dataset, and what travels with it.

The files come from the source's index with the lock's resources over them (a locked file is
checked against the lock, any other against the index). A file's dataset is the deepest
folder above it holding a ``dataset_description.json``, lifted out of ``derivatives/<name>/``
(a derivative lies in its raw dataset's tree); without one, the folder above its first
``sub-*`` or ``derivatives`` folder. A file with neither is not in a BIDS dataset.

Companions, by the schema's rules (``bidsschema``): every file directly in a dataset root
(raw or derivative: ``README``, ``participants.json``, top-level sidecars ...), and in the
folders between the root and the file, the files that apply to it by the inheritance
principle (entities a subset of the file's): its JSON sidecars (same suffix; a sidecar at the
root too goes only with a file it applies to), the schema's
associated files (``events.tsv``, ``.bval``/``.bvec``, ``channels.tsv``, ``aslcontext.tsv``
... with the extensions and ``inherit`` rule the schema gives; their selectors are not
evaluated, so the suffix, extension and entities decide), and ``scans``/``sessions`` tables;
with an ``events`` file, the dataset's ``stimuli/`` folder (which events name files in).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable

from vxds.resource import Resource
from vxds.sources.folder.bids import Name, split_name
from vxds.sources.folder.bidsschema import bids_schema

DESCRIPTION = "dataset_description.json"
TABLES = frozenset({"scans", "sessions"})  # per-subject/-session tables that list what is there
STIMULI = "stimuli"


def join(folder: str, name: str) -> str:
    return f"{folder}/{name}" if folder else name


def parent(rid: str) -> str:
    return rid.rpartition("/")[0]


def relative(rid: str, root: str) -> str:
    return rid[len(root) + 1 :] if root else rid


def _raw(folder: str) -> str:
    parts = folder.split("/")
    while len(parts) >= 2 and parts[-2] == "derivatives":
        parts = parts[:-2]
    return "/".join(parts)


class SourceTree:
    """The files of a source by id and by folder (table rows left out: they are no files)."""

    def __init__(self, resources: Iterable[Resource]) -> None:
        self.by_id: dict[str, Resource] = {r.id: r for r in resources if r.type != "ClinicalRecord"}
        self._folders: dict[str, list[Resource]] | None = None
        self._names: dict[str, Name] = {}
        self._under: dict[str, list[Resource]] = {}

    def name(self, rid: str) -> Name:
        """``rid``'s file name split the BIDS way (kept: every file is asked about often)."""
        found = self._names.get(rid)
        if found is None:
            found = self._names[rid] = split_name(rid.rsplit("/", 1)[-1])
        return found

    def files_in(self, folder: str) -> list[Resource]:
        if self._folders is None:
            self._folders = defaultdict(list)
            for rid in sorted(self.by_id):
                self._folders[parent(rid)].append(self.by_id[rid])
        return self._folders.get(folder, [])

    def is_root(self, folder: str) -> bool:
        return join(folder, DESCRIPTION) in self.by_id

    def root(self, rid: str) -> str | None:
        """The raw dataset ``rid`` lies in (``""`` for the source's top), None if none."""
        parts = rid.split("/")[:-1]
        for n in range(len(parts), -1, -1):
            if self.is_root("/".join(parts[:n])):
                return _raw("/".join(parts[:n]))
        for n, part in enumerate(parts):
            if part == "derivatives" or part.startswith("sub-"):
                return "/".join(parts[:n])
        return None

    def companions(self, rid: str, root: str) -> list[Resource]:
        """What travels with ``rid`` (itself excluded), from its dataset's root down."""
        data = self.name(rid)
        folder = parent(rid)
        below = relative(folder, root).split("/") if folder != root else []
        found, events = [], data.suffix == "events"
        for depth in range(len(below) + 1):
            here = join(root, "/".join(below[:depth])) if depth else root
            whole = self.is_root(here)
            for resource in self.files_in(here):
                name = self.name(resource.id)
                if resource.id == rid:
                    continue
                if (whole and not is_sidecar(name)) or applies(name, data, same_folder=here == folder):
                    found.append(resource)
                    events = events or name.suffix == "events"
        if events:
            found.extend(self.under(join(root, STIMULI)))
        return found

    def under(self, folder: str) -> list[Resource]:
        """Every file below ``folder`` (listed once per folder asked about)."""
        if folder not in self._under:
            prefix = folder + "/"
            self._under[folder] = [self.by_id[i] for i in sorted(self.by_id) if i.startswith(prefix)]
        return self._under[folder]


def is_sidecar(name: Name) -> bool:
    """A JSON file of some data file's metadata (``T1w.json``, ``task-x_events.json``)."""
    return name.extension == ".json" and name.suffix in bids_schema().suffixes and name.suffix not in TABLES


def applies(companion: Name, data: Name, *, same_folder: bool) -> bool:
    """``companion`` goes with the data file ``data`` by the schema's rules (module doc)."""
    if companion.suffix is None or data.suffix is None:
        return False
    if any(data.entities.get(k) != v for k, v in companion.entities.items()):
        return False
    if companion.suffix == data.suffix and companion.extension == ".json":
        return True
    if companion.suffix in TABLES:
        return companion.extension in (".tsv", ".json")
    for rule in bids_schema().associations:
        if (rule.suffix or data.suffix) != companion.suffix or not (rule.inherit or same_folder):
            continue
        if companion.extension in rule.extensions or (rule.suffix and companion.extension == ".json"):
            return True
    return False
