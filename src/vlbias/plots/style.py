"""The look every vlbias figure shares: one palette, one marker sequence, and figures drawn without pyplot.

Colours are the Okabe-Ito palette (Okabe & Ito 2008), distinguishable with the common colour-vision deficiencies;
series (models, groups, bars of a panel) take them in :data:`SERIES` order, and markers or line styles double colour
where series are compared. Figures are matplotlib ``Figure`` objects on the Agg canvas (:func:`new_figure`): no
pyplot state and no global backend switch, so drawing is safe in threads, worker processes and notebooks.

Every figure function copes with empty and degenerate tables (no rows, one group, a statistic that is the same by
construction): a figure that draws one file raises :class:`NotDrawn` with the reason when its data cannot make it;
a function that draws several returns :class:`Figures`, the files it wrote and, in ``not_drawn``, each figure it
left out and why. Callers say so (the report on its page and its summary, a command in ``skipped.csv``); a figure
is never fatal to the results it draws.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from vlbias.errors import VlbiasError


class NotDrawn(VlbiasError):
    """A figure its data cannot make (no rows; one group where it compares several; a statistic that is zero by
    construction): the message says why, in one line, to be noted instead of the figure."""


class Figures(list):
    """The files a function that draws several figures wrote (a list of paths), and in ``not_drawn`` the figures it
    left out, as (figure, reason) pairs."""

    def __init__(self, paths: Iterable[Path] = (), not_drawn: Iterable[tuple[str, str]] = ()):
        super().__init__(paths)
        self.not_drawn: list[tuple[str, str]] = list(not_drawn)

    def add(self, other: Figures | list) -> None:
        """Take the files and the notes of another function's figures."""
        self.extend(other)
        self.not_drawn += getattr(other, "not_drawn", [])

    def skip(self, figure: str, reason: str) -> None:
        self.not_drawn.append((figure, reason))

    def notes(self) -> list[dict[str, str]]:
        """The figures left out as rows of a ``skipped.csv`` table (item, reason)."""
        return [{"item": f"figure {f}", "reason": f"not drawn: {r}"} for f, r in self.not_drawn]


def require_rows(df, what: str, columns: Iterable[str] = ()) -> None:
    """:class:`NotDrawn` unless ``df`` (a table) has rows and ``columns``."""
    if df is None or not len(df):
        raise NotDrawn(f"no {what} to draw")
    absent = [c for c in columns if c not in df.columns]
    if absent:
        raise NotDrawn(f"the {what} lack the column(s) {', '.join(absent)}")


#: Okabe & Ito (2008) colour-blind-safe palette (black omitted)
OKABE_ITO = ("#E69F00", "#56B4E9", "#009E73", "#F0E442", "#0072B2", "#D55E00", "#CC79A7", "#999999")
ORANGE, SKY_BLUE, GREEN, YELLOW, BLUE, VERMILLION, PURPLE, GREY = OKABE_ITO
#: the palette in the order series take it, on white (yellow last: it is faint on white)
SERIES = (ORANGE, SKY_BLUE, GREEN, BLUE, VERMILLION, PURPLE, GREY, YELLOW)
#: markers, in the order series take them
MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*", "<", ">", "h", "p", "8", "d")


def series_colour(i: int) -> str:
    """The colour of the i-th series (the palette repeats after eight)."""
    return SERIES[i % len(SERIES)]


def series_marker(i: int) -> str:
    """The marker of the i-th series (the markers repeat after fourteen)."""
    return MARKERS[i % len(MARKERS)]


def series_style(i: int) -> tuple[str, str]:
    """Colour and marker of the i-th of many series: the eight colours, then the next marker with each colour, so
    no two of the first 112 series look the same."""
    return series_colour(i), MARKERS[(i // len(SERIES)) % len(MARKERS)]


def new_figure(width: float, height: float):
    """A matplotlib Figure on an Agg canvas (no pyplot state, safe in threads and notebooks)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def wrap(text: str, width_in: float, fontsize: float = 9) -> str:
    """``text`` wrapped line by line to fit ``width_in`` inches at ``fontsize`` points (about 0.55 em a character)."""
    import textwrap

    chars = max(20, int(width_in * 72 / (0.55 * fontsize)))
    return "\n".join(textwrap.fill(line, chars) for line in text.splitlines())


#: the widest a figure is drawn, in pixels (a wide screen; wider figures get a lower resolution)
MAX_WIDTH_PX = 1600


def save(fig, path, dpi: int = 110) -> None:
    """The figure as a PNG file at ``dpi`` (lower where the figure would be wider than :data:`MAX_WIDTH_PX`), with an
    adaptive palette of 256 colours (no dithering): a figure's few colours and their anti-aliased edges look the
    same, in about a third of the bytes of full colour, so a report of many models stays small. Deterministic: the
    same figure gives the same bytes."""
    import io

    from PIL import Image

    dpi = min(dpi, MAX_WIDTH_PX / fig.get_figwidth())
    if Path(path).suffix.lower() != ".png":
        fig.savefig(path, dpi=dpi)
        return
    buf = io.BytesIO()
    fig.savefig(buf, dpi=dpi, format="png")
    buf.seek(0)
    with Image.open(buf) as im:
        small = im.convert("RGB").quantize(256, method=Image.Quantize.FASTOCTREE, dither=Image.Dither.NONE)
        small.save(path, format="PNG", optimize=True)
