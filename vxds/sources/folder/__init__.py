"""A local folder as a source: the walk, its caches, and the tree rules object stores share."""
