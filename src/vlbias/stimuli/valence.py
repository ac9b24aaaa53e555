"""Valence stimuli the user supplies for the battery's ``nrc-oasis`` variant (Ghate et al. 2025).

- NRC-VAD lexicon (Mohammad 2018, "Obtaining Reliable Human Ratings of Valence, Arousal, and Dominance for 20,000
  English Words", ACL; https://saifmohammad.com/WebPages/nrc-vad.html): a tab-separated file of words and their
  valence, arousal and dominance. Version 1 (``NRC-VAD-Lexicon.txt``, header ``Word Valence Arousal Dominance``,
  scores in [0, 1]) and version 2 (header ``term valence arousal dominance``, scores in [-1, 1]) both read. The
  ``n`` highest- and ``n`` lowest-valence words are taken, ties broken alphabetically.
- OASIS (Kurdi, Lozano & Banaji 2017, "Introducing the Open Affective Standardized Image Set (OASIS)", Behavior
  Research Methods 49:457-470; https://osf.io/6pnd7/): ``OASIS.csv`` (columns ``Theme`` and ``Valence_mean``) next
  to an ``Images/`` folder of ``<Theme>.jpg`` files. The ``n`` highest- and ``n`` lowest-valence images are taken,
  ties broken by theme; or, as Ghate et al. (``references/OASIS/oasis.py`` of github.com/kshitishghate/CLIP_bias at
  8dffa18) take them, the first and last ``n`` of the rows stably sorted by descending valence (``ties="csv-order"``:
  tied rows in the CSV's order).
"""

from __future__ import annotations

import csv
import os
from pathlib import Path

from vlbias.errors import StimulusError
from vlbias.utils.io import check_columns


def _float(x: str) -> float | None:
    try:
        return float(x)
    except ValueError:
        return None


def read_nrc_vad(path: str | os.PathLike) -> list[tuple[str, float]]:
    """(word, valence) for every entry of an NRC-VAD lexicon file."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise StimulusError(
            f"NRC-VAD lexicon not found: {path}; download it from saifmohammad.com/WebPages/nrc-vad.html"
        )
    try:
        lines = path.read_text(encoding="utf-8-sig").splitlines()
    except (OSError, UnicodeDecodeError) as e:
        raise StimulusError(f"cannot read the NRC-VAD lexicon {path} ({e})") from None
    rows = [ln.split("\t") for ln in lines if ln.strip()]
    if not rows:
        raise StimulusError(f"NRC-VAD lexicon {path} is empty")
    col, first_line = 1, 1
    if len(rows[0]) >= 2 and _float(rows[0][1]) is None:  # a header line
        check_columns(rows[0], f"NRC-VAD lexicon {path}", StimulusError)
        header = [h.strip().lower() for h in rows[0]]
        if "valence" not in header:
            raise StimulusError(f"NRC-VAD lexicon {path} has no 'valence' column (header: {rows[0]})")
        col, first_line = header.index("valence"), 2
        rows = rows[1:]
    out = []
    for i, r in enumerate(rows, first_line):
        v = _float(r[col]) if len(r) > col else None
        if v is None or not r[0].strip():
            raise StimulusError(
                f"NRC-VAD lexicon {path} line {i} is not 'word<TAB>valence...': {chr(9).join(r)[:60]!r}"
            )
        out.append((r[0].strip(), v))
    if not out:
        raise StimulusError(f"NRC-VAD lexicon {path} has no entries")
    return out


def extreme_words(path: str | os.PathLike, n: int = 25) -> tuple[list[str], list[str]]:
    """The ``n`` highest- and ``n`` lowest-valence words of an NRC-VAD file."""
    entries = read_nrc_vad(path)
    if len(entries) < 2 * n:
        raise StimulusError(f"NRC-VAD lexicon {path} has {len(entries)} words; {2 * n} are needed")
    top = sorted(entries, key=lambda e: (-e[1], e[0]))[:n]
    bottom = sorted(entries, key=lambda e: (e[1], e[0]))[:n]
    return [w for w, _ in top], [w for w, _ in bottom]


def extreme_oasis_images(path: str | os.PathLike, n: int = 25, ties: str = "theme") -> tuple[list[Path], list[Path]]:
    """The ``n`` highest- and ``n`` lowest-valence OASIS images (paths), from the OASIS folder or its CSV; ties at
    the edge broken by ``theme`` name or in ``csv-order`` (see the module docstring)."""
    if ties not in ("theme", "csv-order"):
        raise StimulusError(f"unknown tie rule {ties!r} for OASIS images; use theme or csv-order")
    p = Path(path).expanduser()
    csv_path = p / "OASIS.csv" if p.is_dir() else p
    if not csv_path.is_file():
        raise StimulusError(f"OASIS.csv not found at {csv_path}; give the OASIS folder (OASIS.csv and Images/)")
    try:
        with open(csv_path, newline="", encoding="utf-8-sig") as f:
            reader = csv.DictReader(f)
            check_columns(reader.fieldnames or [], str(csv_path), StimulusError)
            rows = list(reader)
    except (OSError, UnicodeDecodeError, csv.Error) as e:
        raise StimulusError(f"cannot read {csv_path} ({e})") from None
    if not rows or "Theme" not in rows[0] or "Valence_mean" not in rows[0]:
        raise StimulusError(f"{csv_path} needs columns 'Theme' and 'Valence_mean' (the OASIS.csv of the OASIS set)")
    scored = []
    for i, r in enumerate(rows, 2):
        v = _float(r["Valence_mean"] or "")
        if v is None:
            raise StimulusError(f"{csv_path} line {i}: Valence_mean {r['Valence_mean']!r} is not a number")
        scored.append((r["Theme"].strip(), v))
    if len(scored) < 2 * n:
        raise StimulusError(f"{csv_path} lists {len(scored)} images; {2 * n} are needed")
    images = csv_path.parent / "Images"
    if ties == "csv-order":
        ranked = sorted(scored, key=lambda e: e[1], reverse=True)  # stable: tied rows keep the CSV's order
        top, bottom = ranked[:n], ranked[-n:]
    else:
        top = sorted(scored, key=lambda e: (-e[1], e[0]))[:n]
        bottom = sorted(scored, key=lambda e: (e[1], e[0]))[:n]
    paths = [[images / f"{theme}.jpg" for theme, _ in group] for group in (top, bottom)]
    missing = [str(q) for group in paths for q in group if not q.is_file()]
    if missing:
        raise StimulusError(f"{len(missing)} OASIS image(s) not found, e.g. {missing[0]}; give the full OASIS folder")
    return paths[0], paths[1]
