"""Column names made from user text (a class, a scale, a word): usable in pandas (``df.p_suspicious_person``) and
SQL without quoting.

:func:`column_names` maps each text to lower-case ASCII letters, digits and underscores: a scale's trailing sign
becomes ``_pos`` / ``_neg`` (``agency+`` -> ``agency_pos``), accents are dropped, every other run of characters is one
underscore. Distinct texts that map to one name get ``_2``, ``_3``, ... in order, so the names are unique and the
same texts in the same order always give the same names.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable

_SIGN = {"+": "_pos", "-": "_neg"}


def column_name(text: str, prefix: str = "") -> str:
    """One text as a column name (see the module); ``prefix`` goes in front, e.g. ``p_``."""
    s = str(text).strip()
    if len(s) > 1 and s[-1] in _SIGN:
        s = s[:-1] + _SIGN[s[-1]]
    s = unicodedata.normalize("NFKD", s).encode("ascii", "ignore").decode("ascii")
    s = re.sub(r"[^0-9A-Za-z]+", "_", s).strip("_").lower() or "x"
    name = prefix + s
    return f"_{name}" if name[0].isdigit() else name


def column_names(texts: Iterable[str], prefix: str = "") -> list[str]:
    """Unique column names of ``texts``, in order (see the module)."""
    out: list[str] = []
    seen: set[str] = set()
    for text in texts:
        name, k = column_name(text, prefix), 1
        while name in seen:
            k += 1
            name = f"{column_name(text, prefix)}_{k}"
        seen.add(name)
        out.append(name)
    return out
