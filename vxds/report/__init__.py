"""Renderers: a list of ``DatasetDiff`` values as text, JSON or Markdown. Nothing here reads
locks or talks to Git; the CLI passes values in and prints what comes out."""
