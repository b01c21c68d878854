"""The member files of a DICOM series or a Zarr, checked against the lock before use."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from vxds.errors import NotFoundError, SourceError
from vxds.locks.verified_read import IntegrityError, VerifiedReader, mismatch
from vxds.resource import InvalidResource, Resource, check_id


class SeriesFiles:
    """The member files of a DICOM series (or a Zarr), each checked against the lock.

    Every member is hashed once when this is made, and the listing of names and digests
    must be the series' locked hash (``IntegrityError`` otherwise); ``open(name)`` then
    checks the bytes it reads against that member's digest, as ``VerifiedReader`` does."""

    def __init__(self, resource: Resource, members: Sequence[tuple[str, str]]) -> None:
        from vxds.hashing import hash_file_key
        from vxds.sources.folder.tree import series_digest

        self.resource = resource
        self._members: dict[str, tuple[str, Resource]] = {}
        for name, path in members:
            try:  # a name becomes a path under .vxds/series/ and in OUT: never '..' or absolute
                check_id(name)
            except InvalidResource as exc:
                raise SourceError(
                    f"{resource.id}: a member is not a path inside the series ({exc})"
                ) from None
            try:
                digest, key = hash_file_key(path)
            except OSError as exc:
                raise SourceError(f"{resource.id}: cannot read its file {name}: {exc.strerror}") from None
            member = Resource(id=f"{resource.id}/{name}", version=digest, hash=digest, size=key[0])
            self._members[name] = (path, member)
        listing = series_digest((name, m.hash or "") for name, (_, m) in self._members.items())
        size = sum(m.size or 0 for _, m in self._members.values())
        problem = mismatch(resource, listing.partition(":")[2], size)
        if problem is not None:
            raise IntegrityError(f"{problem} (its member files)")

    @property
    def names(self) -> list[str]:
        """The members' names (paths inside the folder, for a Zarr), sorted."""
        return sorted(self._members)

    def path(self, name: str) -> str:
        """Where one member's file is (its digest was checked when this was made)."""
        if name not in self._members:
            raise NotFoundError(f"{self.resource.id}: no member {name!r}")
        return self._members[name][0]

    def open(self, name: str) -> VerifiedReader:
        """One member's bytes, checked against the digest the listing was checked with."""
        if name not in self._members:
            raise NotFoundError(f"{self.resource.id}: no member {name!r}")
        path, member = self._members[name]
        try:
            return VerifiedReader(member, open(path, "rb"))
        except OSError as exc:
            raise SourceError(f"{member.id}: cannot open: {exc.strerror}") from None

    def read(self, name: str) -> bytes:
        """One member's bytes, whole and checked (``io.BytesIO`` of it is what pydicom seeks in)."""
        with self.open(name) as fh:
            return fh.read()

    def __iter__(self) -> Iterator[tuple[str, VerifiedReader]]:
        """``(name, stream)`` of every member in name order, each opened as it is reached."""
        for name in self.names:
            yield name, self.open(name)

    def __len__(self) -> int:
        return len(self._members)

    def __enter__(self) -> SeriesFiles:
        return self

    def __exit__(self, *exc: object) -> None:
        return None
