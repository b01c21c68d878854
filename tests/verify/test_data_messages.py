"""VX5xx messages name the resource, and the source, once."""

from __future__ import annotations

from tests.helpers import make_resource
from vxds.verify.data import _cannot_open, _named


def test_a_resource_is_named_once() -> None:
    resource = make_resource("basel/sub-01/anat/x.nii.gz")
    assert _named(resource, "cannot read: gone") == "basel/sub-01/anat/x.nii.gz: cannot read: gone"
    own = "basel/sub-01/anat/x.nii.gz: content does not match the locked hash blake3:00"
    assert _named(resource, own) == own


def test_a_source_is_named_once() -> None:
    message = "source './data': folder /p/data does not exist"
    assert _cannot_open("./data", message) == "cannot open source './data': folder /p/data does not exist"
    assert _cannot_open("s3://b/p", "no credentials") == "cannot open the source 's3://b/p': no credentials"
