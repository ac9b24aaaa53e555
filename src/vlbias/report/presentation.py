"""How a report presents an audit's runs, found through the audit registry (never a table in this package).

An audit's :class:`~vlbias.audits.registry.AuditSpec` names in ``presentation`` the module that presents its runs
(``vlbias.report.audits.<name>`` for the packaged audits; a plugin names a module of its own). That module defines

- ``TITLE``: the title of the audit's page (and of its link in the navigation);
- ``section(ctx, runs)``: the blocks of the audit's page, from the audit's runs (each an
  :class:`~vlbias.audits.base.AuditResult`, see :class:`~vlbias.report.source.Run`); it adds each run's part to its
  model's page (``ctx.add``) and plans its figures (``ctx.assets.figure``/``group``: a function of
  :mod:`vlbias.plots` and the tables it draws), using the helpers of :mod:`vlbias.report.sections`;
- ``methods(ctx, runs)`` (optional): how the audit measured, for the methods page (the page adds the options, the
  stimuli and the seeds of the runs to it);
- ``headline(ctx, runs)`` (optional): the audit's headline numbers with their intervals and the models that stand
  out, which lead the report's summary page.
- ``depth(ctx, runs)`` (optional): the audit's numbers over the layers of models read at several layers
  (:mod:`vlbias.report.depth`: ``section`` then gets one run per model and options, and ``depth`` the runs of every
  layer).

An audit without a presentation (a plugin that brings none, a test audit, an audit this vlbias does not know) gets
the generic section: each run's tables as CSV files (:func:`~vlbias.report.sections.other_section`). Adding an audit
is adding its modules: its ``AuditSpec`` and, if it wants more than the generic section, its presentation.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass

from vlbias.audits.registry import get_audit
from vlbias.errors import VlbiasError
from vlbias.report import blocks as B
from vlbias.report.depth import with_depth
from vlbias.report.sections import Context, other_section
from vlbias.report.source import Run

#: the report's own pages: an audit of the same name gets its page under another name
OWN_PAGES = ("index", "methods", "upstream")
#: outputs that are not an audit's but are presented like one (``vlbias mitigation-compare``: the mitigation page)
OWN_PRESENTATIONS = {"mitigation_comparison": "vlbias.report.audits.mitigation"}


@dataclass(frozen=True)
class Presentation:
    audit: str
    title: str
    page: str  # the audit's page, relative to the report root
    section: Callable[[Context, list[Run]], list[B.Block]]
    methods: Callable[[Context, list[Run]], list[B.Block]]
    headline: Callable[[Context, list[Run]], list[B.Block]]


def _nothing(ctx: Context, runs: list[Run]) -> list[B.Block]:
    return []


def presentation(audit: str) -> Presentation:
    """How the report presents the runs of ``audit``: the module its spec names, else the generic section."""
    try:
        module_name = OWN_PRESENTATIONS.get(audit) or get_audit(audit).presentation
    except VlbiasError:  # an audit this vlbias does not know (a plugin not installed here)
        module_name = None
    if module_name is None:
        return Presentation(audit, f"Audit {audit}", f"audit-{audit}.html", other_section, _nothing, _nothing)
    try:
        module = importlib.import_module(module_name)
        title, section = str(module.TITLE), module.section
    except (ImportError, AttributeError) as e:
        raise VlbiasError(
            f"audit {audit!r} names {module_name!r} as its presentation, which cannot be used ({e}); a presentation "
            f"module defines TITLE and section(ctx, runs)"
        ) from None
    page = f"audit-{audit}.html" if audit in OWN_PAGES else f"{audit}.html"
    section = with_depth(section, getattr(module, "depth", None))
    return Presentation(
        audit, title, page, section, getattr(module, "methods", _nothing), getattr(module, "headline", _nothing)
    )
