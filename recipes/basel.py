"""Everything from the Basel trial, written in the seed template's style."""

import vxds


@vxds.dataset_compilation_entrypoint()
def all_basel_data(client: vxds.Client) -> dict[str, list[dict]]:
    """Returns all data associated with the Basel trial."""
    return {
        "all": [
            {
                "id": r.id,
                "version": r.version,
                "type": r.type,
                "hash": r.hash,
                "size": r.size,
                "uri": r.uri,
                "attrs": dict(r.attrs),
            }
            for r in client.list("basel/")
        ]
    }
