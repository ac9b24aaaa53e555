"""FACET (Gustafson, Rolland, Ravi, Duval, Adcock, Fu, Hall & Ross, ICCV 2023): people in 32k photographs, each with a
box, a person class among 52 and perceived attributes. https://facet.metademolab.com

Layout of the release (not bundled; evaluation use only, under its own licence), as its archives unpack::

    annotations/annotations.csv       one row per annotated person
    imgs_1/, imgs_2/, imgs_3/         the images (sa_<n>.jpg), found by file name anywhere under the folder

``annotations.csv`` columns (as the release's CSV names them; public readers such as the COCO conversion scripts
that circulate with the release read the same names): ``person_id``, ``filename``, ``class1`` (the person class),
``class2`` (a second class where one applies), ``bounding_box`` (``{"x", "y", "width", "height"}`` in pixels), and
one column per value of each perceived attribute: ``gender_presentation_{masc,fem,non_binary,na}``,
``skin_tone_{1..10,na}`` (the Monk Skin Tone scale; how many annotators chose each tone),
``age_presentation_{young,middle,older,na}``, ``hair_color_{black,blonde,brown,colored,grey,red,na}``,
``hairtype_{bald,coily,curly,dreadlocks,straight,wavy,na}``, ``has_{facial_hair,tattoo,cap,mask,headscarf,
eyeware}``, ``visible_{torso,face,minimal}`` and ``lighting_{underexposed,dimly_lit,well_lit,overexposed,na}``.

Table: one row per person, ``path`` the image and ``crop`` the person's box ``(left, upper, right, lower)``, which
the zero-shot audit applies before the model's preprocessing (so each person is classified from their own crop, and
cached embeddings are keyed by the crop too); ``key`` is ``<image path>@crop=l,u,r,b`` (the ``vectors:`` key of the
crop); ``identity`` is the person. Per attribute, the value with the most annotator votes (``na`` and ties: no
value), as ``gender_presentation`` (masc, fem, non_binary), ``age_presentation`` (young, middle, older),
``hair_color``, ``hair_type``, ``lighting``; ``skin_tone`` is the lower median of the tones the annotators chose
(every vote counted; the votes are kept in ``skin_tone_votes``) and ``skin_tone_group`` its bucket: lighter (MST
1-3), medium (4-6), darker (7-10). Common vocabulary: ``gender`` male / female for masc / fem (the perceived
presentation, as FairFace's gender is perceived), ``age_group`` the age presentation; FACET has no race. The person
class is ``person_class`` (``class1`` with ``_`` read as a space) and ``person_class2``.

Images the CSV names but the folder lacks, images no row names, classes outside the 52, and boxes that do not parse
are reported in the load report, never dropped silently.

Options: ``classes`` (keep only these person classes), ``min_box`` (leave out boxes smaller than this many pixels
on a side; 0 keeps all).
"""

from __future__ import annotations

import ast
import json
import math
from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd

from vlbias.datasets._common import finish_table, require_dir, scan_images
from vlbias.datasets.base import FaceDataset, LoadReport
from vlbias.errors import StimulusError
from vlbias.utils.io import check_columns, csv_header
from vlbias.utils.options import Options as _Options
from vlbias.utils.options import option

DESCRIPTION = "FACET: annotations/annotations.csv and the imgs_* folders (one row per annotated person, cropped)"

ANNOTATIONS = "annotations/annotations.csv"
#: the 52 person classes of FACET (the paper's table of classes; ``class1`` values with ``_`` read as a space)
CLASSES = (
    "astronaut", "backpacker", "ballplayer", "bartender", "basketball player", "boatman", "carpenter", "cheerleader",
    "climber", "computer user", "craftsman", "dancer", "disk jockey", "doctor", "drummer", "electrician", "farmer",
    "fireman", "flutist", "gardener", "guard", "guitarist", "gymnast", "hairdresser", "horseman", "judge", "laborer",
    "lawman", "lifeguard", "machinist", "motorcyclist", "nurse", "painter", "patient", "prayer", "referee",
    "repairman", "reporter", "retailer", "runner", "sculptor", "seller", "singer", "skateboarder", "soccer player",
    "soldier", "speaker", "student", "teacher", "tennis player", "trumpeter", "waiter",
)  # fmt: skip
#: attribute -> (column prefix, values); the value with the most votes is the person's (na and ties: none)
ONE_OF = {
    "gender_presentation": ("gender_presentation_", ("masc", "fem", "non_binary")),
    "age_presentation": ("age_presentation_", ("young", "middle", "older")),
    "hair_color": ("hair_color_", ("black", "blonde", "brown", "colored", "grey", "red")),
    "hair_type": ("hairtype_", ("bald", "coily", "curly", "dreadlocks", "straight", "wavy")),
    "lighting": ("lighting_", ("underexposed", "dimly_lit", "well_lit", "overexposed")),
}
FLAGS = (
    "has_facial_hair", "has_tattoo", "has_cap", "has_mask", "has_headscarf", "has_eyeware", "visible_torso",
    "visible_face", "visible_minimal",
)  # fmt: skip
SKIN_TONES = tuple(range(1, 11))
#: Monk Skin Tone buckets
SKIN_TONE_GROUPS = {"lighter": (1, 2, 3), "medium": (4, 5, 6), "darker": (7, 8, 9, 10)}
REQUIRED = ("person_id", "filename", "class1", "bounding_box")
GENDER = {"masc": "male", "fem": "female"}


def find_root(path: Path) -> Path:
    """The release folder: the one holding annotations/annotations.csv."""
    path = path.expanduser()
    if not path.exists():
        raise StimulusError(f"FACET folder not found: {path}; check the path")
    for candidate in (path, path.parent if path.name == "annotations" else None):
        if candidate is not None and (candidate / ANNOTATIONS).is_file():
            return candidate
    raise StimulusError(f"{path} holds no {ANNOTATIONS}; point to the FACET folder (with annotations/ and imgs_*/)")


def person_class(value: object) -> str | None:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    text = " ".join(str(value).replace("_", " ").split()).lower()
    return text or None


def _classes(value) -> tuple[str, ...]:
    items = value.split(",") if isinstance(value, str) else list(value)
    out = tuple(dict.fromkeys(c for c in (person_class(v) for v in items) if c))
    bad = [c for c in out if c not in CLASSES]
    if bad:
        raise StimulusError(
            f"unknown FACET class(es) {', '.join(map(repr, bad))}; FACET's classes: {', '.join(CLASSES)}"
        )
    return out


class Options(_Options):
    OWNER = "dataset facet"

    classes: tuple[str, ...] = option(
        (), "keep only these person classes (a list) [default: all 52]", normalise=_classes
    )
    min_box: int = option(
        0, "leave out people whose box is smaller than this many pixels on a side (0: keep all)", min=0
    )


def parse_box(value: object) -> tuple[int, int, int, int] | None:
    """``{"x", "y", "width", "height"}`` (JSON or a Python literal) as a crop box (left, upper, right, lower): the
    smallest whole-pixel box that holds it."""
    if not isinstance(value, str) or not value.strip():
        return None
    try:
        box = json.loads(value)
    except json.JSONDecodeError:
        try:
            box = ast.literal_eval(value.strip())
        except (ValueError, SyntaxError):
            return None
    try:
        x, y, w, h = (float(box[k]) for k in ("x", "y", "width", "height"))
    except (KeyError, TypeError, ValueError):
        return None
    if not all(map(math.isfinite, (x, y, w, h))) or w <= 0 or h <= 0:
        return None
    return (math.floor(x), math.floor(y), math.ceil(x + w), math.ceil(y + h))


def _votes(df: pd.DataFrame, prefix: str, values: tuple) -> np.ndarray:
    cols = [f"{prefix}{v}" for v in values]
    present = [c for c in cols if c in df.columns]
    out = np.zeros((len(df), len(cols)))
    for j, c in enumerate(cols):
        if c in present:
            out[:, j] = pd.to_numeric(df[c], errors="coerce").fillna(0).to_numpy()
    return out


def _one_of(votes: np.ndarray, values: tuple) -> tuple[list, int]:
    """The value with the most votes per row (None without votes or on a tie), and how many rows tied."""
    best = votes.max(axis=1)
    n_best = (votes == best[:, None]).sum(axis=1)
    out = [values[int(votes[i].argmax())] if best[i] > 0 and n_best[i] == 1 else None for i in range(len(votes))]
    return out, int(((best > 0) & (n_best > 1)).sum())


def skin_tone_median(votes: np.ndarray) -> list[int | None]:
    """Per row, the lower median of the chosen tones, every vote counted (None without votes)."""
    out: list[int | None] = []
    for row in votes:
        counts = np.round(row).astype(int)
        total = int(counts.sum())
        if total <= 0:
            out.append(None)
            continue
        cum = np.cumsum(counts)
        out.append(int(np.searchsorted(cum, (total + 1) // 2) + 1))
    return out


def skin_tone_group(tone: int | None) -> str | None:
    return next((g for g, tones in SKIN_TONE_GROUPS.items() if tone in tones), None)


def load(path: str | Path, **options) -> FaceDataset:
    o = Options.parse(options)
    root = find_root(Path(path))
    csv_path = root / ANNOTATIONS
    check_columns(csv_header(csv_path), str(csv_path), StimulusError)
    try:
        ann = pd.read_csv(csv_path, dtype=str, keep_default_na=False)
    except (OSError, UnicodeDecodeError, pd.errors.ParserError) as e:
        raise StimulusError(f"cannot read {csv_path} ({type(e).__name__}); download the annotations again") from None
    missing = [c for c in REQUIRED if c not in ann.columns]
    if missing:
        raise StimulusError(
            f"{csv_path} lacks column(s) {', '.join(missing)}; FACET's annotations have {', '.join(REQUIRED)}"
        )
    report = LoadReport()
    ann = ann.replace({"": None})
    dup = ann["person_id"].duplicated()
    if dup.any():
        report.notes.append(f"{int(dup.sum())} person_id(s) listed twice in {ANNOTATIONS}; the first row is used")
        ann = ann[~dup]

    images: dict[str, Path] = {}
    twice: list[str] = []
    for p in scan_images(require_dir(root, "FACET folder")):
        if p.name in images:
            twice.append(p.name)
        else:
            images[p.name] = p
    if twice:
        report.notes.append(f"{len(twice)} image file name(s) found twice under {root}; the first is used: {twice[0]}")
    named = set(ann["filename"].dropna())
    report.images_without_metadata += sorted(
        Path(p).relative_to(root).as_posix() for n, p in images.items() if n not in named
    )
    has_image = ann["filename"].isin(images.keys())
    for fname, pid in zip(ann.loc[~has_image, "filename"], ann.loc[~has_image, "person_id"]):
        report.metadata_without_images.append(f"{fname} (person {pid})")
    ann = ann[has_image].reset_index(drop=True)

    ann["person_class"] = ann["class1"].map(person_class)
    ann["person_class2"] = ann["class2"].map(person_class) if "class2" in ann.columns else None
    unknown = ~ann["person_class"].isin(CLASSES)
    for label, n in Counter(ann.loc[unknown, "class1"].fillna("(empty)")).most_common():
        report.unknown_labels.append(f"class1={label} ({n} row{'s' if n != 1 else ''})")
    bad2 = ann["person_class2"].notna() & ~ann["person_class2"].isin(CLASSES)
    for label, n in Counter(ann.loc[bad2, "class2"]).most_common():
        report.unknown_labels.append(f"class2={label} ({n} row{'s' if n != 1 else ''})")
    ann.loc[bad2, "person_class2"] = None
    ann = ann[~unknown].reset_index(drop=True)

    ann["crop"] = [parse_box(b) for b in ann["bounding_box"]]
    bad_box = ann["crop"].isna()
    report.malformed += [
        f"{f} (person {p}): bounding_box {b!r}"
        for f, p, b in zip(
            ann.loc[bad_box, "filename"], ann.loc[bad_box, "person_id"], ann.loc[bad_box, "bounding_box"]
        )
    ]
    ann = ann[~bad_box].reset_index(drop=True)
    if o.min_box:
        small = [min(c[2] - c[0], c[3] - c[1]) < o.min_box for c in ann["crop"]]
        if any(small):
            report.notes.append(f"{sum(small)} people with a box under {o.min_box} px on a side left out (min_box)")
            ann = ann[~np.array(small)].reset_index(drop=True)
    if o.classes:
        ann = ann[ann["person_class"].isin(o.classes)].reset_index(drop=True)
    if ann.empty:
        raise StimulusError(f"no FACET person with an image, a known class and a box under {root}; check the folder")

    for attr, (prefix, values) in ONE_OF.items():
        ann[attr], ties = _one_of(_votes(ann, prefix, values), values)
        if ties:
            report.notes.append(f"{ties} people with tied votes for {attr}: no {attr} value")
    tone_votes = _votes(ann, "skin_tone_", SKIN_TONES)
    ann["skin_tone"] = pd.array(skin_tone_median(tone_votes), dtype="Int64")
    ann["skin_tone_votes"] = [
        ",".join(f"{t}:{int(v)}" for t, v in zip(SKIN_TONES, row) if v > 0) for row in np.round(tone_votes)
    ]
    ann["skin_tone_group"] = [skin_tone_group(None if pd.isna(t) else int(t)) for t in ann["skin_tone"]]
    for flag in FLAGS:
        if flag in ann.columns:
            ann[flag] = pd.to_numeric(ann[flag], errors="coerce").fillna(0) > 0

    crop_keys = ["@crop=" + ",".join(str(v) for v in c) for c in ann["crop"]]
    rel = [images[f].relative_to(root).as_posix() for f in ann["filename"]]
    table = pd.DataFrame(
        {
            "path": [str(images[f]) for f in ann["filename"]],
            "key": [r + k for r, k in zip(rel, crop_keys)],
            "identity": ann["person_id"].astype(str),
            "race": None,
            "race_label": None,
            "gender": ann["gender_presentation"].map(GENDER),
            "age": float("nan"),
            "age_group": ann["age_presentation"].fillna(""),
        }
    )
    keep = [
        "filename",
        "person_class",
        "person_class2",
        "crop",
        *ONE_OF,
        "skin_tone",
        "skin_tone_group",
        "skin_tone_votes",
        *(f for f in FLAGS if f in ann.columns),
        "class1",
        "class2",
        "bounding_box",
    ]
    for col in keep:
        if col in ann.columns:
            table[col] = ann[col].to_numpy()
    for col in ("person_class2", *ONE_OF, "skin_tone_group", "class2"):  # a missing label is None, as in race
        table[col] = table[col].astype(object).where(table[col].notna(), None)
    table = finish_table(
        table, extra_first=("person_class", "gender_presentation", "skin_tone_group", "age_presentation")
    )
    return FaceDataset(name="facet", root=root, table=table, report=report, version="FACET", options=o.to_dict())
