"""Figures of audit results (matplotlib, drawn on the Agg canvas without pyplot, so no global backend changes).

Conventions: labelled axes with units, intervals drawn wherever a table has them, and the colour-blind-safe
Okabe-Ito palette (Okabe & Ito 2008), with markers or line styles doubling colour where groups are compared.
"""

from __future__ import annotations

#: Okabe & Ito (2008) colour-blind-safe palette (black omitted)
OKABE_ITO = ("#E69F00", "#56B4E9", "#009E73", "#F0E442", "#0072B2", "#D55E00", "#CC79A7", "#999999")
#: the same palette ordered for lines and markers on white (yellow last: it is faint on white)
LINE_COLOURS = ("#E69F00", "#56B4E9", "#009E73", "#0072B2", "#D55E00", "#CC79A7", "#999999", "#F0E442")


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
