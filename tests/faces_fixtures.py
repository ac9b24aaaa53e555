"""Small face-dataset folders in each dataset's real layout, with generated images (no real faces).

Used by the loader tests and the zero-shot audit tests. Each builder returns the folder to pass to the loader and
what it put there, so tests can assert exact counts.
"""

from __future__ import annotations

import csv
from pathlib import Path

from tests.helpers import random_image

CFD_HEADER = [
    "Model",
    "EthnicitySelf",
    "GenderSelf",
    "AgeSelf",
    "AgeRated",
    "FemaleProb",
    "MaleProb",
    "AsianProb",
    "BlackProb",
    "LatinoProb",
    "WhiteProb",
    "Threatening",
    "Trustworthy",
    "Attractive",
]
CFD_SUBHEADER = [
    "Target",
    "Self-reported",
    "Self-reported",
    "Self-reported",
    "Rated (years)",
    "Proportion of raters",
    "Proportion of raters",
    "Proportion of raters",
    "Proportion of raters",
    "Proportion of raters",
    "Proportion of raters",
    "1-7 Likert",
    "1-7 Likert",
    "1-7 Likert",
]

#: the U.S. set of the fixture: (race code, gender code, number) per model
CFD_US_MODELS = [
    (r, g, n) for i, (r, g) in enumerate((r, g) for r in "ABLW" for g in "FM") for n in (200 + 2 * i, 201 + 2 * i)
]


def write_image(path: Path, seed: int, size=(24, 24)) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fmt = "PNG" if path.suffix.lower() == ".png" else "JPEG"
    random_image(seed, size).save(path, fmt)
    return path


def _sheet(wb, title: str, rows: list[list]) -> None:
    ws = wb.create_sheet(title)
    ws.cell(1, 1, "Chicago Face Database 3.0")
    ws.cell(2, 1, title)
    ws.cell(3, 1, "Norming data collected from raters; see the codebook for each variable.")
    ws.cell(5, 1, "Ma, Correll, & Wittenbrink (2015). Behavior Research Methods, 47, 1122-1135.")
    for j, var in enumerate(["", *[f"R{k:03d}" for k in range(1, len(CFD_HEADER))]], 1):
        ws.cell(7, j, var or None)
    for j, name in enumerate(CFD_HEADER, 1):
        ws.cell(8, j, name)
    for j, name in enumerate(CFD_SUBHEADER, 1):
        ws.cell(9, j, name)
    for i, row in enumerate(rows):
        for j, value in enumerate(row, 1):
            ws.cell(10 + i, j, value)


def _norm_row(model: str, eth: str, gender: str, age, seed: int) -> list:
    threat = 1 + (seed * 37 % 60) / 10
    return [model, eth, gender, age, (age or 30) + 1.5, 0.1, 0.9, 0.1, 0.1, 0.1, 0.7, threat, 7 - threat / 2, 3.5]


def make_cfd(base: Path, *, workbook: bool = True) -> dict:
    """A CFD 3.0 release folder: U.S. set (16 models, some with expressions), CFD-MR and CFD-INDIA, the workbook.

    Planted irregularities: one U.S. model with no norming row (WM-215), one normed model with no images (WM-299),
    one malformed file name, a second neutral image of AF-200, a stray non-image file.
    """
    import openpyxl

    root = base / "CFD Version 3.0"
    images = root / "Images"
    seed = 0
    us_rows = []
    for r, g, n in CFD_US_MODELS:
        model = f"{r}{g}-{n}"
        age = 20 + (n % 17)
        for expr in ("N", "HC", "A") if n % 2 == 0 else ("N",):
            seed += 1
            write_image(images / "CFD" / model / f"CFD-{model}-{100 + seed:03d}-{expr}.jpg", seed)
        if model != "WM-215":
            us_rows.append(_norm_row(model, r, g, age if n != 205 else None, n))
    us_rows.append(_norm_row("WM-299", "W", "M", 33, 299))  # normed, no images
    write_image(images / "CFD" / "AF-200" / "CFD-AF-200-900-N.jpg", 901)  # second neutral image of AF-200
    write_image(images / "CFD" / "AF-200" / "CFD-AF-200-228-N (1).jpg", 902)  # a copy with a malformed name
    (images / "CFD" / "AF-200" / "notes.txt").write_text("not an image\n")

    mr_rows = []
    for g, n, eth in (("F", 300, "Asian-White"), ("M", 301, "Black-Latino")):
        model = f"M{g}-{n}"
        seed += 1
        write_image(images / "CFD-MR" / model / f"CFD-{model}-{100 + seed:03d}-N.jpg", seed)
        mr_rows.append(_norm_row(model, eth, g, 25, n))

    in_us, in_india = [], []
    for g, n, nnn in (("F", 601, 519), ("M", 602, 520)):
        seed += 1
        write_image(images / "CFD-INDIA" / f"I{g}-{n}" / f"CFD-I{g}-{n}-{nnn}-N.jpg", seed)
        in_us.append(_norm_row(f"I{g}{n}-{nnn}", "I", g, 27, n))
        row = _norm_row(f"I{g}{n}-{nnn}", "I", g, 27, n)
        row[CFD_HEADER.index("Threatening")] = 6.5  # the India raters differ
        in_india.append(row)

    if workbook:
        wb = openpyxl.Workbook()
        wb.remove(wb.active)
        readme = wb.create_sheet("README")
        readme.cell(1, 1, "CFD 3.0 Norming Data and Codebook")
        _sheet(wb, "CFD U.S. Norming Data", us_rows)
        _sheet(wb, "CFD-MR U.S. Norming Data", mr_rows)
        _sheet(wb, "CFD-I U.S. Norming Data", in_us)
        _sheet(wb, "CFD-I INDIA Norming Data", in_india)
        wb.save(root / "CFD 3.0 Norming Data and Codebook.xlsx")
    return {"root": root, "us_models": [f"{r}{g}-{n}" for r, g, n in CFD_US_MODELS]}


FAIRFACE_RACES = ["White", "Black", "Latino_Hispanic", "East Asian", "Southeast Asian", "Indian", "Middle Eastern"]
FAIRFACE_AGES = ["0-2", "3-9", "10-19", "20-29", "30-39", "40-49", "50-59", "60-69", "more than 70"]


def make_fairface(
    base: Path, n_val: int = 14, n_train: int = 4, margins=("025", "125"), folder="fairface-img-margin{}-trainval"
) -> dict:
    """FairFace: label CSVs and both margin folders (named ``folder`` with the margin's digits; Birhane et al.'s code
    reads ``fairface_margin{}``). Val row i: race i % 7, gender Male for even i.

    Planted irregularities: a val row whose image is missing, a val image without a label row, an unknown race.
    """
    base.mkdir(parents=True, exist_ok=True)
    rows = {"val": [], "train": []}
    for split, n in (("val", n_val), ("train", n_train)):
        for i in range(1, n + 1):
            race = FAIRFACE_RACES[(i - 1) % 7]
            gender = "Male" if i % 2 == 0 else "Female"
            rows[split].append([f"{split}/{i}.jpg", FAIRFACE_AGES[i % 9], gender, race, str(i % 3 == 0)])
    rows["val"].append([f"val/{n_val + 1}.jpg", "20-29", "Male", "Martian", "False"])  # unknown race label
    rows["val"].append([f"val/{n_val + 2}.jpg", "20-29", "Female", "White", "False"])  # image missing
    for split in ("train", "val"):
        with open(base / f"fairface_label_{split}.csv", "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(["file", "age", "gender", "race", "service_test"])
            w.writerows(rows[split])
    for margin in margins:
        images = base / folder.format(margin)
        for split in ("train", "val"):
            for i, row in enumerate(rows[split]):
                if row[0] == f"val/{n_val + 2}.jpg":
                    continue
                write_image(images / row[0], 1000 * (margin == "125") + 100 * (split == "train") + i)
        write_image(images / "val" / f"{n_val + 10}.jpg", 999)  # image without a label row
    return {"root": base, "n_val": n_val, "n_train": n_train}


#: real UTKFace names that break the grammar (from the released UTKFace.tar.gz)
UTK_MALFORMED = [
    "61_1_20170109142408075.jpg.chip.jpg",
    "61_1_20170109150557335.jpg.chip.jpg",
    "39_1_20170116174525125.jpg.chip.jpg",
]
UTK_IRREGULAR = ["24_0_1_20170116220224657 .jpg.chip.jpg", "55_0_0_20170116232725357jpg.chip.jpg"]


def make_utkface(base: Path) -> dict:
    """UTKFace/ aligned-and-cropped names: 2 images per race x gender, the real malformed and irregular names."""
    folder = base / "UTKFace"
    names = []
    k = 0
    for race in range(5):
        for gender in range(2):
            for j in range(2):
                k += 1
                age = 5 + 9 * k % 80
                names.append(f"{age}_{gender}_{race}_2017011{race}{gender}{j}0000{k:03d}.jpg.chip.jpg")
    for i, name in enumerate(names + UTK_MALFORMED + UTK_IRREGULAR + ["1_3_0_20161219140530307.jpg.chip.jpg"]):
        write_image(folder / name, 3000 + i)
    return {"root": folder, "regular": names}


def make_manifest(base: Path, rows: list[dict], name: str = "faces.csv", skip: tuple[str, ...] = ()) -> Path:
    """A CSV manifest with the given rows; writes an image for every ``path`` except those in ``skip``."""
    base.mkdir(parents=True, exist_ok=True)
    header = list(dict.fromkeys(k for r in rows for k in r))
    with open(base / name, "w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=header)
        w.writeheader()
        w.writerows(rows)
    for i, r in enumerate(rows):
        rel = r.get("path") or r.get("image")
        p = base / rel
        if not p.exists() and rel not in skip:
            write_image(p, 5000 + i)
    return base / name
