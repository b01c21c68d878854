"""Clinical records of both trials: one resource per participant row."""

from __future__ import annotations

import vxds


@vxds.recipe()
def clinical_cohort(client: vxds.Client, require_edss: bool = True) -> dict[str, list[vxds.Resource]]:
    """Participants with their age, sex, site and EDSS score."""
    records = client.query(type="ClinicalRecord", participant_id=lambda v: v is not None)
    if require_edss:
        records = (r for r in records if r.attrs.get("edss") is not None)
    return {"cohort": list(records)}
