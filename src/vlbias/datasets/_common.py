"""Helpers shared by the face-dataset loaders: label vocabularies, age bins, keys and the final table.

Not a loader (its name starts with ``_``). Each loader maps its dataset's own labels into the common vocabulary of
:mod:`vlbias.datasets.base` with these helpers and reports every label it cannot map.
"""

from __future__ import annotations

import math
import os
import re
from collections import Counter
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import pandas as pd

from vlbias.datasets.base import GENDERS, RACES, REQUIRED_COLUMNS, LoadReport
from vlbias.errors import StimulusError
from vlbias.models.images import IMAGE_EXTENSIONS

#: FairFace's nine age bins, in order (the ``age`` column of ``fairface_label_*.csv``)
FAIRFACE_AGE_BINS = ("0-2", "3-9", "10-19", "20-29", "30-39", "40-49", "50-59", "60-69", "more than 70")
_AGE_EDGES = (3, 10, 20, 30, 40, 50, 60, 70)  # lower edge of each bin after the first

# dataset spellings -> common vocabulary (compared after lower-casing and mapping '-', '_' and spaces to ' ')
_RACE_SYNONYMS = {
    "white": "white",
    "caucasian": "white",
    "european american": "white",
    "black": "black",
    "african american": "black",
    "black or african american": "black",
    "latino hispanic": "latino_hispanic",
    "latino": "latino_hispanic",
    "latina": "latino_hispanic",
    "latinx": "latino_hispanic",
    "hispanic": "latino_hispanic",
    "hispanic or latino": "latino_hispanic",
    "east asian": "east_asian",
    "southeast asian": "southeast_asian",
    "south east asian": "southeast_asian",
    "asian": "asian",
    "indian": "indian",
    "south asian": "indian",
    "middle eastern": "middle_eastern",
    "middle east": "middle_eastern",
    "multiracial": "multiracial",
    "multi racial": "multiracial",
    "mixed": "multiracial",
    "other": "other",
    "others": "other",
}
_GENDER_SYNONYMS = {
    "female": "female",
    "f": "female",
    "woman": "female",
    "women": "female",
    "male": "male",
    "m": "male",
    "man": "male",
    "men": "male",
}


def _norm_token(value: object) -> str:
    return re.sub(r"[\s_\-]+", " ", str(value).strip().lower())


def common_race(value: object) -> str | None:
    """A race label in the common vocabulary, or None if the spelling is unknown."""
    if _missing(value):
        return None
    token = _norm_token(value)
    if token.replace(" ", "_") in RACES:
        return token.replace(" ", "_")
    return _RACE_SYNONYMS.get(token)


def common_gender(value: object) -> str | None:
    if _missing(value):
        return None
    token = _norm_token(value)
    return token if token in GENDERS else _GENDER_SYNONYMS.get(token)


def _missing(value: object) -> bool:
    if value is None:
        return True
    if isinstance(value, float) and math.isnan(value):
        return True
    return isinstance(value, str) and not value.strip()


def age_bin(age: float) -> str:
    """The FairFace age bin of an age in years ('' for a missing age)."""
    if age is None or (isinstance(age, float) and math.isnan(age)):
        return ""
    return FAIRFACE_AGE_BINS[int(np.searchsorted(_AGE_EDGES, age, side="right"))]


def map_labels(values: pd.Series, mapper, column: str, report: LoadReport) -> pd.Series:
    """Map a column through ``mapper``; unknown non-empty labels become NA and are reported once per label."""
    mapped = pd.Series([mapper(v) for v in values], index=values.index, dtype=object)
    unknown = Counter(str(v) for v, m in zip(values, mapped) if m is None and not _missing(v))
    for label, n in sorted(unknown.items()):
        report.unknown_labels.append(f"{column}={label} ({n} row{'s' if n != 1 else ''})")
    return mapped


def relative_key(path: Path, root: Path) -> str:
    try:
        return path.relative_to(root).as_posix()
    except ValueError:
        return Path(os.path.relpath(path, root)).as_posix()


def scan_images(folder: Path) -> list[Path]:
    """Image files under ``folder`` (recursive, sorted, hidden files and folders left out); fast on 100k files."""
    found: list[Path] = []
    stack = [folder]
    while stack:
        current = stack.pop()
        try:
            entries = list(os.scandir(current))
        except OSError as e:
            raise StimulusError(f"cannot list the folder {current} ({e.strerror}); check its permissions") from None
        for entry in entries:
            if entry.name.startswith("."):
                continue
            if entry.is_dir(follow_symlinks=True):
                stack.append(Path(entry.path))
            elif Path(entry.name).suffix.lower() in IMAGE_EXTENSIONS:
                found.append(Path(entry.path))
    return sorted(found)


def finish_table(rows: pd.DataFrame, extra_first: Iterable[str] = ()) -> pd.DataFrame:
    """Order the columns (common vocabulary first) and fix their types."""
    df = rows.reset_index(drop=True)
    df["age"] = pd.to_numeric(df["age"], errors="coerce").astype(float)
    for col in ("path", "key", "identity", "age_group"):
        df[col] = df[col].fillna("").astype(str)
    for col in ("race", "race_label", "gender"):
        df[col] = df[col].astype(object).where(df[col].notna(), None)
    first = list(REQUIRED_COLUMNS) + [c for c in extra_first if c in df.columns and c not in REQUIRED_COLUMNS]
    rest = [c for c in df.columns if c not in first]
    return df[first + rest]


def require_dir(path: Path, what: str) -> Path:
    if not path.exists():
        raise StimulusError(f"{what} not found: {path}; check the path")
    if not path.is_dir():
        raise StimulusError(f"{what} {path} is not a folder; point to the dataset's folder")
    return path
