"""Chicago Face Database 3.0 (Ma, Correll & Wittenbrink 2015; CFD-MR: Ma, Kantner & Wittenbrink 2021; CFD-INDIA:
Lakshmi, Wittenbrink, Correll & Ma 2021). https://www.chicagofaces.org/

Layout of the release (not bundled; licensed for research use by the CFD team)::

    CFD Version 3.0/
        CFD 3.0 Norming Data and Codebook.xlsx
        Images/CFD/<Model>/CFD-<R><G>-<id>-<nnn>-<EXPR>.jpg        e.g. Images/CFD/AF-200/CFD-AF-200-228-N.jpg
        Images/CFD-MR/<Model>/CFD-M<G>-<id>-<nnn>-N.jpg
        Images/CFD-INDIA/<Model>/CFD-I<G>-<id>-<nnn>-N.jpg

R is the race code (A Asian, B Black, L Latino, W White; M multiracial in CFD-MR; I Indian in CFD-INDIA), G the
gender (F, M), EXPR the expression (N neutral, HC happy closed mouth, HO happy open mouth, A angry, F fearful).

The workbook has one sheet per set: "CFD U.S. Norming Data", "CFD-MR U.S. Norming Data", "CFD-I U.S. Norming
Data" and "CFD-I INDIA Norming Data" (the India set rated by raters in the U.S. and in India). Each sheet has a
preamble, the header on spreadsheet row 8 (``Model``, ``EthnicitySelf``, ``GenderSelf``, ``AgeSelf``,
``AgeRated``, …, rated traits such as ``Threatening`` and ``Trustworthy``), one sub-header row, then one row per
model. The U.S. sheets key models as ``AF-200``; the India sheets as ``IF601-519``: both are matched to the
images by race, gender and the first number.

Options: ``subsets`` ("CFD" by default; "CFD-MR", "CFD-INDIA", a list, or "all"), ``expressions`` ("N" by default,
a list, or "all"), ``one_per_person`` (True: one image per person and expression), ``norming`` ("us" or "india",
which sheet rates CFD-INDIA), ``workbook`` (a path, if the workbook is elsewhere).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal

import pandas as pd

from vlbias.datasets._common import age_bin, common_gender, common_race, finish_table, relative_key, scan_images
from vlbias.datasets.base import FaceDataset, LoadReport
from vlbias.errors import StimulusError
from vlbias.utils.options import Options as _Options
from vlbias.utils.options import option

DESCRIPTION = "Chicago Face Database 3.0 (CFD, CFD-MR, CFD-INDIA): images and the norming workbook"

WORKBOOK = "CFD 3.0 Norming Data and Codebook.xlsx"
RELEASE_FOLDER = "CFD Version 3.0"
SUBSETS = ("CFD", "CFD-MR", "CFD-INDIA")
SHEETS = {
    ("CFD", "us"): "CFD U.S. Norming Data",
    ("CFD-MR", "us"): "CFD-MR U.S. Norming Data",
    ("CFD-INDIA", "us"): "CFD-I U.S. Norming Data",
    ("CFD-INDIA", "india"): "CFD-I INDIA Norming Data",
}
HEADER_ROW = 8  # spreadsheet row of the column names; one sub-header row follows
EXPRESSIONS = {"N": "neutral", "HC": "happy, closed mouth", "HO": "happy, open mouth", "A": "angry", "F": "fearful"}
RACE_CODES = {
    "A": "asian",
    "B": "black",
    "L": "latino_hispanic",
    "W": "white",
    "M": "multiracial",
    "I": "indian",
}
GENDER_CODES = {"F": "female", "M": "male"}

FILE_RE = re.compile(
    r"^CFD-(?P<race>[ABLWMI])(?P<gender>[FM])-(?P<id>\d+)-(?P<nnn>\d+)(?:-(?P<rep>\d+))?-(?P<expr>N|HC|HO|A|F)"
    r"\.(?:jpe?g|png)$",
    re.IGNORECASE,
)
MODEL_RE = re.compile(r"^\s*([A-Z])([FM])-?(\d+)")


def model_key(race: str, gender: str, number: str) -> str:
    """The identity used for a CFD model: race code, gender code and first number, e.g. 'AF-200'."""
    return f"{race.upper()}{gender.upper()}-{int(number):03d}"


def find_root(path: Path) -> Path:
    """The release folder (the one holding Images/) at or just under ``path``."""
    path = path.expanduser()
    if not path.exists():
        raise StimulusError(f"CFD folder not found: {path}; point to the 'CFD Version 3.0' folder")
    for candidate in (path, path / RELEASE_FOLDER, path.parent if path.name == "Images" else None):
        if candidate is not None and (candidate / "Images").is_dir():
            return candidate
    raise StimulusError(
        f"{path} holds no CFD images: expected '{RELEASE_FOLDER}/Images/CFD/<Model>/CFD-….jpg'; point to the "
        f"'{RELEASE_FOLDER}' folder"
    )


def _find_workbook(root: Path, workbook: str | Path | None) -> Path | None:
    if workbook is not None:
        p = Path(workbook).expanduser()
        if not p.is_file():
            raise StimulusError(f"CFD norming workbook not found: {p}; check the path")
        return p
    for candidate in (root / WORKBOOK, root.parent / WORKBOOK):
        if candidate.is_file():
            return candidate
    others = sorted(root.glob("*Norming*.xlsx"))
    return others[0] if others else None


def _as_list(value, allowed: tuple[str, ...], what: str) -> list[str]:
    if value is None:
        return []
    items = [v.strip() for v in value.split(",")] if isinstance(value, str) else [str(v).strip() for v in value]
    if any(v.lower() == "all" for v in items):
        return list(allowed)
    upper = {a.upper(): a for a in allowed}
    out = []
    for v in items:
        if v.upper() not in upper:
            raise StimulusError(f"unknown CFD {what} {v!r}; use one or more of {', '.join(allowed)}, or all")
        out.append(upper[v.upper()])
    return list(dict.fromkeys(out))


def read_norming_sheet(workbook: Path, sheet: str) -> pd.DataFrame:
    """One norming sheet as a frame: the header row's names, one row per model, numeric columns as numbers."""
    import openpyxl

    try:
        wb = openpyxl.load_workbook(workbook, read_only=True, data_only=True)
    except Exception as e:  # noqa: BLE001 - any openpyxl failure means the file is not a readable workbook
        raise StimulusError(f"cannot read the CFD workbook {workbook} ({type(e).__name__}); re-download it") from None
    try:
        if sheet not in wb.sheetnames:
            raise StimulusError(
                f"the CFD workbook {workbook.name} has no sheet {sheet!r} (it has {', '.join(map(repr, wb.sheetnames))})"
                f"; use the CFD 3.0 workbook"
            )
        rows = list(wb[sheet].iter_rows(values_only=True))
    finally:
        wb.close()
    header_at = _header_index(rows)
    if header_at is None:
        raise StimulusError(
            f"sheet {sheet!r} of {workbook.name} has no header row with 'Model' and 'EthnicitySelf' (expected on "
            f"row {HEADER_ROW}); use the CFD 3.0 workbook"
        )
    header = [str(c).strip() if c is not None else "" for c in rows[header_at]]
    keep = [i for i, name in enumerate(header) if name]
    names = [header[i] for i in keep]
    body = []
    for row in rows[header_at + 1 :]:
        model = row[keep[0]] if len(row) > keep[0] else None
        if model is None or not MODEL_RE.match(str(model)):
            continue  # the sub-header row, blank rows and notes below the table
        body.append([row[i] if i < len(row) else None for i in keep])
    df = pd.DataFrame(body, columns=names)
    df = df.loc[:, ~df.columns.duplicated()]
    for col in df.columns:
        if col in ("Model", "EthnicitySelf", "GenderSelf"):
            continue
        numeric = pd.to_numeric(df[col], errors="coerce")
        if numeric.notna().sum() == df[col].notna().sum():
            df[col] = numeric.astype(float)
    return df


def _header_index(rows: list[tuple]) -> int | None:
    def is_header(row: tuple) -> bool:
        cells = {str(c).strip() for c in row if c is not None}
        return "Model" in cells and ("EthnicitySelf" in cells or "GenderSelf" in cells)

    if len(rows) >= HEADER_ROW and is_header(rows[HEADER_ROW - 1]):
        return HEADER_ROW - 1
    for i, row in enumerate(rows[:40]):
        if is_header(row):
            return i
    return None


def _subsets(value) -> list[str]:
    return _as_list(value, SUBSETS, "set")


def _expressions(value) -> list[str]:
    return _as_list(value, tuple(EXPRESSIONS), "expression")


class Options(_Options):
    OWNER = "dataset cfd"

    subsets: tuple[str, ...] = option(("CFD",), "sets: CFD, CFD-MR, CFD-INDIA (a list), or all", normalise=_subsets)
    expressions: tuple[str, ...] = option(
        ("N",), "expressions: N, HC, HO, A, F (a list), or all", normalise=_expressions
    )
    one_per_person: bool = option(True, "one image per person and expression (the first by file name)")
    norming: Literal["us", "india"] = option("us", "which raters' sheet describes CFD-INDIA: us or india")
    workbook: str | None = option(None, "the norming workbook, if it is not in the release folder", path=True)


def load(path: str | Path, **options) -> FaceDataset:
    o = Options.parse(options)
    root = find_root(Path(path))
    subsets, expressions, one_per_person, norming = list(o.subsets), list(o.expressions), o.one_per_person, o.norming
    workbook = o.workbook
    report = LoadReport()
    images_root = root / "Images"

    rows = []
    present = [s for s in subsets if (images_root / s).is_dir()]
    for s in subsets:
        if s not in present:
            if len(subsets) == 1 or s == "CFD":
                raise StimulusError(f"no '{s}' folder in {images_root}; the CFD 3.0 release has Images/{s}/")
            report.notes.append(f"no Images/{s} folder: set {s} left out")
    all_models: dict[str, set[str]] = {}
    for subset in present:
        for p in scan_images(images_root / subset):
            m = FILE_RE.match(p.name)
            key = relative_key(p, root)
            if m is None:
                report.malformed.append(key)
                continue
            ident = model_key(m["race"], m["gender"], m["id"])
            all_models.setdefault(subset, set()).add(ident)
            expr = m["expr"].upper()
            if expr not in expressions:
                continue
            rows.append(
                {
                    "path": str(p),
                    "key": key,
                    "identity": ident,
                    "subset": subset,
                    "expression": expr,
                    "race_code": m["race"].upper(),
                    "gender_code": m["gender"].upper(),
                }
            )
    if not rows:
        raise StimulusError(
            f"no CFD images with expression {', '.join(expressions)} under {images_root} "
            f"({', '.join(present)}); check the folder and --dataset-option expressions"
        )
    images = pd.DataFrame(rows).sort_values("key", kind="stable")
    if one_per_person:
        dup = images.duplicated(["subset", "identity", "expression"], keep="first")
        if dup.any():
            report.notes.append(
                f"{int(dup.sum())} further image(s) of a person and expression left out (one_per_person): "
                + ", ".join(images.loc[dup, "key"].head(5))
                + (" …" if dup.sum() > 5 else "")
            )
            images = images[~dup]

    wb_path = _find_workbook(root, workbook)
    if wb_path is None:
        report.notes.append(f"no '{WORKBOOK}' found: race and gender come from the file names, no age or ratings")
        norms = None
    else:
        parts = []
        for subset in present:
            sheet = SHEETS[(subset, norming if subset == "CFD-INDIA" else "us")]
            df = read_norming_sheet(wb_path, sheet)
            match = df["Model"].astype(str).str.extract(MODEL_RE)
            df.insert(0, "identity", [model_key(r, g, n) for r, g, n in match.itertuples(index=False)])
            df.insert(1, "subset", subset)
            df.insert(2, "norming_sheet", sheet)
            extra = df.duplicated(["subset", "identity"], keep="first")
            if extra.any():
                report.notes.append(f"sheet {sheet!r} lists {int(extra.sum())} model(s) twice; the first row is used")
                df = df[~extra]
            parts.append(df)
        norms = pd.concat(parts, ignore_index=True)
        seen = {(s, i) for s, ids in all_models.items() for i in ids}
        for s, ident, model in norms[["subset", "identity", "Model"]].itertuples(index=False):
            if (s, ident) not in seen:
                report.metadata_without_images.append(f"{s} {model}")

    table = images
    if norms is not None:
        table = images.merge(norms, on=["subset", "identity"], how="left", validate="many_to_one")
        unmatched = table["Model"].isna()
        report.images_without_metadata += table.loc[unmatched, "key"].tolist()
        selected = set(zip(images["subset"], images["identity"]))
        seen = {(s, i) for s, ids in all_models.items() for i in ids}
        missing_expr = sum(1 for key in zip(norms["subset"], norms["identity"]) if key in seen and key not in selected)
        if missing_expr:
            report.notes.append(
                f"{missing_expr} normed model(s) have images but none with expression {', '.join(expressions)}"
            )
    else:
        for col in ("EthnicitySelf", "GenderSelf", "AgeSelf"):
            table[col] = None

    race_file = table["race_code"].map(RACE_CODES)
    race_sheet = table["EthnicitySelf"].map(lambda v: RACE_CODES.get(str(v).strip().upper()) or common_race(v))
    odd = table["EthnicitySelf"].notna() & race_sheet.isna()
    for label in sorted(set(table.loc[odd, "EthnicitySelf"].astype(str))):
        report.notes.append(f"EthnicitySelf={label} is not one vocabulary label: race taken from the file name code")
    disagree = race_sheet.notna() & race_file.notna() & (race_sheet != race_file)
    if disagree.any():
        report.notes.append(
            f"{int(disagree.sum())} image(s) whose file name race code differs from EthnicitySelf (EthnicitySelf "
            f"used): " + ", ".join(table.loc[disagree, "key"].head(5))
        )
    table["race"] = race_sheet.where(race_sheet.notna(), race_file)
    table["race_label"] = table["EthnicitySelf"].where(table["EthnicitySelf"].notna(), table["race_code"])
    gender_sheet = table["GenderSelf"].map(common_gender)
    table["gender"] = gender_sheet.where(gender_sheet.notna(), table["gender_code"].map(GENDER_CODES))
    table["age"] = pd.to_numeric(table["AgeSelf"], errors="coerce") if "AgeSelf" in table else float("nan")
    table["age_group"] = table["age"].map(age_bin)
    table = finish_table(table, extra_first=("subset", "expression"))
    return FaceDataset(
        name="cfd",
        root=root,
        table=table,
        report=report,
        version="CFD 3.0",
        options={**o.to_dict(), "workbook": wb_path.name if wb_path else None},
    )
