"""Lock a 10,000-file DICOM tree, cold then warm, beside plain hashing of the same tree.

The tree is a scanner export: ``sub-XXXX/ses-01/<series>/IM0000`` (no extension), each
file a real DICOM image (a 64x64 16-bit slice with a header: preamble, ``DICM``, file meta,
patient and series attributes) written with pydicom, four series per session (T1w MPRAGE,
T2w, FLAIR, and a CT beside an MR in one folder, so folders holding two series are
measured too). Every run is a subprocess:

* vxds cold: ``vxds lock dicom --root PROJECT`` with no ``.vxds/`` cache and no lock: every
  file is hashed, its first 132 bytes looked at, its series header read (pydicom,
  ``stop_before_pixels`` and ``specific_tags``), and files grouped into series;
* vxds warm: the same again, nothing changed (median of three runs);
* baseline, same tree, same run: a Python process that walks the tree and blake3-hashes
  every file in turn (what a lock of the same files as plain files must at least do), and
  one that also reads every header with pydicom (``stop_before_pixels``), as a grouping by
  ``SeriesInstanceUID`` written by hand would.

Targets (issue 12): cold lock within 2x of plain hashing plus header reading; warm relock
under 2 s.

    python bench/dicom_bench.py [--files 10000] [--strict]
"""

from __future__ import annotations

import sys
from pathlib import Path

from benchlib import Report, finish, fmt_mib, fmt_s, parser, run, vxds_argv, workdir

COLD_RATIO = 2.0
WARM_SECONDS = 2.0
SERIES = (  # (folder, Modality, SeriesNumber, SeriesDescription): two series share "mixed"
    ("t1", "MR", 2, "t1_mprage_sag"),
    ("t2", "MR", 3, "t2_tse_ax"),
    ("mixed", "MR", 4, "t2_flair_ax"),
    ("mixed", "CT", 5, "head_routine"),
)
RECIPE = '''"""Every DICOM series of the source, in one split."""
import vxds


@vxds.recipe()
def dicom(client: vxds.Client) -> dict:
    return {"all": list(client.list())}
'''
HASH_ONLY = """
import os, sys
from blake3 import blake3
n = 0
for folder, _, names in os.walk(sys.argv[1]):
    for name in names:
        with open(os.path.join(folder, name), "rb") as fh:
            blake3(fh.read()).hexdigest()
        n += 1
print(n)
"""
HASH_AND_HEADERS = """
import os, sys
import pydicom
from blake3 import blake3
series = set()
for folder, _, names in os.walk(sys.argv[1]):
    for name in names:
        path = os.path.join(folder, name)
        with open(path, "rb") as fh:
            blake3(fh.read()).hexdigest()
        series.add((folder, pydicom.dcmread(path, stop_before_pixels=True).SeriesInstanceUID))
print(len(series))
"""


def make_tree(data: Path, files: int) -> tuple[int, int]:
    """Write the tree; return (files, series). Same arguments, same bytes."""
    import io

    import pydicom
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, MRImageStorage, generate_uid

    per_series = 25
    made = series_count = 0
    subject = 0
    while made < files:
        for folder, modality, number, description in SERIES:
            uid = generate_uid(entropy_srcs=[str(subject), str(number)])
            series_count += 1
            target = data / f"sub-{subject:04d}/ses-01/{folder}"
            target.mkdir(parents=True, exist_ok=True)
            for k in range(per_series):
                if made == files:
                    return made, series_count
                ds = Dataset()
                ds.file_meta = FileMetaDataset()
                sop = generate_uid(entropy_srcs=[uid, str(k)])
                ds.file_meta.MediaStorageSOPClassUID = MRImageStorage
                ds.file_meta.MediaStorageSOPInstanceUID = sop
                ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
                ds.SOPClassUID, ds.SOPInstanceUID = MRImageStorage, sop
                ds.PatientName, ds.PatientID, ds.PatientBirthDate = (
                    f"Doe^J{subject}",
                    f"P{subject}",
                    "19700101",
                )
                ds.Modality, ds.SeriesNumber, ds.SeriesDescription = modality, number, description
                ds.StudyInstanceUID = generate_uid(entropy_srcs=[str(subject)])
                ds.SeriesInstanceUID, ds.InstanceNumber = uid, k + 1
                ds.Manufacturer, ds.MagneticFieldStrength = "Siemens", 3
                ds.Rows = ds.Columns = 64
                ds.BitsAllocated = ds.BitsStored = 16
                ds.HighBit, ds.PixelRepresentation, ds.SamplesPerPixel = 15, 0, 1
                ds.PhotometricInterpretation = "MONOCHROME2"
                ds.PixelData = bytes([k % 256]) * (64 * 64 * 2)
                ds.preamble = b"\0" * 128
                buffer = io.BytesIO()
                pydicom.dcmwrite(buffer, ds, enforce_file_format=True)
                name = f"IM{k:04d}" if folder != "mixed" else f"IM{number}{k:04d}"
                (target / name).write_bytes(buffer.getvalue())
                made += 1
        subject += 1
    return made, series_count


def main() -> int:
    p = parser(__doc__.splitlines()[0])
    p.add_argument("--files", type=int, default=10_000)
    args = p.parse_args()
    with workdir(args.workdir, args.keep, "vxds-dicom-bench-") as root:
        files, series = make_tree(root / "data", args.files)
        (root / "recipes").mkdir()
        (root / "pyproject.toml").write_text('[tool.vxds]\nsource = "./data"\n')
        (root / "datasets.yaml").write_text(
            "- name: dicom\n  version: 1\n  description: Every series.\n"
            "  script_location: ./recipes/dicom.py\n"
        )
        (root / "recipes/dicom.py").write_text(RECIPE)
        lock = [*vxds_argv(), "lock", "dicom", "--root", str(root), "--quiet"]
        hashed = run([sys.executable, "-c", HASH_ONLY, str(root / "data")]).check()
        headers = run([sys.executable, "-c", HASH_AND_HEADERS, str(root / "data")]).check()
        cold = run(lock).check()
        locked = (root / "locks/dicom/1/resources.all.jsonl").read_text().count('"DICOMSeries"')
        if locked != series or int(headers.stdout) != series:
            raise RuntimeError(
                f"{locked} series locked, {headers.stdout.strip()} read by hand, expected {series}"
            )
        warm = sorted((run(lock).check() for _ in range(3)), key=lambda r: r.seconds)[1]
        report = Report(
            f"lock a DICOM tree of {files:,} files in {series:,} series",
            ["run", "wall s", "peak MiB", "files/s", "time / plain blake3", "time / blake3 + headers"],
        )
        for name, r in (
            ("plain blake3 of every file", hashed),
            ("blake3 + pydicom header of every file", headers),
            ("vxds lock, cold", cold),
            ("vxds lock, warm", warm),
        ):
            report.row(
                name,
                fmt_s(r.seconds),
                fmt_mib(r.peak_mib),
                f"{files / r.seconds:,.0f}",
                f"{r.seconds / hashed.seconds:.2f}x",
                f"{r.seconds / headers.seconds:.2f}x",
            )
        ratio = cold.seconds / headers.seconds
        report.target(f"cold within {COLD_RATIO:g}x of hash + headers", f"{ratio:.2f}x", ratio <= COLD_RATIO)
        report.target(
            f"warm relock under {WARM_SECONDS:g} s", f"{warm.seconds:.2f} s", warm.seconds < WARM_SECONDS
        )
        return finish(report, args.strict)


if __name__ == "__main__":
    sys.exit(main())
