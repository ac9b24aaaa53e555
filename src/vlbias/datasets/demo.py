"""Demo face datasets, written from nothing, so every audit can be tried offline (``vlbias demo``).

The pictures are synthetic (a flat colour and a block, different for every file; no real face, no download) in the
layouts vlbias reads, so the whole code path runs: loader, encoder, cache, audit, plots. The numbers they give mean
nothing.

- :func:`write_causalface`: a folder in the CausalFace release's layout (``final_picked_<attribute>/seed_<n>/``,
  512 x 512 PNGs named ``<race>_<gender>_<abbr>_<level><suffix>.png``), for ``causalface:DIR``.
- :func:`write_faces`: ``faces.csv`` (``path``, ``identity``, ``race``, ``gender``, ``age``) and ``images/``, for
  ``manifest:DIR/faces.csv``.
"""

from __future__ import annotations

import csv
import zlib
from pathlib import Path

from vlbias.datasets.causalface import ABBREVIATIONS, GENDERS, LEVELS, RACES, SIZE

#: the file-name suffix of each attribute's images in the release (smiling: the brightness-corrected copies)
SUFFIX = {"age": "_o2", "lighting": "", "pose": "", "smiling": "_o2_corrected"}
#: a few levels of each attribute (the ends and the neutral level; age and smiling pairs still differ by > 1.1)
FEW_LEVELS = {"age": (0.8, 2.3, 4.4), "lighting": (-1.0, 6.0), "pose": (-3.0, 0.0, 3.0), "smiling": (-2.5, 0.0, 4.0)}
#: the races, genders and ages of the manifest demo (race names in vlbias's common vocabulary)
FACES_RACES = ("white", "black", "east_asian", "indian")
FACES_AGES = (23, 31, 38, 46, 54, 67)


def level_text(attribute: str, level: float) -> str:
    """A level as the release's file names print it (Python's str of the study's lists)."""
    if attribute in ("age", "pose"):
        return str(float(level))
    return str(int(level)) if float(level).is_integer() else str(level)


def file_name(race: str, gender: str, attribute: str, level: float, suffix: str | None = None) -> str:
    """The release's file name of one CausalFace image."""
    suffix = SUFFIX[attribute] if suffix is None else suffix
    return f"{race}_{gender}_{ABBREVIATIONS[attribute]}_{level_text(attribute, level)}{suffix}.png"


def face_image(tag: str, size: int = SIZE):
    """A square picture that differs per ``tag`` (a flat colour and a block; PNG keeps it small and fast)."""
    from PIL import Image, ImageDraw

    h = zlib.crc32(tag.encode())
    colour = (h & 255, (h >> 8) & 255, (h >> 16) & 255)
    img = Image.new("RGB", (size, size), colour)
    d = ImageDraw.Draw(img)
    x = (h >> 3) % (size // 2)
    d.rectangle([x, size // 4, x + size // 3, size // 2], fill=(255 - colour[0], 255 - colour[1], 128))
    return img


def write_causalface(
    root: Path,
    seeds=(101, 202, 303),
    levels: dict[str, tuple[float, ...]] | None = None,
    size: int = SIZE,
    uncorrected_smiling: bool = True,
    rm_bg: bool = False,
) -> Path:
    """A CausalFace folder: ``final_picked_<attribute>/seed_<n>/<race>_<gender>_<abbr>_<level><suffix>.png`` for
    every seed (synthetic identity), race, gender and level (default: every level of the release), with the
    uncorrected ``_o2`` smiling copies and, if asked, the ``_rm_bg`` background-removed ones. Returns ``root``."""
    root = Path(root)
    levels = levels or LEVELS
    for attribute, lv in levels.items():
        for seed in seeds:
            folder = root / f"final_picked_{attribute}" / f"seed_{seed}"
            folder.mkdir(parents=True, exist_ok=True)
            for race in RACES:
                for gender in GENDERS:
                    for level in lv:
                        name = file_name(race, gender, attribute, level)
                        face_image(f"{seed}/{name}", size).save(folder / name)
                        if attribute == "smiling" and uncorrected_smiling:
                            raw = file_name(race, gender, attribute, level, "_o2")
                            face_image(f"{seed}/{raw}", size).save(folder / raw)
                        if rm_bg:
                            bg = name.replace(".png", "_rm_bg.png")
                            if attribute == "lighting":
                                bg = bg.replace("_l_", "_lighting_").replace("_rm_bg", "_o2_rm_bg")
                            elif attribute == "pose":
                                bg = bg.replace("_rm_bg", "_o2_rm_bg")
                            face_image(f"{seed}/{bg}", size).save(folder / bg)
    return root


def write_faces(root: Path, per_group: int = 3, size: int = 224) -> Path:
    """``root/faces.csv`` and ``root/images/``: ``per_group`` people of each race x gender, one picture each, ages
    spread over adulthood. Returns the CSV's path (the dataset is ``manifest:<that path>``)."""
    root = Path(root)
    (root / "images").mkdir(parents=True, exist_ok=True)
    rows = []
    for r, race in enumerate(FACES_RACES):
        for g, gender in enumerate(GENDERS):
            for k in range(per_group):
                identity = f"{race}-{gender}-{k + 1}"
                path = f"images/{identity}.png"
                face_image(identity, size).save(root / path)
                age = FACES_AGES[(2 * k + g + r) % len(FACES_AGES)]  # every group young and old alike
                rows.append({"path": path, "identity": identity, "race": race, "gender": gender, "age": age})
    csv_path = root / "faces.csv"
    with open(csv_path, "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return csv_path
