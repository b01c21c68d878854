"""Datasets imported from a registry repository (``vxds import``, ``vxds update``).

A registry is any vxds project in a Git repository. ``fetch`` brings one revision of it into
a bare cache under ``.vxds/registry/`` (never a working checkout) and resolves revisions;
``read`` reads the registry's manifest and locks from those Git objects; ``imports`` copies
a lock into this project, writes the manifest's ``import:`` block, moves it on (update) and
says whether it is behind.
"""
