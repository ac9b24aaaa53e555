"""A generic face manifest: a CSV with an image path column and any attribute columns.

``manifest:/data/faces.csv`` reads a UTF-8 CSV whose path column is named ``path``, ``image``, ``file``,
``filepath``, ``filename`` or ``image_path`` (paths relative to the CSV's folder, or absolute). Columns named
``identity`` (or ``person``, ``person_id``, ``subject``, ``subject_id``), ``race``, ``gender`` (or ``sex``), ``age``
and ``age_group`` fill the common vocabulary; race and gender spellings are mapped to it ("Caucasian" -> white,
"F" -> female, …) and unknown ones reported. Every other column is kept, so any of them can be a grouping column.
Without an identity column each image is its own person.

Options name the columns explicitly: ``identity``, ``race``, ``gender``, ``age``, ``age_group``.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from vlbias.datasets._common import age_bin, common_gender, common_race, finish_table, map_labels, relative_key
from vlbias.datasets.base import REQUIRED_COLUMNS, FaceDataset, LoadReport
from vlbias.errors import StimulusError
from vlbias.stimuli.imagesets import read_manifest
from vlbias.utils.options import Options as _Options
from vlbias.utils.options import option

DESCRIPTION = "a CSV manifest: an image path column plus any attribute columns (identity, race, gender, age, …)"

ALIASES = {
    "identity": ("identity", "person", "person_id", "subject", "subject_id"),
    "race": ("race", "ethnicity"),
    "gender": ("gender", "sex"),
    "age": ("age",),
    "age_group": ("age_group", "age_bin"),
}


def _column(header: list[str], role: str, given: str | None, path: Path) -> str | None:
    if given is not None:
        if given not in header:
            raise StimulusError(
                f"manifest {path} has no column {given!r} (for {role}); its columns: {', '.join(header)}"
            )
        return given
    lower = {h.strip().lower(): h for h in header}
    return next((lower[a] for a in ALIASES[role] if a in lower), None)


class Options(_Options):
    OWNER = "dataset manifest"

    identity: str | None = option(None, "the column naming each image's person [default: found by name]")
    race: str | None = option(None, "the race column [default: race or ethnicity]")
    gender: str | None = option(None, "the gender column [default: gender or sex]")
    age: str | None = option(None, "the age column (years) [default: age]")
    age_group: str | None = option(None, "the age-group column [default: age_group or age_bin]")


def load(path: str | Path, **options) -> FaceDataset:
    o = Options.parse(options)
    path = Path(path).expanduser()
    if not path.is_file():
        raise StimulusError(f"manifest not found: {path}; give a CSV file with an image path column")
    source = read_manifest(path)
    root = source.root.resolve()
    raw = pd.DataFrame(source.rows)
    header = list(raw.columns)
    given = o.to_dict()
    cols = {role: _column(header, role, given[role], path) for role in ALIASES}
    path_col = next(
        c for c in header if c.strip().lower() in ("path", "image", "file", "filepath", "filename", "image_path")
    )
    report = LoadReport()

    raw.insert(0, "__path", [str(p.resolve()) for p in source.paths])
    exists = raw["__path"].map(lambda p: Path(p).is_file())
    report.metadata_without_images += raw.loc[~exists, path_col].tolist()
    raw = raw[exists]
    if raw.empty:
        raise StimulusError(f"none of the images listed in {path} exist; paths are relative to {source.root}")
    dup = raw.duplicated("__path")
    if dup.any():
        report.notes.append(f"{int(dup.sum())} image(s) listed twice in {path.name}; the first row is used")
        raw = raw[~dup]

    table = pd.DataFrame({"path": raw["__path"].to_numpy()})
    table["key"] = [relative_key(Path(p), root) for p in table["path"]]
    if cols["identity"]:
        ident = raw[cols["identity"]].str.strip().to_numpy()
        table["identity"] = [i if i else k.rsplit(".", 1)[0] for i, k in zip(ident, table["key"])]
    else:
        table["identity"] = [k.rsplit(".", 1)[0] for k in table["key"]]
    race_raw = raw[cols["race"]].reset_index(drop=True) if cols["race"] else pd.Series([None] * len(table))
    table["race_label"] = race_raw.to_numpy()
    table["race"] = map_labels(race_raw, common_race, "race", report).to_numpy()
    gender_raw = raw[cols["gender"]].reset_index(drop=True) if cols["gender"] else pd.Series([None] * len(table))
    table["gender"] = map_labels(gender_raw, common_gender, "gender", report).to_numpy()
    if cols["age"]:
        ages = pd.to_numeric(raw[cols["age"]].str.strip().replace("", None), errors="coerce")
        bad = raw[cols["age"]].str.strip().ne("") & ages.isna()
        for label, n in raw.loc[bad, cols["age"]].value_counts().items():
            report.unknown_labels.append(f"age={label} ({n} row{'s' if n != 1 else ''}; not a number)")
        table["age"] = ages.to_numpy()
    else:
        table["age"] = float("nan")
    if cols["age_group"]:
        table["age_group"] = raw[cols["age_group"]].fillna("").str.strip().to_numpy()
    else:
        table["age_group"] = table["age"].map(age_bin)

    used = {path_col, *(c for c in cols.values() if c)}
    for col in header:
        if col in used:
            continue
        name = f"{col}_manifest" if col in REQUIRED_COLUMNS else col
        values = raw[col].reset_index(drop=True)
        numeric = pd.to_numeric(values.replace("", None), errors="coerce")
        table[name] = (
            numeric.to_numpy()
            if numeric.notna().sum() == values.ne("").sum() and values.ne("").any()
            else values.to_numpy()
        )
    table = finish_table(table)
    return FaceDataset(
        name="manifest",
        root=root,
        table=table,
        report=report,
        version=path.name,
        options={k: v for k, v in given.items() if v},
    )
