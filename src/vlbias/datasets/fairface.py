"""FairFace (Kärkkäinen & Joo, WACV 2021). https://github.com/joojs/fairface

Layout of the release (not bundled; CC BY 4.0)::

    fairface_label_train.csv, fairface_label_val.csv     columns file, age, gender, race, service_test
    fairface-img-margin025-trainval/{train,val}/<n>.jpg  faces cropped with margin 0.25 (the padding=0.25 release)
    fairface-img-margin125-trainval/{train,val}/<n>.jpg  the same faces with margin 1.25

``file`` is the image path relative to the margin folder (``val/1.jpg``). Images directly under the dataset
folder (``<root>/val/1.jpg``) work too. Labels: race White, Black, Latino_Hispanic, East Asian, Southeast Asian,
Indian, Middle Eastern; gender Male, Female; age one of nine bins (0-2 … "more than 70").

FairFace has no person ids: each image is its own identity (``val/1``).

Options: ``split`` ("val" by default, the split DataComp and the CLIP paper evaluate; "train"; "all"), ``margin``
("0.25" by default, or "1.25"), ``service_test`` (True: only the rows flagged ``service_test``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import pandas as pd

from vlbias.datasets._common import (
    FAIRFACE_AGE_BINS,
    common_gender,
    common_race,
    finish_table,
    map_labels,
    require_dir,
    scan_images,
)
from vlbias.datasets.base import FaceDataset, LoadReport
from vlbias.errors import StimulusError
from vlbias.utils.io import check_columns, csv_header
from vlbias.utils.options import Options as _Options
from vlbias.utils.options import option

DESCRIPTION = "FairFace: fairface_label_{train,val}.csv and the margin 0.25 / 1.25 image folders"

SPLITS = ("train", "val")
COLUMNS = ("file", "age", "gender", "race", "service_test")
#: folder names of each margin's images (fairface_margin125: Birhane et al. 2024's code, evaluate-clip-models.py)
MARGIN_FOLDERS = {
    "0.25": (
        "fairface-img-margin025-trainval",
        "fairface-img-margin025",
        "margin025",
        "padding_0.25",
        "fairface_margin025",
    ),
    "1.25": (
        "fairface-img-margin125-trainval",
        "fairface-img-margin125",
        "margin125",
        "padding_1.25",
        "fairface_margin125",
    ),
}


def _margin(value) -> str:
    text = str(value).strip().lower().replace("margin", "").replace("padding", "").strip(" _=")
    aliases = {"0.25": "0.25", ".25": "0.25", "025": "0.25", "1.25": "1.25", "125": "1.25"}
    if text not in aliases:
        raise StimulusError(f"unknown FairFace margin {value!r}; use 0.25 or 1.25")
    return aliases[text]


def _image_folder(root: Path, margin: str, splits: list[str]) -> tuple[Path, str]:
    """The folder that holds ``train/`` and ``val/`` for the margin; returns it and how it was found."""
    for name in MARGIN_FOLDERS[margin]:
        if (root / name).is_dir():
            return root / name, name
    other = "1.25" if margin == "0.25" else "0.25"
    other_found = [n for n in MARGIN_FOLDERS[other] if (root / n).is_dir()]
    if any((root / s).is_dir() for s in splits) and not other_found:
        return root, ""
    if other_found:
        raise StimulusError(
            f"{root} has the margin {other} images ({other_found[0]}/) but not the margin {margin} ones "
            f"({MARGIN_FOLDERS[margin][0]}/); unzip them there or use --dataset-option margin={other}"
        )
    raise StimulusError(
        f"no FairFace images in {root}: expected {MARGIN_FOLDERS[margin][0]}/{{train,val}}/ (or {{train,val}}/); "
        f"unzip the FairFace image archive there"
    )


def _read_labels(root: Path, folder: Path, split: str) -> pd.DataFrame:
    name = f"fairface_label_{split}.csv"
    for candidate in (root / name, folder / name):
        if candidate.is_file():
            break
    else:
        raise StimulusError(f"{name} not found in {root}; download FairFace's label files next to the images")
    try:
        df = pd.read_csv(candidate, dtype=str, keep_default_na=False)
    except (OSError, UnicodeDecodeError, pd.errors.ParserError) as e:
        raise StimulusError(f"cannot read {candidate} ({type(e).__name__}); re-download it") from None
    check_columns(csv_header(candidate), str(candidate), StimulusError)
    missing = [c for c in COLUMNS if c not in df.columns]
    if missing:
        raise StimulusError(
            f"{candidate} lacks column(s) {', '.join(missing)}; FairFace label files have {', '.join(COLUMNS)}"
        )
    df["split"] = split
    return df


class Options(_Options):
    OWNER = "dataset fairface"

    split: Literal["val", "train", "all"] = option("val", "which labelled split: val, train or all")
    margin: str = option("0.25", "the image margin of the release: 0.25 or 1.25", normalise=_margin)
    service_test: bool = option(False, "only the images FairFace marks service_test (its balanced test subset)")


def load(path: str | Path, **options) -> FaceDataset:
    o = Options.parse(options)
    split, margin, service_test = o.split, o.margin, o.service_test
    root = require_dir(Path(path).expanduser(), "FairFace folder")
    splits = list(SPLITS) if split == "all" else [split]
    folder, folder_name = _image_folder(root, margin, splits)
    report = LoadReport()
    if not folder_name:
        report.notes.append(f"images found directly under {root}: the margin ({margin}) is assumed, not checked")

    labels = pd.concat([_read_labels(root, folder, s) for s in splits], ignore_index=True)
    labels["file"] = labels["file"].str.strip().str.replace("\\", "/", regex=False)
    dup = labels.duplicated("file")
    if dup.any():
        report.notes.append(f"{int(dup.sum())} file(s) listed twice in the label files; the first row is used")
        labels = labels[~dup]
    on_disk = {
        p.relative_to(folder).as_posix(): p for s in splits if (folder / s).is_dir() for p in scan_images(folder / s)
    }
    labelled = set(labels["file"])
    report.images_without_metadata += sorted(k for k in on_disk if k not in labelled)
    has_image = labels["file"].isin(on_disk.keys())
    report.metadata_without_images += labels.loc[~has_image, "file"].tolist()
    labels = labels[has_image]
    if service_test:
        labels = labels[labels["service_test"].str.strip().str.lower() == "true"]
    if labels.empty:
        raise StimulusError(f"none of the images in the FairFace {split} labels exist under {folder}; check the path")

    table = pd.DataFrame(
        {
            "path": [str(on_disk[f]) for f in labels["file"]],
            "key": [(Path(folder_name) / f).as_posix() if folder_name else f for f in labels["file"]],
            "identity": [f.rsplit(".", 1)[0] for f in labels["file"]],
            "race_label": labels["race"].to_numpy(),
            "age_group": labels["age"].str.strip().to_numpy(),
            "split": labels["split"].to_numpy(),
            "service_test": (labels["service_test"].str.strip().str.lower() == "true").to_numpy(),
            "margin": margin,
        }
    )
    table["race"] = map_labels(table["race_label"], common_race, "race", report)
    table["gender"] = map_labels(labels["gender"].reset_index(drop=True), common_gender, "gender", report)
    bad_age = ~table["age_group"].isin(FAIRFACE_AGE_BINS)
    for label, n in table.loc[bad_age, "age_group"].value_counts().items():
        report.unknown_labels.append(f"age={label} ({n} row{'s' if n != 1 else ''})")
    table.loc[bad_age, "age_group"] = ""
    table["age"] = float("nan")
    table = finish_table(table, extra_first=("split",))
    return FaceDataset(
        name="fairface",
        root=root,
        table=table,
        report=report,
        version=f"FairFace (margin {margin})",
        options=o.to_dict(),
    )
