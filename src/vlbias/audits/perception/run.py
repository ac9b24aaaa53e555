"""Running the social-perception audit (see :mod:`vlbias.audits.perception`)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from vlbias.audits.base import AuditResult, RunRecord
from vlbias.audits.perception.options import ANALYSES, PerceptionOptions
from vlbias.datasets.base import crop_text, image_refs
from vlbias.errors import MissingKeysError, ModalityError, VlbiasError, plural
from vlbias.stats import perception as sp
from vlbias.stats import skew as sk
from vlbias.stats.perception import dimension_rng
from vlbias.stimuli.perception import Vocabulary, load_control, load_lexicon, load_templates
from vlbias.utils.names import column_names
from vlbias.utils.threads import one_blas_thread

#: the study's order of dimensions in the factor-effect figure
DIMENSIONS = ("lighting", "pose", "smiling", "identity", "age", "gender", "race")
VARIED = ("age", "lighting", "pose", "smiling")
PROTECTED = ("age", "gender", "race")
REFERENCES = {"lighting": -1.0, "smiling": 0.0, "pose": 0.0}  # CausalFace's neutral levels
CURVE_ATTRIBUTES = ("age", "smiling")
#: the study's level correlations (its table S4, analysis/tab_S4.py): setting, attribute, which side of level 0
#: (-1 below, 1 above, 0 every level), and the lists of scales whose words it pools
LEVEL_SETTINGS = (
    ("lighting", "lighting", 0),
    ("pose < 0", "pose", -1),
    ("pose > 0", "pose", 1),
    ("smiling", "smiling", 0),
)
_ALL_SCALES = ("agency+", "beliefs+", "communion+", "warm", "competent", "agency-", "beliefs-", "communion-")
LEVEL_LISTS = {
    "lighting": {"all scales": _ALL_SCALES},
    "pose": {"all scales": _ALL_SCALES},
    "smiling": {
        "smiling-": ("agency-", "communion-"),
        "smiling+/progressive": ("agency+", "beliefs+", "communion+", "warm", "competent"),
        "smiling conservative": ("beliefs-",),
    },
}


# ---------------------------------------------------------------------------------------------------- run


def run(encoder, opts: PerceptionOptions):
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
    refs = image_refs(table)
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

    scores = _scores_table(table, neutral, scales, scale_scores)
    tables: dict[str, pd.DataFrame] = {"scores": scores, "word_scores": _word_scores_table(table, words, word_delta)}
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
    # the people the analyses use (races, merge_races, min_age); the scores table keeps everyone as labelled
    table, keep = _races(table, opts, notes)
    cos, scale_scores = cos[keep], scale_scores[keep]
    design, controlled = _design(table)
    adult = _adults(table, opts.min_age, controlled, notes)
    ctx = _Context(opts, table, design, controlled, list(scales), scale_scores, words, cos, vocab, adult)
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
    with one_blas_thread():
        for analysis in runnable:
            tables.update(getattr(ctx, analysis)())
    notes += _skew_notes(tables.get("skew"))
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


def _races(table: pd.DataFrame, opts: PerceptionOptions, notes: list[dict]) -> tuple[pd.DataFrame, np.ndarray]:
    """The analysed rows' race labels after ``merge_races``, and which rows ``races`` keeps."""
    if opts.merge_races:
        table = table.assign(race=table["race"].map(lambda r: opts.merge_races.get(r, r)))
    keep = np.ones(len(table), dtype=bool)
    if opts.races is not None:
        keep = table["race"].isin(opts.races).to_numpy()
        if not keep.any():
            found = ", ".join(sorted(table["race"].astype(str).unique()))
            raise VlbiasError(f"no image of the races {', '.join(opts.races)} (the dataset has {found}); check races")
        if not keep.all():
            left = ", ".join(sorted(table.loc[~keep, "race"].astype(str).unique()))
            notes.append(
                {
                    "item": f"{plural(int((~keep).sum()), 'image')} of other races ({left})",
                    "reason": f"scored, but left out of the analyses (races: {', '.join(opts.races)})",
                }
            )
    return table[keep].reset_index(drop=True), keep


def group_people(scores: pd.DataFrame, opts: PerceptionOptions) -> pd.DataFrame:
    """The rows of a ``scores`` table whose groups the audit compares (markedness, skew, group means): known race
    and gender, the ``races`` kept, at least ``min_age``, and on CausalFace the ``group_subsets`` folders; race after
    ``merge_races``. The scores table itself keeps every scored image as labelled."""
    table = scores[scores["race"].notna() & scores["gender"].notna()].reset_index(drop=True)
    table, _ = _races(table, opts, [])  # the rows kept, race merged
    _, controlled = _design(table)
    table = table[_adults(table, opts.min_age, controlled, [])]
    if controlled and opts.group_subsets != "all":
        table = table[table["attribute"].astype(str).isin(opts.group_subsets)]
    return table.reset_index(drop=True)


def _adults(table: pd.DataFrame, min_age: float | None, controlled: bool, notes: list[dict]) -> np.ndarray:
    """Which rows are at least ``min_age`` old: by the age in years, else by the lower edge of the age bin (so 20
    keeps FairFace's 20-29 and older, as the study's filter); unknown ages fail. Controlled data (CausalFace) has
    levels, not ages: every row passes."""
    n = len(table)
    if min_age is None or controlled:
        return np.ones(n, dtype=bool)
    years = pd.to_numeric(table["age"], errors="coerce").to_numpy(dtype=np.float64)
    lower = table["age_group"].fillna("").astype(str).map(_age_group_lower).to_numpy(dtype=np.float64)
    age = np.where(np.isfinite(years), years, lower)
    adult = np.isfinite(age) & (age >= min_age)
    if not adult.all():
        notes.append(
            {
                "item": f"{plural(int((~adult).sum()), 'image')} younger than {min_age:g} or of unknown age",
                "reason": "scored, but left out of the analyses (min_age)",
            }
        )
    return adult


def _age_group_lower(label: str) -> float:
    import re

    m = re.search(r"\d+(?:\.\d+)?", label)
    return float(m.group()) if m else np.nan


def _percent(df: pd.DataFrame, col: str, name: str) -> pd.DataFrame:
    """A share (0-1) and its interval ends as percent, renamed ``name``, ``name_ci_low``, ``name_ci_high``: every
    share of vlbias's tables is a percentage named so (as the zero-shot audit's top1_pct)."""
    if col not in df:
        return df
    cols = {col: name, f"{col}_ci_low": f"{name}_ci_low", f"{col}_ci_high": f"{name}_ci_high"}
    df = df.copy()
    for c in cols:
        if c in df:
            df[c] = df[c] * 100
    return df.rename(columns=cols)


def _scores_table(table, neutral, scales, scale_scores) -> pd.DataFrame:
    """One row per image: its metadata, cos with the neutral prompt, and a column per scale named so that pandas
    and SQL need no quoting (agency+ -> agency_pos; :func:`vlbias.utils.names.column_names`)."""
    meta = [c for c in table.columns if c != "crop"]
    out = table[meta].copy()
    if "crop" in table.columns:
        out["crop"] = [crop_text(c) for c in table["crop"]]
    out["cos_neutral"] = neutral
    for j, col in enumerate(column_names(scales)):
        out[col] = scale_scores[:, j]
    return out


def _word_scores_table(table, words, word_delta) -> pd.DataFrame:
    """The word scores, long: one row per image and word (key, word, score), so any word is a value, not a column
    name."""
    n, k = word_delta.shape
    return pd.DataFrame(
        {
            "key": np.repeat(table["key"].to_numpy(), k),
            "word": np.tile(np.asarray(words, dtype=object), n),
            "score": word_delta.reshape(-1),
        }
    )


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

    def __init__(self, opts, table, design, controlled, scale_names, scale_scores, words, cos, vocab, adult):
        self.opts = opts
        # every analysis uses the people of the right age (min_age); the study's balanced skew set is drawn from
        # all of them first (balance: hausladen2025), so they are kept too
        self.pool = (table, design, cos, adult)
        if not adult.all():
            table, design = table[adult].reset_index(drop=True), design[adult].reset_index(drop=True)
            scale_scores, cos = scale_scores[adult], cos[adult]
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

    def group_rows(self, design: pd.DataFrame | None = None) -> np.ndarray:
        """The rows markedness, skew and group_means use: on CausalFace those of the group_subsets folders."""
        d = self.design if design is None else design
        if not self.controlled or self.opts.group_subsets == "all":
            return np.ones(len(d), dtype=bool)
        return d["subset"].isin(self.opts.group_subsets).to_numpy()

    def level_settings(self) -> list[tuple[str, str, np.ndarray]]:
        """(setting, attribute, rows) of the level correlations: the study's lighting, pose left and right (pose 0 in
        neither), smiling."""
        d = self.design
        out = []
        if not self.controlled:
            return out
        for setting, attr, side in LEVEL_SETTINGS:
            if attr not in d.columns:
                continue
            x = d[attr].to_numpy(dtype=np.float64)
            rows = np.isfinite(x) & (x < 0 if side < 0 else x > 0 if side > 0 else True)
            if len(np.unique(x[rows])) >= 2:
                out.append((setting, attr, rows))
        return out

    def cannot_run(self, analysis: str) -> str | None:
        n = len(self.table)
        if n < 2:
            return "fewer than two images"
        if analysis in ("markedness", "skew", "group_means") and self.group_rows().sum() < 2:
            return f"fewer than two images in the CausalFace folders group_subsets names ({', '.join(self.opts.group_subsets)})"
        if analysis == "level_correlations" and not self.level_settings():
            return "it needs CausalFace's lighting, pose or smiling folder (two or more levels)"
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
        if analysis == "skew" and not any(
            self.design.loc[self.group_rows(), c].nunique() >= 2 for c in ("race", "gender")
        ):
            return "the images have a single race and gender"
        return None

    # ------------------------------------------------------------------ factors
    def factors(self) -> dict[str, pd.DataFrame]:
        d = self.design
        attrs = [a for a in VARIED if a in d.columns]
        pair_rows, frames = [], []
        keys = self.table["key"].to_numpy()
        plan = []
        for dim in self.dimensions():
            if dim in VARIED:
                match = ["identity", "race", "gender"]
            else:
                match = [c for c in ("identity", "race", "gender") if c != dim] + attrs
            plan.append((dim, match, self.opts.min_level_gap.get(dim) if dim in VARIED else None))
        if self.opts.pair_sampler == "hausladen2025":  # one legacy stream for all dimensions, in the study's order
            drawn = sp.sample_pairs_hausladen2025(d, plan, self.opts.pairs, self.opts.seed, keys=keys)
        else:
            drawn = {
                dim: sp.sample_pairs(d, dim, match, self.opts.pairs, self.rng(f"pairs:{dim}"), min_gap=gap)
                for dim, match, gap in plan
            }
        for dim, match, gap in plan:
            pairs = drawn[dim]
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
        effects = sp.effect_summary(
            both, confidence=self.conf, n_bootstrap=self.opts.n_bootstrap, rng=self.rng("factors:median")
        )
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
        shares = _percent(shares.rename(columns={"outcome": "scale", "factor": "attribute"}), "share", "share_pct")
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
        rows = self.group_rows()
        design, cos = self.design[rows].reset_index(drop=True), self.cos[rows]
        for column in ("race", "gender"):
            marking = control.marking(column)
            if not marking:
                continue
            labels = design[column].astype(str).to_numpy()
            has = np.array([lab in marking for lab in labels])
            if not has.any():
                continue
            own = np.array([cos[i, widx[marking[lab]]] if h else np.nan for i, (lab, h) in enumerate(zip(labels, has))])
            neutral = cos[:, 0]
            closer = neutral > own
            margin = 100 * (neutral - own)
            for grouping in (column, "group"):
                gl = design[grouping].astype(str).to_numpy()
                t = sp.group_shares(
                    closer[has],
                    gl[has],
                    clusters=design["identity"].to_numpy()[has],
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
        t = _percent(_concat(frames), "share", "neutral_closer_pct")
        return {
            "markedness": t.rename(
                columns={"margin": "margin_neutral_minus_own"}
                | {f"margin_ci_{s}": f"margin_neutral_minus_own_ci_{s}" for s in ("low", "high")}
            )
        }

    # ------------------------------------------------------------------ skew
    def skew(self) -> dict[str, pd.DataFrame]:
        names = [f"word:{w}" for w in self.words] + list(self.scale_names)
        n_words = len(self.words)
        study = self.opts.balance == "hausladen2025"
        if study and not self.controlled:
            # the study's one set: balanced over race x gender cells among everyone, then the min_age filter
            table, design, cos, adult = self.pool
            drawn = sk.cell_subsample(design["race"].to_numpy(), design["gender"].to_numpy(), self.opts.seed)
            drawn = drawn[adult[drawn]]
        else:
            design, cos = self.design, self.cos
            drawn = np.flatnonzero(self.group_rows())  # CausalFace: its folders, unbalanced under the study's rule
        scale_cos = [cos[:, [self.words.index(w) + 1 for w in ws]].mean(axis=1) for ws in self.vocab.scales.values()]
        rank_scores = np.column_stack([cos[:, 1:], *scale_cos])
        frames, means = [], []
        for grouping in ("race", "gender", "group"):
            labels = design[grouping].astype(str).to_numpy()
            if len(np.unique(labels[drawn])) < 2:
                continue
            rng = self.rng(f"skew:{grouping}")
            keep = drawn if study else drawn[sk.balanced_subsample(labels[drawn], rng)]
            t = sk.ranking_skew(
                rank_scores[keep],
                labels[keep],
                k=self.opts.k,
                names=names,
                n_perm=self.opts.n_random_rankings,
                rng=rng,
                ndkl_depth=None if self.opts.ndkl_depth == "all" else -1,
            )
            label = "race x gender" if grouping == "group" else grouping
            t.insert(0, "grouping", label)
            t.insert(1, "kind", ["word" if r.startswith("word:") else "scale" for r in t["ranking"]])
            t["ranking"] = [r.removeprefix("word:") for r in t["ranking"]]
            frames.append(t)
            means.append(self._skew_over_scales(t, rank_scores[keep, n_words:], labels[keep], label))
        return {"skew": _concat(frames), "skew_scales": _concat(means)}

    def _skew_over_scales(self, t: pd.DataFrame, scale_scores, labels, grouping: str) -> pd.DataFrame:
        """The study's table S3 numbers: MaxSkew@k, NDKL and every group's Skew@k, each averaged over the scales."""
        from vlbias.stats import skew as sk

        scales = t[t["kind"] == "scale"]
        groups, codes = np.unique(labels, return_inverse=True)
        ranked = codes[np.argsort(-scale_scores, axis=0, kind="stable")].T  # (scales, n), best first
        per_group = sk.skew_at_k(ranked, len(groups), self.opts.k)  # (scales, G)
        rows = [
            {"statistic": "max_skew", "group": "", "mean_over_scales": scales["max_skew"].mean()},
            {"statistic": "ndkl", "group": "", "mean_over_scales": scales["ndkl"].mean()},
        ]
        with np.errstate(invalid="ignore"):
            rows += [
                {"statistic": "skew", "group": g, "mean_over_scales": per_group[:, gi].mean()}
                for gi, g in enumerate(groups)
            ]
        out = pd.DataFrame(rows)
        out.insert(0, "grouping", grouping)
        out["n_scales"] = len(scales)
        out["k"] = int(scales["k"].iloc[0])
        out["k_used"] = int(scales["k_used"].iloc[0])
        out["ndkl_depth"] = int(scales["ndkl_depth"].iloc[0])
        out["n_items"] = int(scales["n_items"].iloc[0])
        return out

    # ------------------------------------------------------------------ group means
    def group_means(self) -> dict[str, pd.DataFrame]:
        """Mean raw cosine similarity (x 100) per group for every scale and for the positive scales together."""
        from vlbias.stats.groups import group_means

        rows = self.group_rows()
        design, cos = self.design[rows].reset_index(drop=True), self.cos[rows]
        values = {
            s: 100 * cos[:, [self.words.index(w) + 1 for w in ws]].mean(axis=1) for s, ws in self.vocab.scales.items()
        }
        positive = [s for s in values if not s.endswith("-")]
        if positive:
            values["positive scales"] = np.mean([values[s] for s in positive], axis=0)
        frames = []
        for grouping in ("race", "gender", "group"):
            st = group_means(
                pd.DataFrame(values),
                design[grouping].astype(str).rename("group"),
                design["identity"],
                n_bootstrap=self.opts.n_bootstrap,
                confidence=self.conf,
                seed=self.rng(f"group_means:{grouping}"),
            )
            t = st.frame(value_name="scale").rename(
                columns={"estimate": "mean_cos", "low": "ci_low", "high": "ci_high"}
            )
            t.insert(0, "grouping", "race x gender" if grouping == "group" else grouping)
            frames.append(t)
        out = _concat(frames)
        out["scales"] = [", ".join(positive) if s == "positive scales" else s for s in out["scale"]]
        return {"group_means": out}

    # ------------------------------------------------------------------ level correlations
    def level_correlations(self) -> dict[str, pd.DataFrame]:
        """Pearson's r of the lighting, pose and smiling levels with Delta, as the study's table S4 (its lists of
        scales pooled as the study pools them, see :func:`vlbias.stats.perception.level_correlation`), and per scale
        and per word."""
        from vlbias.stats import perception as sp

        scales = self.vocab.scales
        abc = None
        if self.opts.level_words == "abc-suffix":
            abc = next((lex for lex in self.vocab.lexicons if lex.name == "abc"), None)
            if abc is None:
                raise VlbiasError(
                    "level_words: abc-suffix matches the words of the abc lexicon (as the study's table S4); add "
                    "abc to lexicons, or use level_words: exact"
                )
        rows = []
        for setting, attr, mask in self.level_settings():
            x = self.design.loc[mask, attr].to_numpy(dtype=np.float64)
            clusters = self.design.loc[mask, "identity"].to_numpy()
            delta = sp.delta(self.cos[mask, 1:], self.cos[mask, 0], self.opts.delta == "relative")  # (images, words)
            lists = {f"scale {s}": (s,) for s in scales}
            lists |= {name: tuple(s for s in ss if s in scales) for name, ss in LEVEL_LISTS[attr].items()}
            for name, members in lists.items():
                if not members:
                    continue
                listed = list(dict.fromkeys(w for s in members for w in scales[s]))
                if abc is not None and not name.startswith("scale "):  # the study's lists, as it matched them
                    words = [w for w in abc.words if any(w.endswith(v) for v in listed)]
                else:
                    words = listed
                rows.append(
                    {
                        "setting": setting,
                        "attribute": attr,
                        "kind": "scale" if name.startswith("scale ") else "study list",
                        "words_of": name.removeprefix("scale "),
                        "words": ", ".join(words),
                        **self._level_r(x, delta[:, [self.words.index(w) for w in words]], clusters, setting),
                    }
                )
            for w in self.words:
                rows.append(
                    {
                        "setting": setting,
                        "attribute": attr,
                        "kind": "word",
                        "words_of": w,
                        "words": w,
                        **self._level_r(x, delta[:, [self.words.index(w)]], clusters, setting),
                    }
                )
        return {"level_correlations": pd.DataFrame(rows)}

    def _level_r(self, x, values, clusters, setting: str) -> dict:
        from vlbias.stats import perception as sp

        return sp.level_correlation(
            x,
            values,
            clusters,
            n_bootstrap=self.opts.n_bootstrap,
            confidence=self.conf,
            rng=self.rng(f"levels:{setting}"),
        )


def _skew_notes(skew: pd.DataFrame | None) -> list[dict[str, str]]:
    """A k beyond the ranked set, said: the skew used the whole set, the same top k for every ranking."""
    if skew is None or not len(skew):
        return []
    cut = skew[skew["k_used"] < skew["k"]].drop_duplicates("grouping")
    return [
        {
            "item": f"skew over {r.grouping}",
            "reason": f"k = {r.k} is more than the {r.n_items} images ranked: MaxSkew and NDKL used k = {r.k_used}, "
            f"the whole set, the same for every ranking (MaxSkew measures the set, 0 for a balanced one, not the "
            f"ranking); give a k below {r.n_items}",
        }
        for r in cut.itertuples()
    ]


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
    ss, gm, lc = tables.get("skew_scales"), tables.get("group_means"), tables.get("level_correlations")
    if ss is not None and len(ss):
        ss = ss[ss["statistic"] != "skew"]
    if gm is not None and len(gm):
        gm = gm[gm["scale"] == "positive scales"]
    if lc is not None and len(lc):
        lc = lc[lc["kind"] == "study list"]
    if ex is not None and len(ex):
        ex = ex[ex["rank"] == 1]
    if mk is not None and len(mk) and "neutral_closer_pct" in mk:
        mk = mk[mk["neutral_closer_pct"].notna()]
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
            "share of explained variance (%)",
            attribute="attribute",
            scale="scale",
            item="attribute",
            value="share_pct",
            ci_low="share_pct_ci_low",
            ci_high="share_pct_ci_high",
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
            "% of images whose neutral prompt is closer than their own {dimension}'s",
            attribute="dimension",
            item="group",
            value="neutral_closer_pct",
            ci_low="neutral_closer_pct_ci_low",
            ci_high="neutral_closer_pct_ci_high",
        ),
        _headline(
            sk,
            "skew",
            "max_skew",
            attribute="grouping",
            scale="ranking",
            item="grouping",
            value="max_skew",
            p="max_skew_p",
        ),
        _headline(
            sk,
            "skew",
            "ndkl",
            attribute="grouping",
            scale="ranking",
            item="grouping",
            value="ndkl",
            p="ndkl_p",
        ),
        _headline(
            ss,
            "skew",
            "{statistic} mean over {n_scales} scales",
            attribute="grouping",
            item="grouping",
            value="mean_over_scales",
        ),
        _headline(
            gm,
            "group_means",
            "mean cosine x 100, positive scales",
            attribute="grouping",
            scale="scale",
            item="group",
            value="mean_cos",
            ci_low="ci_low",
            ci_high="ci_high",
        ),
        _headline(
            lc,
            "level_correlations",
            "Pearson r of {attribute} level with Delta ({setting}, {words_of})",
            attribute="attribute",
            scale="words_of",
            item="setting",
            value="r",
            ci_low="r_ci_low",
            ci_high="r_ci_high",
            p="p",
        ),
    ]
    out = pd.concat([p for p in parts if len(p)] or [pd.DataFrame(columns=SUMMARY_COLUMNS)], ignore_index=True)
    out = out.reindex(columns=SUMMARY_COLUMNS)
    out["rank"] = out["rank"].astype("Int64")
    return out
