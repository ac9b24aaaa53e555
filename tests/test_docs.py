"""The README documents every audit's and dataset loader's options from their one declaration.

Each table sits between ``<!-- options:NAME -->`` and ``<!-- /options:NAME -->`` in README.md and must equal what
:func:`vlbias.utils.options.option_table` makes of the declaration. After changing an option, regenerate the tables
with ``python tests/test_docs.py``.
"""

from __future__ import annotations

import re
from pathlib import Path

README = Path(__file__).resolve().parent.parent / "README.md"


def tables() -> dict[str, str]:
    from vlbias.audits.registry import audit_names, get_audit
    from vlbias.datasets.spec import loader, loader_names
    from vlbias.utils.options import option_table

    out = {f"options:{name}": option_table(get_audit(name).options) for name in audit_names()}
    for name in loader_names():
        declared = loader(name).Options
        if declared.fields():
            out[f"options:dataset:{name}"] = option_table(declared, flags=False)
    return out


def _section(text: str, marker: str) -> str | None:
    m = re.search(rf"<!-- {re.escape(marker)} -->\n(.*?)<!-- /{re.escape(marker)} -->", text, re.S)
    return m.group(1).rstrip("\n") if m else None


def update(path: Path = README) -> None:
    text = path.read_text(encoding="utf-8")
    for marker, table in tables().items():
        if _section(text, marker) is None:
            raise SystemExit(f"README.md has no <!-- {marker} --> section; add the two marker lines where it belongs")
        text = re.sub(
            rf"(<!-- {re.escape(marker)} -->\n).*?(<!-- /{re.escape(marker)} -->)",
            lambda m, table=table: m.group(1) + table + "\n" + m.group(2),
            text,
            flags=re.S,
        )
    path.write_text(text, encoding="utf-8")


def test_readme_option_tables_are_the_declarations():
    text = README.read_text(encoding="utf-8")
    for marker, table in tables().items():
        found = _section(text, marker)
        assert found is not None, f"README.md lacks the <!-- {marker} --> section"
        assert found == table, f"README.md's {marker} table is out of date; run python tests/test_docs.py"


if __name__ == "__main__":
    update()
