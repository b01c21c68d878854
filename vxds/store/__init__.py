"""The content-addressed store (docs/store.md): locked bytes kept by their blake3 digest.

``cas`` is the layout and the ``Store`` value, ``backends`` a local folder or a bucket,
``wanted`` which digests the locks need, ``push`` and ``gc`` the two workflows that write
to a store, and ``reader`` what readers fall back to when a source lost the locked bytes.
"""
