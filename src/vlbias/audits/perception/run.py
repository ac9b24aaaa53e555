"""Running the social-perception audit (see :mod:`vlbias.audits.perception`)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from vlbias.audits.base import AuditResult, RunRecord
from vlbias.audits.perception.options import ANALYSES, PerceptionOptions
from vlbias.errors import MissingKeysError, ModalityError, VlbiasError, plural
from vlbias.models.images import ImageRef
from vlbias.stats import perception as sp
from vlbias.stats import skew as sk
from vlbias.stats.perception import dimension_rng
from vlbias.stimuli.perception import Vocabulary, load_control, load_lexicon, load_templates

#: the study's order of dimensions in the factor-effect figure
DIMENSIONS = ("lighting", "pose", "smiling", "identity", "age", "gender", "race")
VARIED = ("age", "lighting", "pose", "smiling")
PROTECTED = ("age", "gender", "race")
REFERENCES = {"lighting": -1.0, "smiling": 0.0, "pose": 0.0}  # CausalFace's neutral levels
CURVE_ATTRIBUTES = ("age", "smiling")


# ---------------------------------------------------------------------------------------------------- run


def run(encoder, opts: PerceptionOptions):
    from threadpoolctl import threadpool_limits

    missing = [m for m in ("text", "image") if m not in encoder.modalities]
    if missing:
        raise ModalityError(
            f"the perception audit compares images with texts, and {encoder.spec} cannot encode "
            f"{' or '.join(m + 's' for m in missing)}; choose a vision-language model (e.g. openclip:ViT-B-32/laion2b_s34b_b79k)"
        )
    dataset = _load(opts)
    vocab = Vocabulary(
        [load_lexicon(x) for x in opts.lexicons],
        load_control(opts.control),
        load_templates(opts.templates),
        opts.article,
    )
    prompts = vocab.prompt_set()

    # texts once per model (the cache keeps them across runs), then images (cached by content and crop)
    unique = prompts.unique_prompts()
    _check_lookup(
        encoder.missing_texts(unique), encoder, "prompt", "add them to the file (every word with every template)"
    )
    text_vecs = encoder.encode_texts(unique)
    pos = {p: i for i, p in enumerate(unique)}
    text_mat = text_vecs[[pos[p] for p in prompts.prompts]].astype(np.float64)
    table = dataset.table.reset_index(drop=True)
    crops = table["crop"] if "crop" in table.columns else pd.Series([None] * len(table))
    refs = [
        ImageRef(Path(p), tuple(int(v) for v in c) if c is not None else None) for p, c in zip(table["path"], crops)
    ]
    if not opts.skip_bad_images:
        _check_lookup(
            encoder.missing_images(refs, root=dataset.root),
            encoder,
            "image",
            "add them to the file (keyed by the path relative to the dataset root), or skip them with skip_bad_images",
        )
    enc = encoder.try_encode_images(refs, root=dataset.root, skip_bad=opts.skip_bad_images)
    skipped_images = pd.DataFrame(
        [{"item": table["key"].iloc[i], "reason": f"image skipped: {reason}"} for i, _, reason in enc.skipped],
        columns=["item", "reason"],
    )
    table = table[enc.ok].reset_index(drop=True)
    cos = sp.template_mean(enc.vectors.astype(np.float64) @ text_mat.T, prompts.n_templates)  # (n, words)
    neutral = cos[:, 0]
    relative = opts.delta == "relative"
    if relative and np.any(neutral <= 0):
        bad = int((neutral <= 0).sum())
        raise VlbiasError(
            f"relative Delta divides by cos(image, neutral prompt), which is zero or negative for {bad} of "
            f"{len(neutral)} images with {encoder.spec}; use delta: absolute"
        )
    words = prompts.words[1:]
    word_delta = sp.delta(cos[:, 1:], neutral, relative)  # (n, words)
    windex = {w: i for i, w in enumerate(words)}
    scales = vocab.scales
    scale_scores = np.column_stack([word_delta[:, [windex[w] for w in ws]].mean(axis=1) for ws in scales.values()])

    scores = _scores_table(table, neutral, scales, scale_scores, words, word_delta)
    tables: dict[str, pd.DataFrame] = {"scores": scores}
    notes: list[dict[str, str]] = []
    # every image is scored; the group analyses need its race and gender (a loader leaves labels it cannot map
    # empty, and reports them)
    known = (table["race"].notna() & table["gender"].notna()).to_numpy()
    if not known.all():
        notes.append(
            {
                "item": f"{plural(int((~known).sum()), 'image')} with unknown race or gender",
                "reason": "scored, but left out of the group analyses",
            }
        )
        table, cos, scale_scores = table[known].reset_index(drop=True), cos[known], scale_scores[known]
    design, controlled = _design(table)
    ctx = _Context(opts, table, design, controlled, list(scales), scale_scores, words, cos, vocab)
    runnable = []
    explicit = opts.analyses != "all"
    for analysis in opts.analyses if explicit else ANALYSES:
        why = ctx.cannot_run(analysis)
        if why:
            if explicit:
                raise VlbiasError(
                    f"analysis {analysis!r} cannot run on {dataset.name}: {why}; leave it out of analyses"
                )
            notes.append({"item": f"analysis {analysis}", "reason": f"not run: {why}"})
        else:
            runnable.append(analysis)
    # the analyses solve thousands of small least-squares problems, on which BLAS threads only contend (a 600 x 30
    # SVD takes 1 ms on one thread and up to 80 ms on two busy cores): they run single-threaded
    with threadpool_limits(limits=1, user_api="blas"):
        for analysis in runnable:
            tables.update(getattr(ctx, analysis)())
    tables = {"results": _summary(tables, ctx), **tables}

    stimuli = [
        dataset.provenance(len(table)),
        *vocab.describe(),
    ]
    info = encoder.record()  # never loads weights that a fully cached run did not need
    record = RunRecord(audit="perception", model=info, options=opts.to_dict(), seed=opts.seed, stimuli=stimuli)
    skipped = pd.concat(
        [
            frame
            for frame in (dataset.report.as_frame(), skipped_images, pd.DataFrame(notes, columns=["item", "reason"]))
            if len(frame)
        ]
        or [pd.DataFrame(columns=["item", "reason"])],
        ignore_index=True,
    )
    return AuditResult("perception", tables, record, skipped)


def _check_lookup(missing: list[str], encoder, kind: str, what_to_do: str) -> None:
    """Precomputed vectors (vectors:) that lack some of the audit's prompts or images: one line naming them."""
    if missing:
        shown = ", ".join(repr(m) for m in missing[:4])
        more = f" and {len(missing) - 4} more" if len(missing) > 4 else ""
        raise MissingVectorsError(str(encoder.spec), kind, missing, f"{shown}{more}; {what_to_do}")


class MissingVectorsError(MissingKeysError):
    """A vectors: file without some of the perception audit's prompts or images (the message says what to do)."""

    def __init__(self, source: str, kind: str, missing: list[str], tail: str):
        VlbiasError.__init__(
            self, f"{source} has no vector for {len(missing)} {kind}(s) of the perception audit: {tail}"
        )
        self.source, self.kind, self.missing = source, kind, list(missing)


def _load(opts: PerceptionOptions):
    if opts.dataset is None:
        raise VlbiasError(
            "the perception audit needs a face dataset; give dataset: causalface:PATH (or cfd:, fairface:, utkface:)"
        )
    return opts.dataset.load()


def _scores_table(table, neutral, scales, scale_scores, words, word_delta) -> pd.DataFrame:
    meta = [c for c in table.columns if c != "crop"]
    out = table[meta].copy()
    if "crop" in table.columns:
        out["crop"] = [",".join(str(int(v)) for v in c) if c is not None else "" for c in table["crop"]]
    out["cos_neutral"] = neutral
    for j, s in enumerate(scales):
        out[s] = scale_scores[:, j]
    word_cols = pd.DataFrame(word_delta, columns=[f"word:{w}" for w in words], index=out.index)
    return pd.concat([out, word_cols], axis=1)


def _design(table: pd.DataFrame) -> tuple[pd.DataFrame, bool]:
    """Analysis columns: identity, race, gender, and either the varied attributes (controlled) or age."""
    d = pd.DataFrame({"identity": table["identity"].astype(str), "race": table["race"], "gender": table["gender"]})
    d["group"] = table["race"].astype(str) + " " + table["gender"].astype(str)
    controlled = "attribute" in table.columns and "level" in table.columns and table["attribute"].notna().all()
    if controlled:
        d["subset"] = table["attribute"].astype(str)
        for a in sorted(table["attribute"].unique()):
            d[a] = np.where(table["attribute"] == a, table["level"].astype(float), np.nan)
    else:
        age = pd.to_numeric(table["age"], errors="coerce")
        groups = table["age_group"].fillna("").astype(str)
        if groups.ne("").all():
            d["age"] = groups
            d["age_x"] = groups.map(_age_group_midpoint)
        elif age.notna().any():
            d["age"] = age.map(_fairface_bin)
            d["age_x"] = d["age"].map(lambda b: _age_group_midpoint(b) if isinstance(b, str) else np.nan)
    return d, controlled


def _age_group_midpoint(label: str) -> float:
    import re

    nums = [float(n) for n in re.findall(r"\d+(?:\.\d+)?", label)]
    if not nums:
        return np.nan
    return (nums[0] + nums[1]) / 2 if len(nums) >= 2 else nums[0]


def _fairface_bin(age: float) -> str | float:
    """FairFace's age bins, so numeric ages regress like binned ones."""
    if not np.isfinite(age):
        return np.nan
    for lo, hi in ((0, 2), (3, 9), (10, 19), (20, 29), (30, 39), (40, 49), (50, 59), (60, 69)):
        if age <= hi:
            return f"{lo}-{hi}"
    return "70+"


class _Context:
    """Everything the analyses share; each analysis method returns its tables."""

    def __init__(self, opts, table, design, controlled, scale_names, scale_scores, words, cos, vocab):
        self.opts = opts
        self.table = table
        self.design = design
        self.controlled = controlled
        self.scale_names = scale_names
        self.scores = scale_scores
        self.words = words
        self.cos = cos  # (n, 1 + words): neutral first
        self.vocab = vocab
        self.conf = opts.confidence

    def rng(self, name: str) -> np.random.Generator:
        return dimension_rng(self.opts.seed, name)

    # ------------------------------------------------------------------ applicability
    def dimensions(self) -> list[str]:
        d = self.design
        out = []
        for dim in DIMENSIONS:
            if dim in VARIED:
                if dim in d.columns and d[dim].nunique() >= 2:
                    out.append(dim)
            elif d[dim].nunique() >= 2:
                out.append(dim)
        return out

    def cannot_run(self, analysis: str) -> str | None:
        n = len(self.table)
        if n < 2:
            return "fewer than two images"
        if analysis == "factors":
            if not self.controlled:
                return "it needs a controlled dataset (CausalFace) whose images differ in one attribute at a time"
            if not self.dimensions():
                return "no dimension varies"
        if analysis == "regression" and not self._factors():
            return "no attribute has two or more values"
        if analysis == "curves" and not self._curve_attributes():
            return "no age or smiling levels to draw curves over"
        if analysis == "markedness" and not any(self.vocab.control.marking(c) for c in ("race", "gender")):
            return "the control words name no race or gender"
        if analysis == "skew" and not any(self.design[c].nunique() >= 2 for c in ("race", "gender")):
            return "the images have a single race and gender"
        return None

    # ------------------------------------------------------------------ factors
    def factors(self) -> dict[str, pd.DataFrame]:
        d = self.design
        attrs = [a for a in VARIED if a in d.columns]
        pair_rows, frames = [], []
        keys = self.table["key"].to_numpy()
        for dim in self.dimensions():
            if dim in VARIED:
                match = ["identity", "race", "gender"]
            else:
                match = [c for c in ("identity", "race", "gender") if c != dim] + attrs
            gap = self.opts.min_level_gap.get(dim) if dim in VARIED else None
            pairs = sp.sample_pairs(d, dim, match, self.opts.pairs, self.rng(f"pairs:{dim}"), min_gap=gap)
            if len(pairs.first) == 0:
                continue
            change = self.scores[pairs.second] - self.scores[pairs.first]
            frames.append(
                pd.DataFrame(
                    {
                        "dimension": dim,
                        "pair": np.repeat(np.arange(len(pairs.first)), len(self.scale_names)),
                        "key_a": np.repeat(keys[pairs.first], len(self.scale_names)),
                        "key_b": np.repeat(keys[pairs.second], len(self.scale_names)),
                        "scale": np.tile(self.scale_names, len(pairs.first)),
                        "change": change.reshape(-1),
                        "abs_change": np.abs(change).reshape(-1),
                    }
                )
            )
            pair_rows.append(
                {
                    "dimension": dim,
                    "pairs": len(pairs.first),
                    "candidates": pairs.n_candidates,
                    "without_partner": pairs.n_without_partner,
                    "min_level_gap": gap if gap is not None else np.nan,
                    "match": ",".join(match),
                }
            )
        changes = pd.concat(frames, ignore_index=True)
        pooled = changes.assign(scale="all scales")
        both = pd.concat([pooled, changes], ignore_index=True)
        effects = sp.effect_summary(both, confidence=self.conf)
        effects["protected"] = effects["dimension"].isin(PROTECTED)
        tests = []
        for scale, g in both.groupby("scale", sort=False):
            samples = {dim: gg["abs_change"].to_numpy() for dim, gg in g.groupby("dimension", sort=False)}
            t = sp.pairwise_mannwhitney(samples)
            t.insert(0, "scale", scale)
            tests.append(t)
        return {
            "factor_effects": effects,
            "factor_tests": pd.concat(tests, ignore_index=True),
            "factor_pairs": changes,
            "factor_sampling": pd.DataFrame(pair_rows),
        }

    # ------------------------------------------------------------------ regression
    def _factors(self) -> dict[str, np.ndarray]:
        d = self.design
        names = ["identity", "race", "gender", *VARIED] if self.controlled else ["identity", "race", "gender", "age"]
        out = {}
        for name in names:
            if name not in d.columns or d[name].nunique() < 2:
                continue
            if name == "identity" and not self._identity_crossed():
                continue
            out[name] = d[name].to_numpy(dtype=object)
        return out

    def _identity_crossed(self) -> bool:
        """Identity effects are estimable beside race and gender only if an identity appears in several of them."""
        per = self.design.groupby("identity")[["race", "gender"]].nunique()
        return bool((per > 1).any(axis=None))

    def regression(self) -> dict[str, pd.DataFrame]:
        factors = self._factors()
        covariates = {}
        if self.controlled and self.design["subset"].nunique() > 1:
            covariates["subset"] = self.design["subset"].to_numpy(dtype=object)
        absorb = "identity" if "identity" in factors else None
        clusters = self.design["identity"].to_numpy(dtype=object)
        shares = sp.variance_shares(
            self.scores,
            factors,
            covariates=covariates,
            clusters=clusters,
            absorb=absorb,
            outcomes=self.scale_names,
            n_bootstrap=self.opts.n_bootstrap,
            confidence=self.conf,
            rng=self.rng("regression"),
        )
        shares = shares.rename(columns={"outcome": "scale", "factor": "attribute"})
        shares["protected"] = shares["attribute"].isin(PROTECTED)
        coefs = sp.regression_coefficients(
            self.scores,
            factors,
            covariates=covariates,
            clusters=clusters,
            absorb=absorb,
            references={k: v for k, v in REFERENCES.items() if k in factors},
            outcomes=self.scale_names,
            confidence=self.conf,
        ).rename(columns={"outcome": "scale", "factor": "attribute"})
        return {"variance_shares": shares, "regression_coefficients": coefs}

    # ------------------------------------------------------------------ curves
    def _curve_attributes(self) -> list[str]:
        d = self.design
        if self.controlled:
            return [a for a in CURVE_ATTRIBUTES if a in d.columns and d[a].nunique() >= 3]
        return ["age"] if "age_x" in d.columns and d["age_x"].nunique() >= 3 else []

    def _age_unit(self) -> str:
        groups = self.table["age_group"].fillna("").astype(str)
        return "years, age-group midpoint" if groups.ne("").all() else "years, FairFace age-bin midpoint"

    def curves(self) -> dict[str, pd.DataFrame]:
        out: dict[str, list[pd.DataFrame]] = {"means": [], "fits": [], "grid": [], "extremes": []}
        for attr in self._curve_attributes():
            x = attr if self.controlled else "age_x"
            frame = self.design[["identity", "group", x]].copy()
            frame = frame.rename(columns={x: "x"})
            for j, s in enumerate(self.scale_names):
                frame[s] = self.scores[:, j]
            frame = frame[frame["x"].notna()]
            res = sp.level_curves(
                frame,
                self.scale_names,
                x="x",
                group="group",
                cluster="identity",
                confidence=self.conf,
                n_bootstrap=self.opts.n_bootstrap,
                rng=self.rng(f"curves:{attr}"),
            )
            unit = "CausalFace level" if self.controlled else self._age_unit()
            for name, t in res.items():
                if len(t):
                    t = t.rename(columns={"value": "scale"})
                    t.insert(0, "attribute", attr)
                    t.insert(1, "unit", unit)
                    out[name].append(t)
        return {
            "level_means": _concat(out["means"]),
            "curve_fits": _concat(out["fits"]),
            "curve_grid": _concat(out["grid"]),
            "extreme_groups": _concat(out["extremes"]),
        }

    # ------------------------------------------------------------------ markedness
    def markedness(self) -> dict[str, pd.DataFrame]:
        frames = []
        control = self.vocab.control
        widx = {w: i + 1 for i, w in enumerate(self.words)}  # columns of self.cos (neutral at 0)
        for column in ("race", "gender"):
            marking = control.marking(column)
            if not marking:
                continue
            labels = self.design[column].astype(str).to_numpy()
            has = np.array([lab in marking for lab in labels])
            if not has.any():
                continue
            own = np.array(
                [self.cos[i, widx[marking[lab]]] if h else np.nan for i, (lab, h) in enumerate(zip(labels, has))]
            )
            neutral = self.cos[:, 0]
            closer = neutral > own
            margin = 100 * (neutral - own)
            for grouping in (column, "group"):
                gl = self.design[grouping].astype(str).to_numpy()
                t = sp.group_shares(
                    closer[has],
                    gl[has],
                    clusters=self.design["identity"].to_numpy()[has],
                    extra={"margin": margin[has]},
                    n_bootstrap=self.opts.n_bootstrap,
                    confidence=self.conf,
                    rng=self.rng(f"markedness:{column}:{grouping}"),
                )
                t.insert(0, "grouping", "race x gender" if grouping == "group" else grouping)
                t.insert(0, "dimension", column)
                t["word"] = [marking[g.split(" ")[0] if column == "race" else g.split(" ")[-1]] for g in t["group"]]
                frames.append(t)
            missing = sorted(set(labels[~has]))
            if missing:
                frames.append(
                    pd.DataFrame(
                        {
                            "dimension": column,
                            "grouping": column,
                            "group": missing,
                            "n": [int((labels == m).sum()) for m in missing],
                            "word": "",
                            "note": "no control word names this group",
                        }
                    )
                )
        t = _concat(frames)
        return {
            "markedness": t.rename(
                columns={"share": "share_neutral_closer", "margin": "margin_neutral_minus_own"}
                | {f"share_ci_{s}": f"share_neutral_closer_ci_{s}" for s in ("low", "high")}
                | {f"margin_ci_{s}": f"margin_neutral_minus_own_ci_{s}" for s in ("low", "high")}
            )
        }

    # ------------------------------------------------------------------ skew
    def skew(self) -> dict[str, pd.DataFrame]:
        names = [f"word:{w}" for w in self.words] + list(self.scale_names)
        scale_cos = [
            self.cos[:, [self.words.index(w) + 1 for w in ws]].mean(axis=1) for ws in self.vocab.scales.values()
        ]
        rank_scores = np.column_stack([self.cos[:, 1:], *scale_cos])
        frames = []
        for grouping in ("race", "gender", "group"):
            labels = self.design[grouping].astype(str).to_numpy()
            if len(np.unique(labels)) < 2:
                continue
            rng = self.rng(f"skew:{grouping}")
            keep = sk.balanced_subsample(labels, rng)
            t = sk.ranking_skew(
                rank_scores[keep],
                labels[keep],
                k=self.opts.k,
                names=names,
                n_perm=self.opts.n_random_rankings,
                rng=rng,
            )
            t.insert(0, "grouping", "race x gender" if grouping == "group" else grouping)
            t.insert(1, "kind", ["word" if r.startswith("word:") else "scale" for r in t["ranking"]])
            t["ranking"] = [r.removeprefix("word:") for r in t["ranking"]]
            frames.append(t)
        return {"skew": _concat(frames)}


def _concat(frames: list[pd.DataFrame]) -> pd.DataFrame:
    frames = [f for f in frames if len(f)]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


SUMMARY_COLUMNS = ["analysis", "metric", "attribute", "scale", "item", "value", "ci_low", "ci_high", "rank", "p"]


def _headline(frame: pd.DataFrame | None, analysis: str, metric: str, **columns: str) -> pd.DataFrame:
    """Summary rows from an analysis table: ``metric`` is formatted with each row's columns; ``columns`` maps a
    summary column to the table column that fills it (missing when the table lacks it, e.g. without bootstrap)."""
    if frame is None or not len(frame):
        return pd.DataFrame(columns=SUMMARY_COLUMNS)
    out = pd.DataFrame({"analysis": analysis, "metric": [metric.format(**r) for r in frame.to_dict("records")]})
    for col, source in columns.items():
        out[col] = frame[source].to_numpy() if source in frame.columns else np.nan
    return out


def _summary(tables: dict[str, pd.DataFrame], ctx: _Context) -> pd.DataFrame:
    """The headline numbers of every analysis that ran, one row each (the table sweeps compare across models)."""
    ex, mk, sk = tables.get("extreme_groups"), tables.get("markedness"), tables.get("skew")
    if ex is not None and len(ex):
        ex = ex[ex["rank"] == 1]
    if mk is not None and len(mk) and "share_neutral_closer" in mk:
        mk = mk[mk["share_neutral_closer"].notna()]
    parts = [
        _headline(
            tables.get("factor_effects"),
            "factors",
            "median |change| (Delta points)",
            attribute="dimension",
            scale="scale",
            item="dimension",
            value="median",
            ci_low="median_ci_low",
            ci_high="median_ci_high",
            rank="rank",
        ),
        _headline(
            tables.get("variance_shares"),
            "regression",
            "share of explained variance",
            attribute="attribute",
            scale="scale",
            item="attribute",
            value="share",
            ci_low="share_ci_low",
            ci_high="share_ci_high",
            rank="rank",
        ),
        _headline(
            ex,
            "curves",
            "most extreme group over {attribute} (mean |deviation|, Delta points)",
            attribute="attribute",
            scale="scale",
            item="group",
            value="deviation",
            rank="rank",
            p="p_most_extreme",
        ),
        _headline(
            mk,
            "markedness",
            "share neutral prompt closer than own {dimension}",
            attribute="dimension",
            item="group",
            value="share_neutral_closer",
            ci_low="share_neutral_closer_ci_low",
            ci_high="share_neutral_closer_ci_high",
        ),
        _headline(
            sk,
            "skew",
            "max_skew@{k}",
            attribute="grouping",
            scale="ranking",
            item="grouping",
            value="max_skew",
            p="max_skew_p",
        ),
        _headline(
            sk, "skew", "ndkl@{k}", attribute="grouping", scale="ranking", item="grouping", value="ndkl", p="ndkl_p"
        ),
    ]
    out = pd.concat([p for p in parts if len(p)] or [pd.DataFrame(columns=SUMMARY_COLUMNS)], ignore_index=True)
    out = out.reindex(columns=SUMMARY_COLUMNS)
    out["rank"] = out["rank"].astype("Int64")
    return out
