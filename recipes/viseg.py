"""Lesion segmentation training data: T2w volumes that have a lesion mask, with the masks.

Subjects are split deterministically (every ``test_every``-th subject in sorted order goes
to ``test``), so a subject's sessions never span splits.
"""

from __future__ import annotations

import vxds


@vxds.recipe()
def viseg_training(
    client: vxds.Client, test_every: int = 4, with_flair: bool = False
) -> dict[str, list[vxds.Resource]]:
    """T2w images with a lesion mask (and, optionally, the session's FLAIR)."""
    masks = {(m.attrs["subject"], m.attrs["session"]): m for m in client.query(type="Mask", desc="lesion")}
    subjects = sorted({subject for subject, _ in masks})
    held_out = set(subjects[test_every - 1 :: test_every])
    splits: dict[str, list[vxds.Resource]] = {"train": [], "test": []}
    for t2w in client.query(type="Volume", suffix="T2w"):
        key = (t2w.attrs["subject"], t2w.attrs["session"])
        if key not in masks:
            continue
        chosen = [t2w, masks[key]]
        if with_flair:
            chosen += client.query(type="Volume", suffix="FLAIR", subject=key[0], session=key[1])
        splits["test" if key[0] in held_out else "train"].extend(chosen)
    return splits
