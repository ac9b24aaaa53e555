"""CausalFace (Liang, Perona & Balakrishnan, ICCV 2023): synthetic faces that vary one attribute at a time.

The release is a folder with one sub-folder per varied attribute, one folder per synthetic identity (generator
seed) inside, and one PNG (512 x 512) per race x gender x level::

    final_picked_age/seed_<n>/{race}_{gender}_age_{level}_o2.png            levels 0.8 1.4 2.0 2.3 2.6 2.9 3.2 3.5 3.8 4.4
    final_picked_lighting/seed_<n>/{race}_{gender}_l_{level}.png            levels -1 0 1 2 3 4 5 6   (neutral -1)
    final_picked_pose/seed_<n>/{race}_{gender}_y_{level}.png                levels -3.0 -1.5 0.0 1.5 3.0   (neutral 0)
    final_picked_smiling/seed_<n>/{race}_{gender}_smiling_{level}_o2.png    levels -2.5 -1.5 -0.5 0 0.5 1 1.5 2 3 4
    final_picked_smiling/seed_<n>/{race}_{gender}_smiling_{level}_o2_corrected.png   (brightness-corrected; preferred)

race is asian, black or white and gender female or male; levels are written as Python prints them (``0.8``,
``-1``, ``0.0``). Background-removed copies carry ``_rm_bg`` (the lighting ones spell the attribute
``lighting`` instead of ``l``). Each seed is one synthetic identity, rendered in all six race x gender versions.

Before encoding, the study (Hausladen, Knott, Camerer & Perona, FAccT 2025) crops every face to
(40, 0, 472, 432) (left, top, right, bottom), and the turned heads of the pose folder to (0, 0, 432, 432) at
pose -3 and -1.5 and to (80, 0, 512, 432) at +1.5 and +3. The crop box of each image is in the ``crop`` column;
the audit passes it to the encoder as ``ImageRef(path, crop)``, so cached embeddings are keyed by the crop too.
Images of another size than 512 x 512 (a resized copy of the release) get the boxes scaled to their size.

Options (``load_dataset("causalface:PATH", **options)``, or ``--dataset-option KEY=VALUE``):

- ``background``: ``original`` (default) or ``removed`` (the ``_rm_bg`` copies only).
- ``smiling_corrected``: prefer the brightness-corrected smiling files where present (default true); false uses
  the uncorrected ``_o2`` files; ``only`` uses the corrected files alone and leaves out a smiling image that has
  none (the study's loader, which skips a missing file).
- ``attributes``: the varied attributes to load, e.g. ``age,smiling`` (default: every folder found).
- ``crop``: false leaves the crop column empty (whole 512 x 512 images).

PATH is the folder that holds the ``final_picked_*`` folders, or one ``final_picked_<attribute>`` folder.
"""

from __future__ import annotations

import re
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd

from vlbias.datasets.base import FaceDataset, LoadReport
from vlbias.errors import StimulusError, plural
from vlbias.utils.options import Options as _Options
from vlbias.utils.options import option

DESCRIPTION = (
    "CausalFace (Liang, Perona & Balakrishnan, ICCV 2023): synthetic faces varying age, lighting, pose or smiling "
    "one at a time; causalface:PATH (the folder holding final_picked_*)"
)
VERSION = "CausalFace final_picked release"

#: varied attribute -> the abbreviation its file names use
ABBREVIATIONS = {"age": "age", "lighting": "l", "pose": "y", "smiling": "smiling"}
#: the levels of the release, as the study lists them
LEVELS = {
    "age": (0.8, 1.4, 2.0, 2.3, 2.6, 2.9, 3.2, 3.5, 3.8, 4.4),
    "lighting": (-1.0, 0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0),
    "pose": (-3.0, -1.5, 0.0, 1.5, 3.0),
    "smiling": (-2.5, -1.5, -0.5, 0.0, 0.5, 1.0, 1.5, 2.0, 3.0, 4.0),
}
RACES = ("asian", "black", "white")
GENDERS = ("female", "male")
SIZE = 512
CROP = (40, 0, 472, 432)
CROP_POSE_LEFT = (0, 0, 432, 432)  # pose -3, -1.5
CROP_POSE_RIGHT = (80, 0, 512, 432)  # pose +1.5, +3

_NAME = re.compile(
    r"^(?P<race>[a-z]+)_(?P<gender>[a-z]+)_(?P<abbr>age|lighting|l|y|smiling)_(?P<level>-?\d+(?:\.\d+)?)"
    r"(?P<o2>_o2)?(?P<corrected>_corrected)?(?P<rm_bg>_rm_bg)?\.png$"
)
_SEED = re.compile(r"^seed_(\d+)$")
_FOLDER = re.compile(r"^final_picked_(\w+)$")


def crop_box(attribute: str, level: float, size: tuple[int, int] = (SIZE, SIZE)) -> tuple[int, int, int, int]:
    """The study's crop box for an image of ``attribute`` at ``level`` (scaled if the image is not 512 x 512)."""
    box = CROP
    if attribute == "pose" and level < 0:
        box = CROP_POSE_LEFT
    elif attribute == "pose" and level > 0:
        box = CROP_POSE_RIGHT
    w, h = size
    if (w, h) == (SIZE, SIZE):
        return box
    sx, sy = w / SIZE, h / SIZE
    return (round(box[0] * sx), round(box[1] * sy), round(box[2] * sx), round(box[3] * sy))


def _image_size(path: Path) -> tuple[int, int] | None:
    from PIL import Image

    try:
        with Image.open(path) as im:
            return im.size
    except Exception:  # noqa: BLE001 - an unreadable file is reported by the encoder, by name
        return None


def _subset_folders(root: Path, wanted: list[str] | None, report: LoadReport) -> dict[str, Path]:
    if not root.exists():
        raise StimulusError(f"CausalFace folder not found: {root}; check the path")
    if not root.is_dir():
        raise StimulusError(f"causalface:{root} is not a folder; point it at the folder holding final_picked_*")
    m = _FOLDER.match(root.name)
    candidates = [root] if m else sorted(p for p in root.iterdir() if p.is_dir() and _FOLDER.match(p.name))
    folders: dict[str, Path] = {}
    for p in candidates:
        attribute = _FOLDER.match(p.name).group(1)
        if attribute not in ABBREVIATIONS:
            report.notes.append(f"{p.name}: not one of the four CausalFace attribute folders; ignored")
            continue
        if wanted is None or attribute in wanted:
            folders[attribute] = p
    if not folders:
        names = ", ".join(f"final_picked_{a}" for a in (wanted or ABBREVIATIONS))
        raise StimulusError(
            f"no CausalFace images under {root}: expected folders {names}; point causalface: at the folder that holds them"
        )
    return folders


class Options(_Options):
    OWNER = "dataset causalface"

    background: Literal["original", "removed"] = option("original", "original, or removed (the _rm_bg copies only)")
    smiling_corrected: bool | Literal["only"] = option(
        True,
        "prefer the brightness-corrected smiling files (true), use the uncorrected ones (false), or the "
        "corrected ones alone, an image without one left out (only: the study)",
    )
    attributes: tuple[str, ...] | None = option(
        None,
        "the varied attributes to load, some of age, lighting, pose, smiling [default: every folder found]",
        choices=tuple(ABBREVIATIONS),
    )
    crop: bool = option(True, "crop each face to the study's box (false: whole 512 x 512 images)")

    @classmethod
    def _finish(cls, values, ctx):
        if values["attributes"] is not None and not values["attributes"]:
            raise ctx.error(cls.field("attributes"), "", "names no attribute; use some of " + ", ".join(ABBREVIATIONS))
        return values


def load(path: str | Path, **options) -> FaceDataset:
    """Read a CausalFace folder into the face-dataset table (one row per image), with a report of what did not fit."""
    o = Options.parse(options)
    background, smiling_corrected, crop = o.background, o.smiling_corrected, o.crop
    attributes = list(o.attributes) if o.attributes is not None else None
    path = Path(path).expanduser()
    report = LoadReport()
    folders = _subset_folders(path, attributes, report)
    root = path.parent if _FOLDER.match(path.name) else path
    want_rm_bg = background == "removed"

    rows: list[dict] = []
    for attribute, folder in folders.items():
        for seed_dir in sorted(folder.iterdir()):
            if seed_dir.name.startswith("."):
                continue
            sm = _SEED.match(seed_dir.name)
            if not seed_dir.is_dir() or not sm:
                report.malformed.append(f"{seed_dir.relative_to(root).as_posix()} (not a seed_<number> folder)")
                continue
            for f in sorted(seed_dir.iterdir()):
                if f.name.startswith(".") or not f.is_file():
                    continue
                rel = f.relative_to(root).as_posix()
                m = _NAME.match(f.name)
                abbr_ok = m and (
                    m["abbr"] == ABBREVIATIONS[attribute] or (attribute == "lighting" and m["abbr"] == "lighting")
                )
                if not m or not abbr_ok:
                    report.malformed.append(f"{rel} (not {{race}}_{{gender}}_{ABBREVIATIONS[attribute]}_{{level}}.png)")
                    continue
                rows.append(
                    {
                        "path": str(f),
                        "key": rel,
                        "face_seed": int(sm.group(1)),
                        "race_label": m["race"],
                        "gender_label": m["gender"],
                        "attribute": attribute,
                        "level": float(m["level"]),
                        "o2": bool(m["o2"]),
                        "corrected": bool(m["corrected"]),
                        "rm_bg": bool(m["rm_bg"]),
                    }
                )
    table = pd.DataFrame(
        rows,
        columns=["path", "key", "face_seed", "race_label", "gender_label", "attribute", "level", "o2", "corrected", "rm_bg"],
    )
    table = _select_variants(table, want_rm_bg, smiling_corrected, report)
    table = _check_labels(table, report)
    if table.empty:
        raise StimulusError(
            f"no usable CausalFace images under {root} "
            f"({report.summary()}); expected names like white_female_age_2.3_o2.png in final_picked_age/seed_<n>/"
        )
    _report_levels(table, report)
    _report_missing(table, report)

    sizes = _sizes(table["path"].tolist())
    odd = [(k, s) for k, s in zip(table["key"], sizes) if s is not None and s != (SIZE, SIZE)]
    if odd:
        report.notes.append(
            f"{len(odd)} image(s) are not {SIZE}x{SIZE} (e.g. {odd[0][0]}: {odd[0][1][0]}x{odd[0][1][1]}); "
            "their crop boxes were scaled to their size"
        )
    if crop:
        table["crop"] = [
            crop_box(a, lv, s or (SIZE, SIZE)) for a, lv, s in zip(table["attribute"], table["level"], sizes)
        ]
    else:
        table["crop"] = None

    table["identity"] = "seed_" + table["face_seed"].astype(str)
    table["race"] = table["race_label"]
    table["gender"] = table["gender_label"]
    table["age"] = np.nan
    table["age_group"] = ""
    table["variant"] = [
        ("_o2" if o else "") + ("_corrected" if c else "") + ("_rm_bg" if r else "")
        for o, c, r in zip(table["o2"], table["corrected"], table["rm_bg"])
    ]
    order = ["path", "key", "identity", "race", "race_label", "gender", "age", "age_group", "face_seed", "attribute"]
    order += ["level", "variant", "o2", "corrected", "rm_bg", "crop"]
    table = table[order].sort_values(["attribute", "face_seed", "race", "gender", "level"], kind="stable")
    table = table.reset_index(drop=True)
    options = o.to_dict()
    options["attributes"] = sorted(folders)
    return FaceDataset(name="causalface", root=root, table=table, report=report, version=VERSION, options=options)


def _select_variants(table: pd.DataFrame, want_rm_bg: bool, smiling_corrected: bool | str, report: LoadReport):
    """One file per (attribute, seed, race, gender, level): the background choice, then the study's preference."""
    if table.empty:
        return table
    other_bg = table["rm_bg"] != want_rm_bg
    n_other = int(other_bg.sum())
    if n_other:
        what = "background-removed (_rm_bg)" if not want_rm_bg else "original-background"
        option = "background=removed" if not want_rm_bg else "background=original"
        report.notes.append(f"{n_other} {what} file(s) left out; pass the dataset option {option} to use them")
    table = table[~other_bg].copy()
    smiling = table["attribute"] == "smiling"
    if smiling_corrected == "only":
        n = int((smiling & ~table["corrected"]).sum())
        if n:
            report.notes.append(f"{n} uncorrected smiling file(s) left out (smiling_corrected=only)")
        table = table[~(smiling & ~table["corrected"])]
    elif not smiling_corrected:
        n = int((smiling & table["corrected"]).sum())
        if n:
            report.notes.append(f"{n} brightness-corrected smiling file(s) left out (smiling_corrected=false)")
        table = table[~(smiling & table["corrected"])]
    # preference: corrected (smiling) > _o2 > plain; the rest of a duplicate set is reported
    table = table.assign(_pref=-(2 * table["corrected"].astype(int) + table["o2"].astype(int)))
    table = table.sort_values(["attribute", "face_seed", "race_label", "gender_label", "level", "_pref"], kind="stable")
    dup = table.duplicated(["attribute", "face_seed", "race_label", "gender_label", "level"], keep="first")
    superseded = table.loc[dup, "key"].tolist()
    if superseded:
        corrected_won = int((dup & (table["attribute"] == "smiling")).sum())
        report.notes.append(
            f"{len(superseded)} file(s) superseded by a preferred variant of the same image"
            + (f" ({corrected_won} uncorrected smiling files replaced by _o2_corrected ones)" if corrected_won else "")
        )
    return table[~dup].drop(columns="_pref")


def _check_labels(table: pd.DataFrame, report: LoadReport) -> pd.DataFrame:
    bad = pd.Series(False, index=table.index)
    for col, allowed, name in (("race_label", RACES, "race"), ("gender_label", GENDERS, "gender")):
        wrong = ~table[col].isin(allowed)
        for value, n in table.loc[wrong, col].value_counts().items():
            report.unknown_labels.append(f"{name}={value} ({n} rows)")
        bad |= wrong
    return table[~bad]


def _report_levels(table: pd.DataFrame, report: LoadReport) -> None:
    for attribute, levels in LEVELS.items():
        sub = table[(table["attribute"] == attribute) & ~table["level"].isin(levels)]
        for value, n in sub["level"].value_counts().sort_index().items():
            report.unknown_labels.append(f"{attribute} level={value:g} ({n} rows; not a level of the release)")


def _report_missing(table: pd.DataFrame, report: LoadReport) -> None:
    """Seeds whose race x gender x level grid is incomplete (the analyses use what is there)."""
    for attribute, sub in table.groupby("attribute", sort=True):
        levels = sorted(set(LEVELS[attribute]) | set(sub["level"]))
        expected = len(RACES) * len(GENDERS) * len(levels)
        counts = sub.groupby("face_seed").size()
        short = counts[counts < expected]
        if len(short):
            lack = sorted({int(n) for n in expected - short})  # per seed
            how_many = str(lack[0]) if len(lack) == 1 else f"{lack[0]} to {lack[-1]}"
            report.notes.append(
                f"final_picked_{attribute}: {len(short)} of {plural(len(counts), 'seed')} "
                f"{'lacks' if len(short) == 1 else 'lack'} {how_many} of the {expected} race x gender x level images "
                "each seed has in the release"
            )


def _sizes(paths: list[str]) -> list[tuple[int, int] | None]:
    if len(paths) < 64:
        return [_image_size(Path(p)) for p in paths]
    with ThreadPoolExecutor(max_workers=8) as pool:
        return list(pool.map(lambda p: _image_size(Path(p)), paths, chunksize=64))
