"""Locks as files and values: the format, where they are read from, status, diff, merge."""
