"""UTKFace (Zhang, Song & Qi, CVPR 2017). https://susanqq.github.io/UTKFace/

Not bundled (non-commercial research use). The labels are in the file names::

    <age>_<gender>_<race>_<date&time>.jpg             in-the-wild images (part1/, part2/, part3/)
    <age>_<gender>_<race>_<date&time>.jpg.chip.jpg    aligned and cropped faces (UTKFace/, crop_part1/)

age 0-116; gender 0 male, 1 female; race 0 White, 1 Black, 2 Asian, 3 Indian, 4 Others; date&time
yyyymmddHHMMSSFFF. A few real files break the grammar: ``61_1_20170109142408075.jpg.chip.jpg``,
``61_1_20170109150557335.jpg.chip.jpg`` and ``39_1_20170116174525125.jpg.chip.jpg`` lack the race field and are
reported and skipped; ``24_0_1_20170116220224657 .jpg.chip.jpg`` and ``55_0_0_20170116232725357jpg.chip.jpg`` carry
all fields in an irregular name and are kept, with a note.

UTKFace has no person ids: each photograph (its name up to the date&time) is its own identity. ``age_group`` is
the FairFace bin of the age.
"""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd

from vlbias.datasets._common import age_bin, finish_table, relative_key, require_dir, scan_images
from vlbias.datasets.base import FaceDataset, LoadReport
from vlbias.errors import StimulusError
from vlbias.utils.options import Options as _Options

DESCRIPTION = "UTKFace: labels in the file names <age>_<gender>_<race>_<datetime>.jpg[.chip.jpg]"

GENDERS = {"0": "male", "1": "female"}
RACES = {"0": ("white", "White"), "1": ("black", "Black"), "2": ("asian", "Asian"), "3": ("indian", "Indian")}
RACES["4"] = ("other", "Others")
MAX_AGE = 120

_FIELDS = r"^(?P<age>\d{1,3})_(?P<gender>\d)_(?P<race>\d)_(?P<time>\d{17})"
WELL_FORMED = re.compile(_FIELDS + r"\.jpg(?:\.chip\.jpg)?$", re.IGNORECASE)
FIELDS = re.compile(_FIELDS + r"(?!\d)")


def parse_name(name: str) -> dict | None:
    """The attributes in a UTKFace file name, or None if the name does not carry all of them validly."""
    m = FIELDS.match(name)
    if m is None or m["gender"] not in GENDERS or m["race"] not in RACES or int(m["age"]) > MAX_AGE:
        return None
    return {**m.groupdict(), "regular": WELL_FORMED.match(name) is not None}


class Options(_Options):
    OWNER = "dataset utkface"  # the release has one layout and no choices


def load(path: str | Path, **options) -> FaceDataset:
    Options.parse(options)
    root = require_dir(Path(path).expanduser(), "UTKFace folder")
    report = LoadReport()
    rows = []
    irregular = []
    for p in scan_images(root):
        key = relative_key(p, root)
        parsed = parse_name(p.name)
        if parsed is None:
            report.malformed.append(key)
            continue
        if not parsed["regular"]:
            irregular.append(key)
        race, race_label = RACES[parsed["race"]]
        rows.append(
            {
                "path": str(p),
                "key": key,
                "identity": f"{parsed['age']}_{parsed['gender']}_{parsed['race']}_{parsed['time']}",
                "race": race,
                "race_label": race_label,
                "gender": GENDERS[parsed["gender"]],
                "age": float(parsed["age"]),
                "race_code": int(parsed["race"]),
                "gender_code": int(parsed["gender"]),
                "datetime": parsed["time"],
            }
        )
    if irregular:
        report.notes.append(
            f"{len(irregular)} irregular file name(s), labels read from their fields: " + ", ".join(irregular)
        )
    if not rows:
        more = f" ({len(report.malformed)} image(s) with names that do not parse)" if report.malformed else ""
        raise StimulusError(f"no UTKFace images in {root}{more}; names must read <age>_<gender>_<race>_<datetime>.jpg")
    table = pd.DataFrame(rows)
    copies = table.duplicated("identity", keep=False)
    if copies.any():
        report.notes.append(
            f"{int(copies.sum())} images share their name with another (copies of one photo in several folders?); "
            f"they count as one person in intervals"
        )
    table["age_group"] = table["age"].map(age_bin)
    table = finish_table(table)
    return FaceDataset(name="utkface", root=root, table=table, report=report, version="UTKFace", options={})
