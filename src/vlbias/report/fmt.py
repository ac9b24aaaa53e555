"""Formatting for report pages: numbers, intervals, tables, model names, and text and links made safe for Markdown."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import Any
from urllib.parse import quote, urlsplit

import pandas as pd

from vlbias.report.source import missing


def num(v: Any, digits: int = 3) -> str:
    """A number for a table: 3 significant digits (integers in full, with separators), '–' for missing."""
    if missing(v):
        return "–"
    if hasattr(v, "item") and not isinstance(v, str):
        v = v.item()
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, int):
        return f"{v:,}"
    if not isinstance(v, float):
        return str(v)
    if v.is_integer() and abs(v) < 1e15:
        return f"{int(v):,}"
    if abs(v) >= 1e5 or abs(v) < 1e-3:
        return f"{v:.{digits - 1}e}"
    decimals = max(0, digits - 1 - int(math.floor(math.log10(abs(v)))))
    return f"{v:.{decimals}f}"


def signed(v: Any, decimals: int = 2) -> str:
    return "–" if missing(v) else f"{float(v):+.{decimals}f}"


def fixed(v: Any, decimals: int = 1) -> str:
    return "–" if missing(v) else f"{float(v):.{decimals}f}"


def interval(est: Any, low: Any, high: Any, f=signed) -> str:
    """'+0.42 [+0.10, +0.71]' (the estimate alone if the interval is missing)."""
    if missing(est):
        return "–"
    if missing(low) or missing(high):
        return f(est)
    return f"{f(est)} [{f(low)}, {f(high)}]"


def pvalue(p: Any) -> str:
    if missing(p):
        return "–"
    p = float(p)
    return "0" if p == 0 else f"{p:.1e}" if p < 1e-3 else f"{p:.3f}"


# ---------------------------------------------------------------------------------------------- Markdown safety
#: a `code` span: the one markup a block's text carries (the HTML pages read it the same way)
CODE_SPAN = re.compile(r"`([^`]+)`")
_MD_SPECIAL = re.compile(r"([\\`*\[\]<>&~])")  # backslash, code, emphasis, links and images, HTML, strikethrough
_MD_UNDERSCORE = re.compile(r"(?<![A-Za-z0-9])_|_(?![A-Za-z0-9])")  # an underscore that could open emphasis
_MD_BLOCK_START = re.compile(r"^(\s*)([#+=-]|\d+[.)])")  # what makes a line a heading, a list or a setext line
LINK_SCHEMES = ("http", "https")


def md_text(text: Any, line_start: bool = True) -> str:
    """Text (names, labels, paths, with `code` spans) as Markdown that shows it as written: no HTML, link, image,
    emphasis, list or heading can come out of it. Outside code spans every character Markdown or HTML reads is
    backslash-escaped; code spans show their text literally anyway. Line breaks become spaces (one block is one
    line). ``line_start=False`` for text inside a line (a table cell), where no heading or list can start."""
    text = " ".join(str(text).splitlines())
    out, pos = [], 0
    for m in CODE_SPAN.finditer(text):
        out += [_md_escape(text[pos : m.start()], line_start and pos == 0), m.group(0)]
        pos = m.end()
    out.append(_md_escape(text[pos:], line_start and pos == 0))
    return "".join(out)


def _md_escape(text: str, at_start: bool) -> str:
    text = _MD_UNDERSCORE.sub(r"\\_", _MD_SPECIAL.sub(r"\\\1", text))
    if at_start:
        text = _MD_BLOCK_START.sub(lambda m: m.group(1) + m.group(2)[:-1] + "\\" + m.group(2)[-1], text)
    return text


def safe_href(href: Any) -> str | None:
    """A link target vlbias may put on a page: a path relative to the report, or an http(s) address, percent-encoded
    so that it cannot end the link early; None for anything else (``javascript:``, ``data:``, ``//host``)."""
    href = str(href or "").strip()
    if not href or any(ord(c) < 32 or c == "\\" for c in href) or href.startswith("//"):
        return None
    try:
        scheme = urlsplit(href).scheme.lower()
    except ValueError:
        return None
    if scheme and scheme not in LINK_SCHEMES:
        return None
    return quote(href, safe="/#?=&:.,;-_~+@%!$")


def data_label(label: str, path: str) -> str:
    """A link's text for a data file: its label and its kind, e.g. 'effect sizes (CSV)', 'pairs (Parquet)'."""
    kind = "Parquet" if str(path).endswith(".parquet") else "CSV"
    return f"{label} ({kind})"


@dataclass
class Table:
    """A table for a page: header and rows of text; ``links`` maps (row, column) to an href."""

    columns: list[str]
    rows: list[list[str]]
    caption: str = ""
    csv: str | None = None
    links: dict[tuple[int, int], str] = field(default_factory=dict)
    numeric: list[bool] = field(default_factory=list)
    more: int = 0  # rows left out (the CSV has them)

    def link(self, i: int, j: int) -> str | None:
        return self.links.get((i, j))

    def markdown(self) -> str:
        def cell(s: str) -> str:
            return md_text(s, line_start=False).replace("|", "\\|")

        head = "| " + " | ".join(cell(c) for c in self.columns) + " |"
        sep = (
            "|"
            + "|".join(
                "---:" if (self.numeric[j] if j < len(self.numeric) else False) else "---"
                for j in range(len(self.columns))
            )
            + "|"
        )
        body = ["| " + " | ".join(cell(c) for c in r) + " |" for r in self.rows]
        tail = [f"\n({self.more} more rows in `{self.csv}`)"] if self.more and self.csv else []
        return "\n".join([head, sep, *body, *tail])


def table(df: pd.DataFrame, columns: dict[str, Any], *, caption: str = "", csv: str | None = None, limit=None) -> Table:
    """A Table from ``df``: ``columns`` maps each header to a column name or a function of the row."""
    rows = []
    numeric = []
    records = df.to_dict("records")
    more = 0
    if limit is not None and len(records) > limit:
        more = len(records) - limit
        records = records[:limit]
    for rec in records:
        row = []
        for spec in columns.values():
            v = spec(rec) if callable(spec) else rec.get(spec)
            row.append(v if isinstance(v, str) else num(v))
        rows.append(row)
    for j in range(len(columns)):
        sample = [r[j] for r in rows if r[j] != "–"]
        numeric.append(bool(sample) and all(_looks_numeric(s) for s in sample))
    return Table(list(columns), rows, caption, csv, numeric=numeric, more=more)


def _looks_numeric(s: str) -> bool:
    s = s.split(" [")[0].replace(",", "").replace("*", "").strip()
    try:
        float(s.replace("−", "-"))
        return True
    except ValueError:
        return False


def model_labels(specs: list[str]) -> dict[str, str]:
    """Short, unique display names: `vectors:` files by their file name; long specs shortened in the middle."""
    out: dict[str, str] = {}
    for spec in specs:
        backend, _, target = spec.partition(":")
        label = spec
        if backend == "vectors" or ("/" in target and target.startswith(("/", "~", ".")) and backend != "openclip"):
            label = f"{backend}:{PurePosixPath(target).name}"
        if len(label) > 48:
            label = label[:22] + "…" + label[-25:]
        out[spec] = label
    counts = pd.Series(list(out.values())).value_counts()
    seen: dict[str, int] = {}
    for spec, label in list(out.items()):
        if counts[label] > 1:
            seen[label] = seen.get(label, 0) + 1
            out[spec] = f"{label} #{seen[label]}"
    return out
