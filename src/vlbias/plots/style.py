"""The look every vlbias figure shares: one palette, one marker sequence, and figures drawn without pyplot.

Colours are the Okabe-Ito palette (Okabe & Ito 2008), distinguishable with the common colour-vision deficiencies;
series (models, groups, bars of a panel) take them in :data:`SERIES` order, and markers or line styles double colour
where series are compared. Figures are matplotlib ``Figure`` objects on the Agg canvas (:func:`new_figure`): no
pyplot state and no global backend switch, so drawing is safe in threads, worker processes and notebooks.
"""

from __future__ import annotations

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


def save(fig, path, dpi: int = 150) -> None:
    fig.savefig(path, dpi=dpi)
