"""Documentation made from declarations, so that it cannot drift from the code.

- README.md documents every audit's and dataset loader's options: each table sits between ``<!-- options:NAME -->``
  and ``<!-- /options:NAME -->`` and must equal what :func:`vlbias.utils.options.option_table` makes of the
  declaration.
- docs/deviations.md is the ledger of every preset (a study's exact protocol): its options, and every place where
  vlbias's own default differs from the study, why, and the option that restores the study's choice; it must equal
  what :func:`ledger` makes of the preset files (``src/vlbias/data/presets/<audit>/<name>.yaml``).

After changing an option or a preset, regenerate both with ``python tests/test_docs.py``.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
LEDGER = ROOT / "docs" / "deviations.md"


def tables() -> dict[str, str]:
    from vlbias.audits.registry import audit_names, get_audit
    from vlbias.datasets.spec import loader, loader_names
    from vlbias.mitigation.registry import get_method, method_names
    from vlbias.utils.options import option_table

    out = {f"options:{name}": option_table(get_audit(name).options) for name in audit_names()}
    for name in method_names():
        out[f"options:mitigation:{name}"] = option_table(get_method(name).options, flags=False)
    for name in loader_names():
        declared = loader(name).Options
        if declared.fields():
            out[f"options:dataset:{name}"] = option_table(declared, flags=False)
    return out


def ledger() -> str:
    """docs/deviations.md: per preset, its study, options and deviations (see the module docstring)."""
    from vlbias.audits.registry import audit_names, get_audit
    from vlbias.utils.options import preset, preset_names

    out = [
        "# Presets and the deviation ledger",
        "",
        "A preset reproduces a published study's computation exactly, quirks included: `--preset NAME` on the "
        "audit's command (or `preset: NAME` in a sweep config or Python options). vlbias's own defaults sit beside "
        "it; this page lists, per study, every place where they differ, why, and the option that restores the "
        "study's choice. Options given beside a preset override it, and the run record keeps the preset's name and "
        "every resolved option.",
        "",
        "This file is generated from `src/vlbias/data/presets/` by `python tests/test_docs.py`; a test checks it.",
    ]
    for audit in audit_names():
        declared = get_audit(audit).options
        for name in preset_names(declared):
            p = preset(declared, name)
            out += ["", f"## `{name}` ({audit}): {p.title}", "", p.citation]
            if p.notes:
                out += ["", " ".join(p.notes.split())]
            out += ["", f"Options (`vlbias {audit} --preset {name}`):", "", "| option | value |", "|---|---|"]
            out += [f"| `{k}` | `{json.dumps(v)}` |" for k, v in p.options.items()]
            if p.dataset_options:
                out += [
                    "",
                    "Loader options (applied when the dataset is read by that loader; `dataset_options` given "
                    "beside the preset override them):",
                    "",
                    "| loader | options |",
                    "|---|---|",
                ]
                out += [f"| `{k}` | `{json.dumps(v)}` |" for k, v in p.dataset_options.items()]
            if p.deviations:
                out += ["", "| topic | the study | vlbias's default | why | the study's choice |", "|---|---|---|---|---|"]
                for d in p.deviations:
                    cells = (d.get(k, "") for k in ("topic", "study", "vlbias", "why", "option"))
                    out.append("| " + " | ".join(" ".join(str(c).split()).replace("|", "\\|") for c in cells) + " |")
    return "\n".join(out) + "\n"


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
    LEDGER.parent.mkdir(exist_ok=True)
    LEDGER.write_text(ledger(), encoding="utf-8")


def test_deviation_ledger_is_the_presets():
    assert LEDGER.read_text(encoding="utf-8") == ledger(), "docs/deviations.md is out of date; run python tests/test_docs.py"


def test_readme_option_tables_are_the_declarations():
    text = README.read_text(encoding="utf-8")
    for marker, table in tables().items():
        found = _section(text, marker)
        assert found is not None, f"README.md lacks the <!-- {marker} --> section"
        assert found == table, f"README.md's {marker} table is out of date; run python tests/test_docs.py"


if __name__ == "__main__":
    update()
