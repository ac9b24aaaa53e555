"""A report page is a list of blocks (headings, paragraphs, figures, tables, collapsible parts), rendered to HTML by
the Jinja templates and to Markdown by :func:`markdown`, so both formats say the same thing.

A block's text is plain text with `code` spans; names, labels and paths in it come from the user. Both renderers
show it as written: the HTML templates escape it (Jinja autoescape), :func:`markdown` escapes every character that
Markdown or HTML would read (:func:`~vlbias.report.fmt.md_text`). Links go only to targets that
:func:`~vlbias.report.fmt.safe_href` accepts (relative to the report, or http(s)); any other target shows its text
without a link."""

from __future__ import annotations

import html
import re
from dataclasses import dataclass, field

from vlbias.report.assets import Figure, FigureGroup
from vlbias.report.fmt import Table, data_label, md_text, safe_href


@dataclass
class Link:
    text: str
    href: str  # relative to the report root


@dataclass
class Block:
    kind: str  # h2 h3 p note figure group table list code details warning
    text: str = ""
    id: str | None = None
    figure: Figure | None = None
    group: FigureGroup | None = None
    table: Table | None = None
    items: list = field(default_factory=list)  # list items: str or Link
    blocks: list[Block] = field(default_factory=list)
    md: bool = True  # part of the Markdown summary


def h2(text: str, id: str | None = None) -> Block:
    return Block("h2", text, id=id)


def h3(text: str, id: str | None = None, md: bool = True) -> Block:
    return Block("h3", text, id=id, md=md)


def p(text: str, md: bool = True) -> Block:
    return Block("p", text, md=md)


def note(text: str, md: bool = True) -> Block:
    return Block("note", text, md=md)


def figure(f: Figure, md: bool = True) -> Block:
    return Block("figure", figure=f, md=md)


def group(g: FigureGroup, md: bool = False) -> Block:
    return Block("group", group=g, md=md)


def table(t: Table, md: bool = True) -> Block:
    return Block("table", table=t, md=md)


def bullets(items: list, md: bool = True) -> Block:
    return Block("list", items=list(items), md=md)


def code(text: str, md: bool = True) -> Block:
    return Block("code", text, md=md)


def details(summary: str, blocks: list[Block], md: bool = False) -> Block:
    return Block("details", summary, blocks=blocks, md=md)


def warning(text: str, blocks: list[Block]) -> Block:
    """Offensive content behind a click: the warning is the summary, the content opens on request."""
    return Block("warning", text, blocks=blocks)


@dataclass
class Page:
    file: str  # relative to the report root, e.g. "index.html" or "models/x.html"
    title: str
    nav: str
    blocks: list[Block]

    @property
    def root(self) -> str:
        """Prefix from this page to the report root."""
        return "../" * self.file.count("/")


# ---------------------------------------------------------------------------------------------- Markdown
def md_link(text: str, href: str, image: bool = False) -> str:
    """``[text](href)`` (``![text](href)`` for an image), or the text alone where the target is not a safe one."""
    target = safe_href(href)
    label = md_text(text)
    if target is None:
        return label
    return f"{'!' if image else ''}[{label}]({target})"


def md_code(text: str) -> str:
    """A fenced code block whose fence is longer than any run of backticks in the text, so the text cannot end it."""
    fence = "`" * max(3, 1 + max((len(r) for r in re.findall(r"`+", text)), default=0))
    return f"{fence}\n{text}\n{fence}"


def markdown(blocks: list[Block], level: int = 2) -> str:
    """The blocks (those marked for Markdown) as GitHub-flavoured Markdown; links stay relative to the report."""
    out: list[str] = []
    for b in blocks:
        if not b.md:
            continue
        if b.kind == "h2":
            out.append(f"{'#' * level} {md_text(b.text)}")
        elif b.kind == "h3":
            out.append(f"{'#' * (level + 1)} {md_text(b.text)}")
        elif b.kind == "p":
            out.append(md_text(b.text))
        elif b.kind == "note":
            out.append(f"> {md_text(b.text)}")
        elif b.kind == "figure" and b.figure is not None and b.figure.path:
            f = b.figure
            data = ", ".join(md_link(data_label(label, href), href) for label, href in f.data)
            out.append(
                f"{md_link(f.title, f.path, image=True)}\n\n*{md_text(f.title)}.* {md_text(f.caption)}"
                + (f" Data: {data}." if data else "")
            )
        elif b.kind == "figure" and b.figure is not None and b.figure.not_drawn:
            out.append(f"> {md_text(b.figure.title)}: not drawn, {md_text(b.figure.not_drawn, line_start=False)}.")
        elif b.kind == "group" and b.group is not None:
            out += [md_link(f.title, f.path, image=True) for f in b.group.figures]
            out += [
                f"> {md_text(n + ': ' if n else '')}not drawn, {md_text(w, line_start=False)}."
                for n, w in b.group.not_drawn
            ]
        elif b.kind == "table" and b.table is not None:
            cap = f"*{md_text(b.table.caption)}*\n\n" if b.table.caption else ""
            csv = f"\n\nData: {md_link(b.table.csv, b.table.csv)}" if b.table.csv else ""
            out.append(cap + b.table.markdown() + csv)
        elif b.kind == "list":
            out.append(
                "\n".join(f"- {md_link(i.text, i.href)}" if isinstance(i, Link) else f"- {md_text(i)}" for i in b.items)
            )
        elif b.kind == "code":
            out.append(md_code(b.text))
        elif b.kind in ("details", "warning"):
            inner = markdown(b.blocks, level)
            if inner.strip():  # an HTML block: Markdown escapes do not work in it, HTML's do
                label = html.escape(f"⚠ {b.text}" if b.kind == "warning" else b.text)
                out.append(f"<details><summary>{' '.join(label.splitlines())}</summary>\n\n{inner}\n\n</details>")
    return "\n\n".join(x for x in out if x)
