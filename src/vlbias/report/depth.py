"""Runs on layers of a model (:mod:`vlbias.models.layers`) in a report: which run an audit's usual section shows,
and the depth section each presentation adds when a model was read at several layers.

Runs are grouped by model, options and reading. An audit's usual section shows one run per group, its *headline*:
the run on the model's own embedding if there is one, else the run on the deepest layer read (-1, the last block,
where it was read). A group with runs on several layers also gets the audit's depth section (its presentation's
``depth(ctx, runs)``): its headline numbers as curves over depth, with their intervals. A result that holds several layers (``vlbias eat --layer all --out
DIR``) was split into one run per layer when the report read it (:func:`vlbias.audits.base.split_layers`).
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from typing import Any

from vlbias.report import blocks as B
from vlbias.report.sections import Context
from vlbias.report.source import Run

LENS_NOTE = (
    "Layers are transformer blocks counted from the input (1 is the first). The lens reading passes a block's "
    "pooled token through the tower's own final norm and projection, so texts and images share the embedding space "
    "at every depth; at the last block it is the model's embedding, below it an approximation (the head was trained "
    "on the last block's output only), so compare depths with care. The raw reading is the token as the block "
    "outputs it: within one modality only."
)


def layer_of(run: Run) -> int | None:
    layer = run.record.model.get("layer")
    return layer if isinstance(layer, int) and not isinstance(layer, bool) else None


def _key(run: Run) -> str:
    return json.dumps([run.model, run.options], sort_keys=True, default=str)


def curve_layers(layers) -> list[int]:
    """The layers a depth curve draws: the positive ones (blocks from the input), or, where a model was read at
    negative layers only, those (counted from the top); never both on one axis."""
    layers = sorted({int(k) for k in layers})
    positive = [k for k in layers if k > 0]
    return positive or layers


def _depth_rank(layer: int) -> tuple[int, int]:
    """Orders layers by depth where it is known: -1 (the last block) above every block number, block numbers by
    number, and other negative layers (whose block depends on the tower) below them, by closeness to the top."""
    return (2, 0) if layer == -1 else (1, layer) if layer > 0 else (0, layer)


def split_by_depth(runs: list[Run]) -> tuple[list[Run], list[Run]]:
    """(one headline run per model and options; the runs of models read at several layers), in order."""
    groups: dict[str, list[Run]] = {}
    for r in runs:
        groups.setdefault(_key(r), []).append(r)
    headline, deep = [], []
    for group in groups.values():
        layered = [r for r in group if layer_of(r) is not None]
        plain = [r for r in group if layer_of(r) is None]
        if not layered:
            headline += group
            continue
        if plain:
            headline += plain
        else:
            headline.append(max(layered, key=lambda r: _depth_rank(layer_of(r))))
        drawn = set(curve_layers(layer_of(r) for r in layered))
        if len(drawn) > 1:
            deep += sorted((r for r in layered if layer_of(r) in drawn), key=lambda r: layer_of(r))
    order = {id(r): i for i, r in enumerate(runs)}
    return sorted(headline, key=lambda r: order[id(r)]), sorted(deep, key=lambda r: order[id(r)])


def with_depth(
    section: Callable[[Context, list[Run]], list[B.Block]], depth: Callable[[Context, list[Run]], list[B.Block]] | None
) -> Callable[[Context, list[Run]], list[B.Block]]:
    """An audit's section over headline runs, with a note on the layers shown, then its depth section."""

    @functools.wraps(section)  # present.__wrapped__ is the audit's own section
    def present(ctx: Context, runs: list[Run]) -> list[B.Block]:
        headline, deep = split_by_depth(runs)
        out: list[B.Block] = []
        shown = sorted({(layer_of(r), r.record.model.get("reading")) for r in headline if layer_of(r) is not None})
        if shown:
            which = ", ".join(f"layer {k} ({reading})" for k, reading in shown)
            out.append(
                B.note(
                    f"Some runs read a layer of the model rather than its embedding; the sections below show "
                    f"{which}" + (", and the depth section every layer read" if deep else "") + ". " + LENS_NOTE
                )
            )
        out += section(ctx, headline)
        if deep and depth is not None:
            out += depth(ctx, deep)
        return out

    return present


def by_model(runs: list[Run]) -> list[tuple[str, str | None, list[Run]]]:
    """The runs of each model and reading: (model, reading, runs), in order of layer."""
    groups: dict[tuple[str, Any], list[Run]] = {}
    for r in runs:
        groups.setdefault((r.model, r.record.model.get("reading")), []).append(r)
    return [(m, reading, sorted(rs, key=lambda r: layer_of(r) or 0)) for (m, reading), rs in groups.items()]


def layers_text(runs: list[Run]) -> str:
    layers = sorted({layer_of(r) for r in runs if layer_of(r) is not None})
    if layers == list(range(layers[0], layers[-1] + 1)) and len(layers) > 2:
        return f"layers {layers[0]}–{layers[-1]}"
    return "layers " + ", ".join(map(str, layers))
