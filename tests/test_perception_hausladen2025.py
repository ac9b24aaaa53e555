"""The ``hausladen2025`` preset of the perception audit against an independent computation of the study.

The reference below is written from the paper (Hausladen, Knott, Camerer & Perona, "Social perception of faces in a
vision-language model", FAccT 2025) and the logic of its released code, carinahausladen/clip-face-bias at
a2daa85c379b542de8d51e93439e2a85254c8df9 (file:line citations at each step; /work/notes/hausladen2025.md has the
reading). It works on the study's own data structures (pandas frames of ``cossim_<word>`` columns, one row per image
in the study's row order), uses pandas' ``DataFrame.sample`` with numpy's global legacy generator where the study
does, and shares no code with vlbias. Both read the same inputs: a CausalFace tree and a FairFace tree in the
releases' layouts, and exact vectors for every prompt and image (a ``vectors:`` model).

The vectors are stored exactly unit-length on a dyadic grid (:func:`exact_unit`), so every cosine is exact in float64
for both sides and what is compared is the arithmetic after it. Figures (3 CausalFace identities = 594 images,
FairFace 300 train images; ``max |vlbias - study|``, measured when this test was written):

- per-image neutral and word cosines and Delta: 0; the eight scale scores: 4e-17 (cosine units);
- the age level curves (fig_5.py: means per race x gender x age level, np.polyfit's quadratic per group): 2e-15 and
  1.2e-14 Delta points; the smiling curve pooled over groups (fig_s1.py): 1.9e-14;
- the factor-effect pairs of the study's sampler (fig_2.py: global RandomState(42), pandas .sample()) given the same
  row order: all 7000 pairs identical; the 21 pooled Mann-Whitney tests: U and p identical (difference 0);
- markedness on CausalFace's age folder and on FairFace (train split, adults, East + Southeast Asian merged): equal;
- NDKL over the whole ranking, MaxSkew@k and each group's Skew@k, per scale and averaged over the eight scales
  (tab_S3_ndkl_gen.py, tab_S3_skew_gen.py, tab_S3_2.py), on CausalFace's age folder (k = 50) and on FairFace's
  balanced-then-adult set (pandas sample(random_state=42) per race x gender cell; k = 30): below 1e-12;
- table S4's level correlations with the study's suffix matching (tab_S4.py; Smiling+ pools 19 abc words): r and p
  below 1e-12;
- mean raw cosine x 100 per race and per gender over the five positive scales (tab_S3.py:76-164): below 1e-12.
"""

from __future__ import annotations

import csv
import zlib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import scipy.stats as stats

from tests.faces_fixtures import write_image
from tests.perception_fixtures import CONTROL_AXES, axis, jitter, prompt_vector, write_causalface, write_npz
from vlbias.audits.perception import AUDIT, PerceptionOptions
from vlbias.datasets import load_dataset
from vlbias.models import load_model
from vlbias.stimuli.perception import Vocabulary, load_control, load_lexicon, load_templates
from vlbias.utils.names import column_name

SEEDS = (101, 202, 303)
FAST = {"n_bootstrap": 20, "n_random_rankings": 20}

# ---------------------------------------------------------------------------------------------------- the study
# attribute_models.py:1-23 (word lists) and precalculate_cossims.py:19-29 (template set 2)
CONTROL = ["<blank>", "white", "black", "asian", "male", "female", "young", "old"]
WARM = ["warm", "trustworthy", "friendly", "honest", "likable", "sincere"]
COMP = ["competent", "intelligent", "skilled", "efficient", "assertive", "confident"]
AGENCY_POS = ["powerful", "high-status", "dominating", "wealthy", "confident", "competitive"]
AGENCY_NEG = ["powerless", "low-status", "dominated", "poor", "meek", "passive"]
BELIEF_POS = ["science-oriented", "alternative", "liberal", "modern"]
BELIEF_NEG = ["religious", "conventional", "conservative", "traditional"]
COMMUNION_POS = ["trustworthy", "sincere", "friendly", "benevolent", "likable", "altruistic"]
COMMUNION_NEG = ["untrustworthy", "dishonest", "unfriendly", "threatening", "unpleasant", "egoistic"]
ABC = AGENCY_POS + AGENCY_NEG + BELIEF_POS + BELIEF_NEG + COMMUNION_POS + COMMUNION_NEG
SCALES = {  # the study's aggregated columns (_causalface_results_loading_utils.py:37-73) and vlbias's names
    "warm": ("warm", WARM),
    "comp": ("competent", COMP),
    "a+": ("agency+", AGENCY_POS),
    "a-": ("agency-", AGENCY_NEG),
    "b+": ("beliefs+", BELIEF_POS),
    "b-": ("beliefs-", BELIEF_NEG),
    "c+": ("communion+", COMMUNION_POS),
    "c-": ("communion-", COMMUNION_NEG),
}
TEMPLATES = [
    "A photo of a {attribute} person.",
    "A {attribute} person.",
    "This is a {attribute} person.",
    "cropped face photo of a {attribute} person",
]
# datasets/causalface.py:20-46: file names and levels of each folder, as the study lists them
ABBR = {"age": "age", "lighting": "l", "pose": "y", "smiling": "smiling"}
SUFFIX = {"age": "_o2", "lighting": "", "pose": "", "smiling": "_o2_corrected"}
VALUES = {
    "age": [0.8, 1.4, 2.0, 2.3, 2.6, 2.9, 3.2, 3.5, 3.8, 4.4],
    "lighting": [-1, 0, 1, 2, 3, 4, 5, 6],
    "pose": [-3.0, -1.5, 0.0, 1.5, 3.0],
    "smiling": [-2.5, -1.5, -0.5, 0, 0.5, 1, 1.5, 2, 3, 4],
}


def study_prompts(word: str) -> list[str]:
    """precalculate_cossims.py:41-46: the word (empty for <blank>) in every template, double spaces collapsed."""
    return [t.format(attribute="" if word == "<blank>" else word).replace("  ", " ") for t in TEMPLATES]


def study_cossims(meta: pd.DataFrame, vectors: dict[str, np.ndarray], words: list[str]) -> pd.DataFrame:
    """precalculate_cossims.py:70-81: per image and word, torch's cosine_similarity with each of the word's four
    prompts, averaged over the prompts; columns cossim_<word> added to the meta frame."""

    def cosine(a, b):
        return float(a @ b / max(np.linalg.norm(a) * np.linalg.norm(b), 1e-8))

    out = meta.copy()
    for w in words:
        texts = [vectors[p] for p in study_prompts(w)]
        out[f"cossim_{w}"] = [np.mean([cosine(vectors[k], t) for t in texts]) for k in meta["img_path"]]
    return out


def study_causalface_meta(subset: str, seeds) -> pd.DataFrame:
    """datasets/causalface.py:75-111: seeds (the disk's order; here the given one), races asian, black, white,
    genders female, male, levels as listed; img_path relative to the dataset root."""
    rows = []
    for seed in seeds:
        for race in ("asian", "black", "white"):
            for gender in ("female", "male"):
                for val in VALUES[subset]:
                    path = f"final_picked_{subset}/seed_{seed}/{race}_{gender}_{ABBR[subset]}_{val}{SUFFIX[subset]}.png"
                    rows.append({"img_path": path, "seed": seed, "race": race, "gender": gender, subset: val})
    return pd.DataFrame(rows)


def aggregate(df: pd.DataFrame) -> pd.DataFrame:
    """_causalface_results_loading_utils.py:37-73: each scale = the mean raw cosine over its words."""
    out = df.copy()
    for col, (_, words) in SCALES.items():
        out[col] = df[[f"cossim_{w}" for w in words]].mean(axis=1)
    return out


def study_pairs(df: pd.DataFrame, n: int = 1000):
    """fig_2.py:13, :49-106: the pairs of every dimension from the global legacy generator seeded with 42, drawn
    with pandas' DataFrame.sample(); the Delta columns are the scale columns minus <blank> (fig_2.py:40-42)."""
    delta = df.copy()
    for col in SCALES:
        delta[col] = delta[col] - delta["cossim_<blank>"]
    saved = np.random.get_state()
    np.random.seed(42)
    try:
        out = []
        for by in ("lighting", "pose", "smiling", "seed", "age", "gender", "race"):
            if by == "seed":
                must = ["race", "gender", "age", "lighting", "pose", "smiling"]
            elif by == "race":
                must = ["seed", "gender", "age", "lighting", "pose", "smiling"]
            elif by == "gender":
                must = ["seed", "race", "age", "lighting", "pose", "smiling"]
            else:
                must = ["seed", "race", "gender"]
            subset = delta.dropna(subset=by)
            for _ in range(n):
                first = subset.sample()
                keep = subset[by] != first[by].values[0]
                for col in must:  # equal, or both missing (the study's query string)
                    v = first[col].values[0]
                    keep &= subset[col].isna() if isinstance(v, float) and np.isnan(v) else subset[col] == v
                matching = subset[keep]
                if by in ("age", "smiling"):  # MIN_AGE_DISTANCE, MIN_SMILING_DISTANCE = 1.1 (fig_2.py:16-17)
                    matching = matching[abs(matching[by] - first[by].values[0]) > 1.1]
                second = matching.sample()
                row = {c: abs(first[c].values[0] - second[c].values[0]) for c in SCALES}
                out.append(
                    {"changed_dim": by, "a": first["img_path"].values[0], "b": second["img_path"].values[0], **row}
                )
        return pd.DataFrame(out)
    finally:
        np.random.set_state(saved)


def study_mannwhitney(pairs: pd.DataFrame) -> dict:
    """fig_2.py:157-190: every scale's changes pooled per dimension; two-sided Mann-Whitney U for i < j."""
    long = pairs.melt(id_vars="changed_dim", value_vars=list(SCALES), value_name="v")
    cats = list(long["changed_dim"].unique())
    out = {}
    for i, a in enumerate(cats):
        for b in cats[i + 1 :]:
            res = stats.mannwhitneyu(
                long.loc[long.changed_dim == a, "v"], long.loc[long.changed_dim == b, "v"], alternative="two-sided"
            )
            out[(a, b)] = (res.statistic, res.pvalue)
    return out


def study_markedness(df: pd.DataFrame, columns: list[str], category: str) -> dict:
    """tab_S3.py:25-39: among images whose label equals the word, the percentage with cossim_<blank> > cossim_word
    (0 where no image has the label)."""
    out = {}
    for col in columns:
        name = col.split("_")[1]
        sel = df[df[category] == name]
        out[name] = 100 * (sel["cossim_<blank>"] > sel[col]).sum() / len(sel) if len(sel) else 0
    return out


def study_ndkl(df: pd.DataFrame, words: list[str], attribute: str, target: dict) -> float:
    """tab_S3_ndkl_gen.py:72-94: rank by the mean raw cosine of the words, NDKL over the whole ranking."""
    df = df.assign(avg=df[[f"cossim_{w}" for w in words]].mean(axis=1))
    ranked = df.sort_values(by="avg", ascending=False)
    z = np.sum(1 / np.log2(np.arange(1, len(ranked) + 1) + 1))
    counts = pd.get_dummies(ranked[attribute]).cumsum()
    fracs = counts.div(counts.sum(axis=1), axis=0)
    with np.errstate(divide="ignore", invalid="ignore"):  # 0 log 0 -> NaN -> 0 (the study silences the warnings)
        kld = sum((fracs[g] * np.log(fracs[g] / q)).fillna(0.0) for g, q in target.items())
    return float(((1 / np.log2(np.arange(1, len(kld) + 1) + 1)) * kld).sum() / z)


def study_skew(df: pd.DataFrame, words: list[str], attribute: str, k: int, target: dict) -> dict:
    """tab_S3_skew_gen.py:74-89: the top k by the mean raw cosine; skew = ln(share / target) per category."""
    top = df.assign(avg=df[[f"cossim_{w}" for w in words]].mean(axis=1)).nlargest(k, "avg")
    shares = top[attribute].value_counts(normalize=True)
    with np.errstate(divide="ignore"):
        return {g: float(np.log(shares.get(g, 0) / q)) for g, q in target.items()}


def study_skew_tables(df: pd.DataFrame, k: int) -> dict:
    """tab_S3_2.py:9-25: NDKL, each category's skew and MaxSkew (max over categories) averaged over the 8 scales."""
    targets = {"race": {"asian": 1 / 3, "white": 1 / 3, "black": 1 / 3}, "gender": {"male": 0.5, "female": 0.5}}
    out = {}
    for attribute, target in targets.items():
        nd = [study_ndkl(df, w, attribute, target) for _, w in SCALES.values()]
        sk = [study_skew(df, w, attribute, k, target) for _, w in SCALES.values()]
        out[attribute] = {
            "ndkl": np.mean(nd),
            "max_skew": np.mean([max(s.values()) for s in sk]),
            "skew": {g: np.mean([s[g] for s in sk]) for g in target},
            "per_scale": {name: (n, max(s.values())) for (name, _), n, s in zip(SCALES.values(), nd, sk)},
        }
    return out


def study_level_correlation(df: pd.DataFrame, attribute_list: list[str], id_var: str):
    """tab_S4.py:9-13 and :16-23: the columns whose name ends with a listed word (of the abc CSV, whose cossim
    columns are Delta here), melted against the level, Pearson r and p. The comprehension lists a column once per
    matching word; melt is given each column once (pandas 3 does that with the duplicated list; see the ledger)."""
    columns = [col for col in df.columns for item in attribute_list if col.endswith(item)]
    columns = list(dict.fromkeys(columns))
    melted = df.melt(id_vars=[id_var], value_vars=columns, value_name="score")
    return stats.pearsonr(melted[id_var], melted["score"])


def study_group_means(df: pd.DataFrame, grouping: str) -> pd.Series:
    """tab_S3.py:127-152: per group, each positive scale's mean (mean over the group's images, then over the
    scale's words), then the mean over the five scales, x 100."""
    parts = [
        df.groupby([grouping])[[f"cossim_{w}" for w in words]].mean().mean(axis=1)
        for words in (WARM, COMP, AGENCY_POS, BELIEF_POS, COMMUNION_POS)
    ]
    return pd.concat(parts, axis=1).mean(axis=1) * 100


def balanced_then_adults(df: pd.DataFrame) -> pd.DataFrame:
    """tab_S3_skew_gen.py:22-39 (the same in tab_S3_ndkl_gen.py:16-33): races with 'Asian' merged and lower-cased,
    white/asian/black kept, per race x gender cell sample(n=min(len // cells, len(cell)), random_state=42), then the
    FairFace children dropped."""
    df = df.copy()
    df["race"] = df["race"].apply(lambda x: "asian" if "Asian" in x else x.lower())
    df["gender"] = df["gender"].str.lower()
    df = df[df["race"].isin(["white", "asian", "black"])]
    m = len(df) // (len(df["race"].unique()) * len(df["gender"].unique()))
    samples = []
    for race in df["race"].unique():
        for gender in df["gender"].unique():
            group = df[(df["race"] == race) & (df["gender"] == gender)]
            samples.append(group.sample(n=min(m, len(group)), random_state=42))
    fair = pd.concat(samples).reset_index(drop=True)
    return fair[~fair.age.isin(["0-2", "3-9", "10-19"])]


# ---------------------------------------------------------------------------------------------------- inputs


def _vocabulary():
    return Vocabulary([load_lexicon("scm"), load_lexicon("abc")], load_control(), load_templates(), "as-written")


def _unit(tag: str) -> float:
    return (zlib.crc32(tag.encode()) % 10_000) / 10_000


def _race_axis(race: str) -> int:
    return CONTROL_AXES.get("asian" if race in ("east_asian", "southeast_asian") else race, 2)


def write_vectors(path: Path, table: pd.DataFrame, social) -> Path:
    """Every prompt of the audit (prompt_vector) and every image: a planted social component, a race and a gender
    component of image-specific strength (so markedness shares lie between 0 and 1), and identity- and
    image-specific jitter (so no two images tie). Stored exactly unit-length (see :func:`exact_unit`), so every
    cosine is exact in float64 for vlbias and the reference alike."""
    prompts = _vocabulary().prompt_set()
    keys, vecs = [], []
    for wi, w in enumerate(prompts.words):
        for ti in range(prompts.n_templates):
            keys.append(prompts.prompts[wi * prompts.n_templates + ti])
            vecs.append(exact_unit(prompt_vector(w, ti), pad=0))
    for row in table.itertuples():
        v = axis(0) + (0.3 + social(row)) * axis(1) + jitter(f"id:{row.identity}", 0.3) + jitter(f"im:{row.key}", 0.1)
        v = v + 0.8 * _unit("r" + row.key) * axis(_race_axis(row.race))
        v = v + 0.8 * _unit("g" + row.key) * axis(CONTROL_AXES[row.gender])
        keys.append(row.key)
        vecs.append(exact_unit(v, pad=1))
    return write_npz(path, keys, np.array(vecs))


def exact_unit(v: np.ndarray, pad: int, bits: int = 16) -> np.ndarray:
    """v scaled to unit length on a grid of 2**-bits, exactly: components k / 2**bits with sum k**2 = 4**bits, made
    up in four padding dimensions (texts pad in the first four, images in the next four, so padding never enters a
    text-image cosine). Float32 holds it exactly, its float64 norm is 1.0, and dot products are exact in float64."""
    scale = 2**bits
    k = np.rint(v / np.linalg.norm(v) * (1 - 1e-3) * scale).astype(np.int64)
    rest = [int(x) for x in _four_squares(scale * scale - int((k * k).sum()))]
    padding = np.zeros(8, dtype=np.int64)
    padding[4 * pad : 4 * pad + 4] = rest
    return np.concatenate([k, padding]) / scale


def _four_squares(n: int) -> tuple[int, int, int, int]:
    """Four integers whose squares sum to n >= 0 (Lagrange: there always are)."""
    from math import isqrt

    for a in range(isqrt(n), -1, -1):
        for b in range(isqrt(n - a * a), -1, -1):
            for c in range(isqrt(n - a * a - b * b), -1, -1):
                d2 = n - a * a - b * b - c * c
                d = isqrt(d2)
                if d * d == d2:
                    return a, b, c, d
    raise AssertionError(n)


def _causal_social(row) -> float:
    s = {"asian": -0.02, "black": 0.0, "white": 0.03}[row.race] + {"female": 0.01, "male": -0.01}[row.gender]
    if row.attribute == "smiling":
        s += 0.01 * row.level * (1.0 if row.race == "white" else 0.5)
    elif row.attribute == "age":
        s += 0.006 * (row.level - 2.4) ** 2 - (0.01 if row.gender == "male" else 0.0) * row.level
    elif row.attribute == "lighting":
        s += 0.002 * row.level
    elif row.attribute == "pose":
        s += 0.003 * abs(row.level)
    return s


FF_RACES = ["White", "Black", "Latino_Hispanic", "East Asian", "Southeast Asian", "Indian", "Middle Eastern"]
FF_AGES = ["0-2", "3-9", "10-19", "20-29", "30-39", "40-49", "50-59", "60-69", "more than 70"]


def write_fairface_train(root: Path, n: int = 300) -> Path:
    """FairFace's train labels and margin-0.25 images, races, genders and ages drawn at random (seeded)."""
    rng = np.random.default_rng(7)
    rows = [
        [
            f"train/{i}.jpg",
            FF_AGES[rng.integers(9)],
            ["Male", "Female"][rng.integers(2)],
            FF_RACES[rng.integers(7)],
            "False",
        ]
        for i in range(1, n + 1)
    ]
    root.mkdir(parents=True, exist_ok=True)
    with open(root / "fairface_label_train.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["file", "age", "gender", "race", "service_test"])
        w.writerows(rows)
    for i, row in enumerate(rows):
        write_image(root / "fairface-img-margin025-trainval" / row[0], 5000 + i, size=(8, 8))
    return root


def _fairface_social(row) -> float:
    age = {"0-2": 0, "3-9": 1, "10-19": 2}.get(row.age_group, 3)
    return {"white": 0.03, "black": -0.01}.get(row.race, 0.0) + 0.004 * age + (0.01 if row.gender == "male" else 0)


def _load_vectors(path: Path) -> dict[str, np.ndarray]:
    with np.load(path) as z:
        return {str(k): v.astype(np.float64) for k, v in zip(z["keys"], z["vectors"])}


# ---------------------------------------------------------------------------------------------------- CausalFace


@pytest.fixture(scope="module")
def causal(tmp_path_factory):
    root = write_causalface(tmp_path_factory.mktemp("cf"), seeds=SEEDS, size=64)
    table = load_dataset(f"causalface:{root}", smiling_corrected="only").table
    vec = write_vectors(tmp_path_factory.mktemp("cfv") / "v.npz", table, _causal_social)
    res = AUDIT.run(
        load_model(f"vectors:{vec}"), {"preset": "hausladen2025", "dataset": f"causalface:{root}", "k": 50, **FAST}
    )
    vectors = _load_vectors(vec)
    words = CONTROL + list(dict.fromkeys(WARM + COMP + ABC))
    subsets = {s: aggregate(study_cossims(study_causalface_meta(s, SEEDS), vectors, words)) for s in VALUES}
    return res, subsets


def test_preset_resolves_to_the_studys_options(causal):
    res, _ = causal
    o = res.record.options
    assert o["preset"] == "hausladen2025" and o["seed"] == 42 and o["pair_sampler"] == "hausladen2025"
    assert o["dataset_options"]["smiling_corrected"] == "only" and o["k"] == 50  # the loader's, and an override
    assert PerceptionOptions.parse(o) == PerceptionOptions.parse(PerceptionOptions.parse(o).to_dict())


def test_scores_equal_the_studys(causal):
    res, subsets = causal
    scores = res.tables["scores"].set_index("key")
    study = pd.concat(subsets.values(), ignore_index=True).set_index("img_path")
    assert set(study.index) == set(scores.index) and len(scores) == 594
    s = scores.loc[study.index]
    np.testing.assert_allclose(s["cos_neutral"], study["cossim_<blank>"], rtol=0, atol=1e-15)
    words = res.tables["word_scores"].pivot(index="key", columns="word", values="score").loc[study.index]
    for w in words_of_all():
        np.testing.assert_allclose(words[w] / 100, study[f"cossim_{w}"] - study["cossim_<blank>"], rtol=0, atol=1e-15)
    for col, (name, _) in SCALES.items():
        np.testing.assert_allclose(s[column_name(name)] / 100, study[col] - study["cossim_<blank>"], rtol=0, atol=1e-15)


def words_of_all() -> list[str]:
    return [w for w in CONTROL[1:]] + list(dict.fromkeys(WARM + COMP + ABC))


def test_level_curves_equal_the_studys(causal):
    res, subsets = causal
    means = res.tables["level_means"]
    fits = res.tables["curve_fits"]
    # fig_5.py:84-112: per image each scale's Delta x 100 (mean over its words), mean per gender x race x age,
    # and np.polyfit(age, value, 2) per gender x race (fig_5.py:132-135)
    age = subsets["age"].copy()
    for name, words in SCALES.values():
        age[name] = (age[[f"cossim_{w}" for w in words]].sub(age["cossim_<blank>"], axis=0) * 100).mean(axis=1)
    age["group"] = age["race"] + " " + age["gender"]
    worst_mean = worst_fit = 0.0
    for (group, level), g in age.groupby(["group", "age"]):
        mine = means[(means.attribute == "age") & (means.group == group) & np.isclose(means.level, level)]
        for _, (name, _) in SCALES.items():
            worst_mean = max(worst_mean, abs(float(mine.loc[mine.scale == name, "mean"].iloc[0]) - g[name].mean()))
    for group, g in age.groupby("group"):
        for _, (name, _) in SCALES.items():
            b2, b1, b0 = np.polyfit(g["age"], g[name], 2)
            mine = fits[(fits.attribute == "age") & (fits.group == group) & (fits.scale == name)].iloc[0]
            worst_fit = max(worst_fit, abs(mine.b0 - b0), abs(mine.b1 - b1), abs(mine.b2 - b2))
    assert worst_mean < 1e-12 and worst_fit < 1e-12
    # fig_s1.py:23-32, :102-103: per smiling level the mean over images of each scale (raw x 100) minus the mean
    # neutral cosine x 100; vlbias's group means average to it (every group has every level once per identity)
    sm = subsets["smiling"]
    for name, words in SCALES.values():
        curve = (sm[[f"cossim_{w}" for w in words]].mean(axis=1) * 100).groupby(sm["smiling"]).mean()
        curve -= sm.groupby("smiling")["cossim_<blank>"].mean() * 100
        mine = means[(means.attribute == "smiling") & (means.scale == name)].groupby("level")["mean"].mean()
        np.testing.assert_allclose(mine.to_numpy(), curve.to_numpy(), rtol=0, atol=1e-12)


def test_factor_pairs_and_tests_equal_the_studys_sampler(causal):
    """Given the same row order (seeds by number here; the study's disk order is not released) the preset draws
    the study's 7000 pairs, and the pooled Mann-Whitney tests agree."""
    res, subsets = causal
    frame = pd.concat([subsets[s] for s in ("age", "lighting", "pose", "smiling")]).reset_index(drop=True)
    study = study_pairs(frame)
    pairs = res.tables["factor_pairs"]
    pairs = pairs[pairs["scale"] == "warm"]
    names = {"seed": "identity"}
    for dim, g in study.groupby("changed_dim", sort=False):
        mine = pairs[pairs["dimension"] == names.get(dim, dim)]
        assert mine["key_a"].tolist() == g["a"].tolist() and mine["key_b"].tolist() == g["b"].tolist(), dim
    tests = res.tables["factor_tests"]
    tests = tests[tests["scale"] == "all scales"]
    expected = study_mannwhitney(study)
    assert len(tests) == len(expected) == 21
    for (a, b), (u, p) in expected.items():
        row = tests[(tests.dimension_a == names.get(a, a)) & (tests.dimension_b == names.get(b, b))].iloc[0]
        assert row.u == u and row.p == p


def test_markedness_skew_ndkl_and_means_on_the_age_folder_equal_the_studys(causal):
    res, subsets = causal
    age = subsets["age"]
    mk = res.tables["markedness"]
    for column, words in (
        ("race", ["cossim_white", "cossim_black", "cossim_asian"]),
        ("gender", ["cossim_male", "cossim_female"]),
    ):
        expected = study_markedness(age, words, column)
        mine = mk[(mk.dimension == column) & (mk.grouping == column)].set_index("group")["neutral_closer_pct"]
        assert set(mine.index) == set(expected)
        for g, pct in expected.items():
            assert mine[g] == pytest.approx(pct, abs=1e-12)  # percent, as the study
        assert 0 < min(expected.values()) and max(expected.values()) < 100  # not a trivial case
    _check_skew(res, age, k=50, n=180)
    gm = res.tables["group_means"]
    for grouping in ("race", "gender"):
        expected = study_group_means(age, grouping)
        mine = gm[(gm.grouping == grouping) & (gm.scale == "positive scales")].set_index("group")["mean_cos"]
        np.testing.assert_allclose(mine.loc[expected.index].to_numpy(), expected.to_numpy(), rtol=0, atol=1e-12)


def _check_skew(res, df: pd.DataFrame, k: int, n: int) -> None:
    expected = study_skew_tables(df, k)
    skew, means = res.tables["skew"], res.tables["skew_scales"]
    for attribute, e in expected.items():
        rows = skew[(skew.grouping == attribute) & (skew.kind == "scale")].set_index("ranking")
        assert (rows["ndkl_depth"] == n).all() and (rows["k"] == k).all()
        for _, (name, _) in SCALES.items():
            nd, ms = e["per_scale"][name]
            assert rows.loc[name, "ndkl"] == pytest.approx(nd, abs=1e-12) and rows.loc[
                name, "max_skew"
            ] == pytest.approx(ms, abs=1e-12)
        m = means[means.grouping == attribute]
        assert m.loc[m.statistic == "ndkl", "mean_over_scales"].iloc[0] == pytest.approx(e["ndkl"], abs=1e-12)
        assert m.loc[m.statistic == "max_skew", "mean_over_scales"].iloc[0] == pytest.approx(e["max_skew"], abs=1e-12)
        for g, v in e["skew"].items():
            assert m.loc[(m.statistic == "skew") & (m.group == g), "mean_over_scales"].iloc[0] == pytest.approx(
                v, abs=1e-12
            )


def test_level_correlations_equal_table_s4_quirks_included(causal):
    res, subsets = causal
    lc = res.tables["level_correlations"]
    lc = lc[lc["kind"] == "study list"]
    all8 = AGENCY_POS + BELIEF_POS + COMMUNION_POS + WARM + COMP + AGENCY_NEG + BELIEF_NEG + COMMUNION_NEG
    settings = {  # tab_S4.py:33-56
        ("lighting", "all scales"): ("lighting", None, all8),
        ("pose < 0", "all scales"): ("pose", "<", all8),
        ("pose > 0", "all scales"): ("pose", ">", all8),
        ("smiling", "smiling+/progressive"): ("smiling", None, AGENCY_POS + BELIEF_POS + COMMUNION_POS + WARM + COMP),
        ("smiling", "smiling-"): ("smiling", None, AGENCY_NEG + COMMUNION_NEG),
        ("smiling", "smiling conservative"): ("smiling", None, BELIEF_NEG),
    }
    assert len(lc) == len(settings)
    for (setting, listed), (attr, side, words) in settings.items():
        df = subsets[attr]
        abc = df[[attr] + [f"cossim_{w}" for w in ABC]].copy()  # the abc CSV's columns
        abc[[f"cossim_{w}" for w in ABC]] = abc[[f"cossim_{w}" for w in ABC]].sub(df["cossim_<blank>"], axis=0)
        if side == "<":
            abc = abc[abc[attr] < 0]
        elif side == ">":
            abc = abc[abc[attr] > 0]
        r, p = study_level_correlation(abc, words, attr)
        row = lc[(lc.setting == setting) & (lc.words_of == listed)].iloc[0]
        assert row.r == pytest.approx(r, abs=1e-12) and row.p == pytest.approx(p, rel=1e-12, abs=1e-300)
    plus = lc[lc.words_of == "smiling+/progressive"].iloc[0]
    assert plus.n_words == 19 and {"untrustworthy", "dishonest", "unfriendly"} <= set(plus.words.split(", "))


# ---------------------------------------------------------------------------------------------------- FairFace


@pytest.fixture(scope="module")
def fairface(tmp_path_factory):
    root = write_fairface_train(tmp_path_factory.mktemp("ff"))
    table = load_dataset(f"fairface:{root}", split="train").table
    vec = write_vectors(tmp_path_factory.mktemp("ffv") / "v.npz", table, _fairface_social)
    res = AUDIT.run(
        load_model(f"vectors:{vec}"), {"preset": "hausladen2025", "dataset": f"fairface:{root}", "k": 30, **FAST}
    )
    # datasets/fairface.py:15-24: the train labels in file order, images under fairface-img-margin025-trainval/
    meta = pd.read_csv(root / "fairface_label_train.csv")
    meta["img_path"] = "fairface-img-margin025-trainval/" + meta["file"]
    words = CONTROL + list(dict.fromkeys(WARM + COMP + ABC))
    return res, study_cossims(meta, _load_vectors(vec), words)


def test_fairface_markedness_and_means_equal_the_studys(fairface):
    res, df = fairface
    assert res.record.options["dataset_options"]["split"] == "train"  # the preset's loader option
    # tab_S3.py:13-18: East and Southeast Asian -> Asian, three races, adults, race lower-cased
    ff = df.copy()
    ff.loc[ff["race"].isin(["East Asian", "Southeast Asian"]), "race"] = "Asian"
    ff = ff[ff["race"].isin(["White", "Asian", "Black"])]
    ff = ff[~ff.age.isin(["0-2", "3-9", "10-19"])]
    ff["race"] = ff["race"].str.lower()
    mk = res.tables["markedness"]
    race = study_markedness(ff, ["cossim_white", "cossim_black", "cossim_asian"], "race")
    mine = mk[(mk.dimension == "race") & (mk.grouping == "race")].set_index("group")["neutral_closer_pct"]
    for g, pct in race.items():
        assert mine[g] == pytest.approx(pct, abs=1e-12)  # percent, as the study
    # the study's gender rows are 0: its labels are Male/Female (tab_S3.py:29-36); vlbias computes them (ledger)
    assert study_markedness(ff, ["cossim_male", "cossim_female"], "gender") == {"male": 0, "female": 0}
    gender = study_markedness(ff.assign(gender=ff["gender"].str.lower()), ["cossim_male", "cossim_female"], "gender")
    mine = mk[(mk.dimension == "gender") & (mk.grouping == "gender")].set_index("group")["neutral_closer_pct"]
    for g, pct in gender.items():
        assert mine[g] == pytest.approx(pct, abs=1e-12) and 0 < pct < 100
    # tab_S3.py:76-106: 'Asian' in the label -> asian, lower-cased, races and genders of CausalFace, adults
    means = df.copy()
    means["race"] = means["race"].apply(lambda x: "Asian" if "Asian" in x else x).str.lower()
    means["gender"] = means["gender"].str.lower()
    means = means[means["race"].isin(["asian", "black", "white"]) & ~means.age.isin(["0-2", "3-9", "10-19"])]
    gm = res.tables["group_means"]
    for grouping in ("race", "gender"):
        expected = study_group_means(means, grouping)
        mine = gm[(gm.grouping == grouping) & (gm.scale == "positive scales")].set_index("group")["mean_cos"]
        np.testing.assert_allclose(mine.loc[expected.index].to_numpy(), expected.to_numpy(), rtol=0, atol=1e-12)


def test_fairface_skew_ndkl_on_the_balanced_then_adult_set(fairface):
    res, df = fairface
    fair = balanced_then_adults(df)
    assert fair["race"].value_counts().nunique() > 1  # balanced before the adult filter only: not equal after
    _check_skew(res, fair, k=30, n=len(fair))


# ---------------------------------------------------------------------------------------------------- the options


def test_preset_loader_options_apply_to_their_loader_only(tmp_path):
    """The preset names FairFace's train split and CausalFace's corrected-only smiling files; options given beside
    it win, other loaders are untouched, and the canonical form parses back to the same options."""
    ff = PerceptionOptions.parse({"preset": "hausladen2025", "dataset": f"fairface:{tmp_path}"})
    assert ff.dataset.options.split == "train" and dict(ff.dataset_options)["margin"] == "0.25"
    assert PerceptionOptions.parse(ff.to_dict()) == ff
    val = PerceptionOptions.parse(
        {"preset": "hausladen2025", "dataset": f"fairface:{tmp_path}", "dataset_options": {"split": "val"}}
    )
    assert val.dataset.options.split == "val" and PerceptionOptions.parse(val.to_dict()) == val
    cf = PerceptionOptions.parse({"preset": "hausladen2025", "dataset": f"causalface:{tmp_path}"})
    assert cf.dataset.options.smiling_corrected == "only"
    utk = PerceptionOptions.parse({"preset": "hausladen2025", "dataset": f"utkface:{tmp_path}"})
    assert utk.dataset_options == PerceptionOptions.parse({"dataset": f"utkface:{tmp_path}"}).dataset_options
    assert PerceptionOptions.parse({"dataset": f"fairface:{tmp_path}"}).dataset.options.split == "val"


def test_the_studys_sampler_stops_where_the_study_stops():
    """A first image without a partner: the study's code fails (pandas samples from an empty frame); so does the
    preset, naming the image."""
    from vlbias.errors import VlbiasError
    from vlbias.stats import perception as sp

    design = pd.DataFrame({"identity": ["a", "a", "b"], "race": ["x", "x", "x"], "gender": "f", "age": [1.0, 3.0, 1.0]})
    with pytest.raises(VlbiasError, match="drew img2 for age, and no image differs from it in age alone"):
        sp.sample_pairs_hausladen2025(
            design, [("age", ["identity", "race", "gender"], 1.1)], 50, 42, keys=["img0", "img1", "img2"]
        )


def test_min_age_keeps_years_or_the_bins_lower_edge():
    """The study keeps UTKFace's age > 19 and FairFace's bins from 20-29 up (tab_S3.py:10, :17)."""
    from vlbias.audits.perception.run import _adults

    table = pd.DataFrame(
        {
            "age": [19.0, 20.0, np.nan, np.nan, np.nan, np.nan, np.nan],
            "age_group": ["10-19", "20-29", "10-19", "20-29", "more than 70", "3-9", ""],
        }
    )
    notes: list = []
    assert _adults(table, 20, False, notes).tolist() == [False, True, False, True, True, False, False]
    assert notes[0]["item"] == "4 images younger than 20 or of unknown age"
    assert _adults(table, None, False, []).all() and _adults(table, 20, True, []).all()  # CausalFace: levels
