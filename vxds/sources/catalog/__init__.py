"""A versioned catalog, embedded: ``catalog:PATH`` names a SQLite database.

It is a small local data platform of the kind recipes query. ``vxds catalog ingest DIR``
turns a folder into resources exactly as the folder source does (files, clinical rows,
DICOM series, BIDS attrs) and records them in one numbered **snapshot**:

* a resource seen for the first time gets version 1; a resource whose hash, type, size
  or attrs changed gets the next integer version (versions only ever grow, and a resource
  deleted and added again continues its numbering);
* a resource no longer in the folder is marked deleted at that snapshot;
* bytes go into a content-addressed store beside the database (``NAME.objects/`` next to
  ``NAME.db``), keyed by blake3, so every version ever ingested stays readable.

Each version row is valid from the snapshot that added it until the snapshot that changed
or deleted it, so the catalog can be read **as of** any snapshot: the source opened with
``SourceContext.at`` (``vxds lock --at``) lists what was current then, and a lock records
the snapshot number it was resolved at.

``store`` holds the database and its object store and reads them, ``ingest`` records a
folder as the next snapshot, and ``source`` is the ``catalog:`` source recipes read.
"""
