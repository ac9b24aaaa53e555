"""Figures of audit results: every matplotlib figure vlbias draws is drawn here.

One module per audit (:mod:`~vlbias.plots.eat`, :mod:`~vlbias.plots.zeroshot`, :mod:`~vlbias.plots.perception`),
the forest plot they share (:mod:`~vlbias.plots.forest`) and the upstream analysis of a model zoo
(:mod:`~vlbias.plots.upstream`); each draws from result tables, so a figure can be redrawn from a folder or a
database. Conventions: labelled axes with units, intervals drawn wherever a table has them, and one look
(:mod:`~vlbias.plots.style`: the Okabe-Ito palette, markers, figures on the Agg canvas without pyplot).
"""
