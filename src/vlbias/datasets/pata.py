"""PATA, the Protected-Attribute Tag Association dataset (Seth, Hemani & Agarwal, "DeAR: Debiasing Vision-Language
Models with Additive Residuals", CVPR 2023). https://github.com/pata-fairness/pata_dataset

Layout of the release (not bundled), as in github.com/pata-fairness/pata_dataset at commit
4fad61d322263154e6b5a643a01ec858abb864c4::

    pata_fairness.files.lst        one image per line: <scene>_<race>_<gender>_<age>|<url>
    pata_fairness.captions.json    per scene: "short" (the scene), "long" (its description), and "pos" / "neg":
                                   {"races": [...], "gender": [...], "age": [...]}, the positive and negative
                                   captions that apply to the scene, per protected attribute

The release lists image URLs, not images: download them into ``images/`` (option ``images``) named by their line
in ``pata_fairness.files.lst`` (0-based), as ``<line>.<ext>`` or ``<label>_<line>.<ext>`` (the two names public
downloaders of the release use). Scenes may contain ``_`` (``gun_range``), so a label is read from the right: the
last three fields are race (black, caucasian, eastasian, hispanic, indian), gender (male, female) and age (young,
old). The README's counts: 24 scenes with race and gender captions, 8 with age captions.

Table: one row per image found, ``identity`` the line (each image its own person), ``scene``, ``race`` in the common
vocabulary (caucasian -> white, eastasian -> east_asian, hispanic -> latino_hispanic) beside ``race_label``,
``gender``, ``age_group`` (young, old) and ``url``. The captions are the dataset's ``captions`` table: scene,
attribute (race, gender, age), polarity (positive, negative), caption. Lines without a downloaded image (dead
links are common), labels outside the vocabulary, malformed lines and scenes without captions are reported, never
dropped silently.

Options: ``images`` (the folder of downloaded images, relative to the release folder or absolute).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pandas as pd

from vlbias.datasets._common import common_gender, common_race, finish_table, map_labels, relative_key, scan_images
from vlbias.datasets.base import FaceDataset, LoadReport
from vlbias.errors import StimulusError
from vlbias.utils.options import Options as _Options
from vlbias.utils.options import option

DESCRIPTION = "PATA: pata_fairness.files.lst, pata_fairness.captions.json and the downloaded images/"

FILES = "pata_fairness.files.lst"
CAPTIONS = "pata_fairness.captions.json"
RACES = {"black": "black", "caucasian": "white", "eastasian": "east_asian", "hispanic": "latino_hispanic",
         "indian": "indian"}  # fmt: skip
AGES = ("young", "old")
#: the captions file's attribute keys -> the table's columns
ATTRIBUTES = {"races": "race", "gender": "gender", "age": "age"}
POLARITY = {"pos": "positive", "neg": "negative"}


def find_root(path: Path) -> Path:
    path = path.expanduser()
    if not path.exists():
        raise StimulusError(f"PATA folder not found: {path}; check the path")
    if (path / FILES).is_file():
        return path
    raise StimulusError(f"{path} holds no {FILES}; point to the PATA folder (github.com/pata-fairness/pata_dataset)")


class Options(_Options):
    OWNER = "dataset pata"

    images: str = option(
        "images",
        "folder of the downloaded images, named <line>.<ext> or <label>_<line>.<ext> (relative to the PATA folder)",
    )


def _pata_race(value: object) -> str | None:
    return RACES.get(str(value).strip().lower()) or common_race(value)


def read_captions(path: Path, report: LoadReport) -> pd.DataFrame:
    """The captions file as one row per caption: scene, description, attribute, polarity, caption."""
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise StimulusError(f"cannot read {path} ({type(e).__name__}); download it again") from None
    if not isinstance(raw, list):
        raise StimulusError(f"{path} must be a list of scenes (objects with short, long, pos and neg)")
    rows = []
    for i, scene in enumerate(raw):
        if not isinstance(scene, dict) or not isinstance(scene.get("short"), str):
            report.malformed.append(f"{CAPTIONS} entry {i + 1}: no scene name ('short')")
            continue
        for pol_key, polarity in POLARITY.items():
            per_attr = scene.get(pol_key) or {}
            if not isinstance(per_attr, dict):
                report.malformed.append(f"{CAPTIONS} scene {scene['short']}: '{pol_key}' is not a mapping")
                continue
            for attr_key, texts in per_attr.items():
                attribute = ATTRIBUTES.get(attr_key)
                if attribute is None:
                    report.unknown_labels.append(f"captions attribute={attr_key} (scene {scene['short']})")
                    continue
                for j, text in enumerate(texts or []):
                    if not isinstance(text, str) or not text.strip():
                        report.malformed.append(f"{CAPTIONS} scene {scene['short']} {pol_key}.{attr_key}[{j}]")
                        continue
                    rows.append(
                        {
                            "scene": scene["short"].strip(),
                            "description": str(scene.get("long", "")),
                            "attribute": attribute,
                            "polarity": polarity,
                            "caption": " ".join(text.split()),
                        }
                    )
    return pd.DataFrame(rows, columns=["scene", "description", "attribute", "polarity", "caption"])


def _index_images(folder: Path) -> dict[int, Path]:
    """Downloaded images by their line number: ``<line>.<ext>`` or ``<label>_<line>.<ext>``."""
    out: dict[int, Path] = {}
    for p in scan_images(folder):
        m = re.fullmatch(r"(?:.*_)?(\d+)", p.stem)
        if m is not None:
            out.setdefault(int(m.group(1)), p)
    return out


def load(path: str | Path, **options) -> FaceDataset:
    o = Options.parse(options)
    root = find_root(Path(path))
    report = LoadReport()
    folder = Path(o.images) if Path(o.images).is_absolute() else root / o.images
    if not folder.is_dir():
        raise StimulusError(
            f"no folder of PATA images at {folder}: the release lists URLs; download each line's image as "
            f"{folder.name}/<line>.<ext> (0-based line of {FILES}), or give --dataset-option images=DIR"
        )
    rows = []
    try:
        lines = (root / FILES).read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as e:
        raise StimulusError(f"cannot read {root / FILES} ({type(e).__name__}); download it again") from None
    for i, line in enumerate(lines):
        if not line.strip():
            continue
        label, sep, url = line.strip().partition("|")
        parts = label.split("_")
        if not sep or len(parts) < 4:
            report.malformed.append(f"{FILES} line {i}: {line[:80]!r}")
            continue
        *scene, race, gender, age = parts
        rows.append({"line": i, "label": label, "scene": "_".join(scene), "race_label": race, "gender_label": gender,
                     "age_label": age, "url": url.strip()})  # fmt: skip
    if not rows:
        raise StimulusError(f"{root / FILES} lists no image; download it again")
    lst = pd.DataFrame(rows)
    found = _index_images(folder)
    listed = set(lst["line"])
    report.images_without_metadata += sorted(relative_key(p, root) for n, p in found.items() if n not in listed)
    has = lst["line"].isin(found.keys())
    report.metadata_without_images += [f"line {n}: {lab} ({u})" for n, lab, u in
                                       zip(lst.loc[~has, "line"], lst.loc[~has, "label"], lst.loc[~has, "url"])]  # fmt: skip
    lst = lst[has].reset_index(drop=True)
    if lst.empty:
        raise StimulusError(f"none of the {len(rows)} PATA images is in {folder}; download them there (see --help)")

    captions = read_captions(root / CAPTIONS, report) if (root / CAPTIONS).is_file() else None
    if captions is None:
        report.notes.append(f"no {CAPTIONS}: the images load, but no caption can be scored")
    else:
        for scene in sorted(set(lst["scene"]) - set(captions["scene"])):
            report.notes.append(f"scene {scene}: images but no captions in {CAPTIONS}")
        for scene in sorted(set(captions["scene"]) - set(lst["scene"])):
            report.notes.append(f"scene {scene}: captions but no images")

    table = pd.DataFrame(
        {
            "path": [str(found[n]) for n in lst["line"]],
            "key": [relative_key(found[n], root) for n in lst["line"]],
            "identity": [f"line-{n}" for n in lst["line"]],
            "race_label": lst["race_label"],
            "gender_label": lst["gender_label"],
            "scene": lst["scene"],
            "line": lst["line"],
            "url": lst["url"],
        }
    )
    table["race"] = map_labels(lst["race_label"], _pata_race, "race", report)
    table["gender"] = map_labels(lst["gender_label"], common_gender, "gender", report)
    age = lst["age_label"].str.strip().str.lower()
    bad_age = ~age.isin(AGES)
    for label, n in lst.loc[bad_age, "age_label"].value_counts().items():
        report.unknown_labels.append(f"age={label} ({n} row{'s' if n != 1 else ''})")
    table["age_group"] = age.where(~bad_age, "").to_numpy()
    table["age"] = float("nan")
    table = finish_table(table, extra_first=("scene",))
    return FaceDataset(
        name="pata", root=root, table=table, report=report, version="PATA", options=o.to_dict(), captions=captions
    )
