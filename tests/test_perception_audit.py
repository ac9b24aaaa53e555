"""The perception audit end to end on exact embeddings (vectors:): Delta scores, planted effects, every analysis."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tests.perception_fixtures import face_image, planted_vectors, write_causalface, write_npz
from vlbias.audits.perception import AUDIT
from vlbias.audits.registry import get_audit
from vlbias.datasets import FaceDataset, load_dataset
from vlbias.errors import MissingKeysError, ModalityError, VlbiasError
from vlbias.models import load_model
from vlbias.stimuli.perception import Vocabulary, load_control, load_lexicon, load_templates

FAST = {"n_bootstrap": 50, "n_random_rankings": 50}


@pytest.fixture(scope="module")
def causalface(tmp_path_factory) -> Path:
    return write_causalface(tmp_path_factory.mktemp("causalface"), seeds=(101, 202, 303))


def _prompts(article="as-written"):
    v = Vocabulary([load_lexicon("scm"), load_lexicon("abc")], load_control(), load_templates(), article)
    return v.prompt_set()


# ---------------------------------------------------------------------------------------------------- exact case


@pytest.fixture
def four_faces(tmp_path):
    """Four images, a two-word scale, two templates, and hand-set unit vectors (see the test for the numbers)."""
    root = tmp_path / "faces"
    root.mkdir()
    people = [
        ("a.png", "white", "female"),
        ("b.png", "white", "male"),
        ("c.png", "black", "female"),
        ("d.png", "black", "male"),
    ]
    for name, *_ in people:
        face_image(name, 64).save(root / name)
    table = pd.DataFrame(
        {
            "path": [str(root / p[0]) for p in people],
            "key": [p[0] for p in people],
            "identity": ["p1", "p2", "p3", "p4"],
            "race": [p[1] for p in people],
            "race_label": [p[1].title() for p in people],
            "gender": [p[2] for p in people],
            "age": np.nan,
            "age_group": "",
        }
    )
    (tmp_path / "lex.yaml").write_text("name: toy\nscales:\n  s: [alpha, beta]\n", encoding="utf-8")
    (tmp_path / "tpl.txt").write_text("a photo of a {w} person.\na {w} person.\n", encoding="utf-8")
    (tmp_path / "ctrl.yaml").write_text(
        "neutral: ''\nwords:\n  white: {race: [white]}\n  black: {race: [black]}\n", encoding="utf-8"
    )
    e = np.eye(4)
    vec = {
        "a photo of a person.": e[0],
        "a person.": (e[0] + e[1]) / math.sqrt(2),
        "a photo of a alpha person.": e[1],
        "a alpha person.": e[2],
        "a photo of a beta person.": e[0],
        "a beta person.": e[3],
        "a photo of a white person.": e[2],
        "a white person.": e[2],
        "a photo of a black person.": e[3],
        "a black person.": e[3],
        "a.png": [0.6, 0.8, 0, 0],
        "b.png": [0.6, 0, 0.8, 0],
        "c.png": [0, 0.6, 0, 0.8],
        "d.png": [0.6, 0, 0, 0.8],
    }
    path = write_npz(tmp_path / "vec.npz", list(vec), np.array([np.asarray(v, float) for v in vec.values()]))
    ds = FaceDataset(name="toy", root=root, table=table)
    opts = {
        "dataset": ds,
        "lexicons": [str(tmp_path / "lex.yaml")],
        "templates": str(tmp_path / "tpl.txt"),
        "control": str(tmp_path / "ctrl.yaml"),
        "k": 2,
        **FAST,
    }
    return load_model(f"vectors:{path}"), opts


def test_delta_is_the_mean_of_template_similarities(four_faces):
    enc, opts = four_faces
    res = AUDIT.run(enc, opts)
    s = res.tables["scores"].set_index("key")
    s = s.join(res.tables["word_scores"].pivot(index="key", columns="word", values="score").add_prefix("word_"))
    r2 = math.sqrt(2)
    neutral = {
        "a.png": (0.6 + 1.4 / r2) / 2,
        "b.png": (0.6 + 0.6 / r2) / 2,
        "c.png": (0.6 / r2) / 2,
        "d.png": (0.6 + 0.6 / r2) / 2,
    }
    alpha = {"a.png": 0.4, "b.png": 0.4, "c.png": 0.3, "d.png": 0.0}  # mean(v.e1, v.e2)
    beta = {"a.png": 0.3, "b.png": 0.3, "c.png": 0.4, "d.png": 0.7}  # mean(v.e0, v.e3)
    for k in neutral:
        assert s.loc[k, "cos_neutral"] == pytest.approx(neutral[k], abs=1e-6)
        assert s.loc[k, "word_alpha"] == pytest.approx(100 * (alpha[k] - neutral[k]), abs=1e-4)
        assert s.loc[k, "s"] == pytest.approx(100 * ((alpha[k] + beta[k]) / 2 - neutral[k]), abs=1e-4)
    # an average of embeddings would give cos(a, (e1 + e2)/sqrt 2) = 0.8/sqrt 2, not 0.4
    assert s.loc["a.png", "word_alpha"] != pytest.approx(100 * (0.8 / r2 - neutral["a.png"]), abs=1)
    rel = AUDIT.run(enc, {**opts, "delta": "relative"}).tables["word_scores"].set_index(["key", "word"])["score"]
    assert rel.loc[("a.png", "alpha")] == pytest.approx(100 * (0.4 - neutral["a.png"]) / neutral["a.png"], abs=1e-4)


def test_markedness_and_skew_exact(four_faces):
    enc, opts = four_faces
    res = AUDIT.run(enc, opts)
    mk = res.tables["markedness"]
    race = mk[(mk["dimension"] == "race") & (mk["grouping"] == "race")].set_index("group")
    # white: a (white 0 < neutral 0.79) is unmarked, b (white 0.8 > neutral 0.51) is marked; black: both marked
    # every share is a percentage named so (as zero-shot's top1_pct)
    assert race.loc["white", "neutral_closer_pct"] == 50.0 and race.loc["black", "neutral_closer_pct"] == 0.0
    assert race.loc["white", "word"] == "white" and race.loc["white", "n"] == 2
    margin_a = 100 * ((0.6 + 1.4 / math.sqrt(2)) / 2 - 0.0)
    margin_b = 100 * ((0.6 + 0.6 / math.sqrt(2)) / 2 - 0.8)
    assert race.loc["white", "margin_neutral_minus_own"] == pytest.approx((margin_a + margin_b) / 2, abs=1e-4)
    assert "gender" not in set(mk["dimension"])  # these control words name no gender
    sk = res.tables["skew"]
    white = sk[(sk["grouping"] == "race") & (sk["ranking"] == "white")].iloc[0]
    # ranked by cos(., white prompts) = b 0.8, then a, c, d at 0 (ties keep input order): top 2 = b, a
    assert white.k == 2 and white.max_skew == pytest.approx(math.log(2)) and white.max_skew_group == "white"
    assert white.ndkl == pytest.approx(math.log(2)) and white.min_skew == -np.inf
    notes = set(res.skipped["item"])
    assert {"analysis factors", "analysis curves"} <= notes  # observational data, no age: noted, not run
    assert "variance_shares" in res.tables  # race and gender vary


def test_results_table_is_stamped_and_written(four_faces, tmp_path):
    enc, opts = four_faces
    res = AUDIT.run(enc, opts)
    out = res.write(tmp_path / "out")
    back = pd.read_parquet(out / "results.parquet")
    assert {"model", "model_identity", "config_hash", "analysis", "metric", "value"} <= set(back.columns)
    assert set(back["analysis"]) == {"regression", "markedness", "skew", "group_means"}
    plain = AUDIT.run(enc, {**opts, "n_bootstrap": 0, "n_random_rankings": 0}).tables["results"]
    assert plain["ci_low"].isna().all() and plain["p"].isna().all() and plain["value"].notna().all()
    assert res.record.options["dataset"] == "toy:" + str(opts["dataset"].root)
    assert [(s["kind"], s["name"]) for s in res.record.stimuli][:2] == [("dataset", "toy"), ("lexicon", "toy")]
    assert res.record.stimuli[0]["sha256"] == opts["dataset"].fingerprint()  # the dataset's, not the model's keys


# ---------------------------------------------------------------------------------------------------- planted effects


def _planted(causalface, tmp_path, plant):
    ds = load_dataset(f"causalface:{causalface}")
    path = planted_vectors(tmp_path / "planted.npz", ds.table, _prompts(), plant)
    return load_model(f"vectors:{path}"), ds


def _smiling(row):
    s = {"smiling": 0.06 * row.level, "age": 0.01 * row.level, "lighting": 0.004 * row.level}.get(row.attribute, 0)
    s += {"asian": 0.0, "black": 0.004, "white": -0.002}[row.race] + 0.002 * (row.gender == "female")
    if row.race == "white" and row.gender == "male" and row.attribute == "smiling":
        s += 0.01 * (row.level - 1) ** 2  # a planted curvature for one group
    return s


def _race(row):
    s = {"smiling": 0.004 * row.level, "age": 0.004 * row.level, "lighting": 0.002 * row.level}.get(row.attribute, 0)
    return s + {"asian": -0.15, "black": 0.0, "white": 0.15}[row.race]


@pytest.mark.parametrize(("planted", "plant"), [("smiling", _smiling), ("race", _race)])
def test_the_planted_attribute_ranks_first(causalface, tmp_path, planted, plant):
    enc, ds = _planted(causalface, tmp_path, plant)
    res = AUDIT.run(enc, {"dataset": f"causalface:{causalface}", "pairs": 400, **FAST})
    fe = res.tables["factor_effects"]
    firsts = fe[fe["rank"] == 1]
    assert set(firsts["dimension"]) == {planted} and len(firsts) == 9  # every scale and all scales pooled
    vs = res.tables["variance_shares"]
    assert set(vs.loc[vs["rank"] == 1, "attribute"]) == {planted} and vs["scale"].nunique() == 8
    assert set(vs["attribute"]) == {"identity", "race", "gender", "age", "lighting", "pose", "smiling"}
    top = vs[vs["rank"] == 1]
    assert (top["share_pct_ci_low"] > 50).all() and (vs["share_pct"] <= 100).all()
    tests = res.tables["factor_tests"]
    vs_planted = tests[
        (tests["scale"] == "all scales") & ((tests["dimension_a"] == planted) | (tests["dimension_b"] == planted))
    ]
    assert len(vs_planted) == 6 and (vs_planted["p_holm"] < 1e-6).all()
    results = res.tables["results"]
    assert set(results.loc[(results["analysis"] == "factors") & (results["rank"] == 1), "item"]) == {planted}
    if planted == "smiling":
        ex = res.tables["extreme_groups"]
        top_smiling = ex[(ex["attribute"] == "smiling") & (ex["rank"] == 1)]
        assert set(top_smiling["group"]) == {"white male"} and (top_smiling["p_most_extreme"] > 0.9).all()
        fits = res.tables["curve_fits"]
        wm = fits[(fits["attribute"] == "smiling") & (fits["group"] == "white male")]
        assert (wm["shape"] == "U").all()


def test_pairs_follow_the_studys_rules(causalface, tmp_path):
    enc, ds = _planted(causalface, tmp_path, _smiling)
    res = AUDIT.run(enc, {"dataset": f"causalface:{causalface}", "pairs": 300, "analyses": "factors", **FAST})
    pairs = res.tables["factor_pairs"]
    pairs = pairs[pairs["scale"] == "warm"]
    meta = ds.table.set_index("key")
    a, b = meta.loc[pairs["key_a"]].reset_index(), meta.loc[pairs["key_b"]].reset_index()
    dims = pairs["dimension"].to_numpy()
    assert pairs.groupby("dimension").size().to_dict() == {
        d: 300 for d in ("lighting", "pose", "smiling", "identity", "age", "gender", "race")
    }
    for dim in ("age", "lighting", "pose", "smiling"):
        m = dims == dim
        assert (a.loc[m, "attribute"] == dim).all() and (b.loc[m, "attribute"] == dim).all()
        for col in ("face_seed", "race", "gender"):
            assert (a.loc[m, col].to_numpy() == b.loc[m, col].to_numpy()).all()
        gap = np.abs(a.loc[m, "level"].to_numpy() - b.loc[m, "level"].to_numpy())
        assert (gap > (1.1 if dim in ("age", "smiling") else 0)).all()
    for dim, col in (("identity", "face_seed"), ("race", "race"), ("gender", "gender")):
        m = dims == dim
        assert (a.loc[m, col].to_numpy() != b.loc[m, col].to_numpy()).all()
        same = [c for c in ("face_seed", "race", "gender", "attribute", "level") if c != col]
        for c in same:
            assert (a.loc[m, c].to_numpy() == b.loc[m, c].to_numpy()).all(), (dim, c)
    warm = res.tables["scores"].set_index("key")["warm"]
    np.testing.assert_allclose(
        pairs["abs_change"], np.abs(warm.loc[pairs["key_b"]].to_numpy() - warm.loc[pairs["key_a"]].to_numpy())
    )
    again = AUDIT.run(enc, {"dataset": f"causalface:{causalface}", "pairs": 300, "analyses": "factors", **FAST})
    pd.testing.assert_frame_equal(again.tables["factor_pairs"], res.tables["factor_pairs"])
    other = AUDIT.run(
        enc, {"dataset": f"causalface:{causalface}", "pairs": 300, "analyses": "factors", "seed": 1, **FAST}
    )
    assert not other.tables["factor_pairs"]["key_a"].equals(res.tables["factor_pairs"]["key_a"])
    sampling = res.tables["factor_sampling"].set_index("dimension")
    assert sampling.loc["smiling", "min_level_gap"] == 1.1 and sampling.loc["smiling", "without_partner"] == 0
    # one column, one meaning: seed is the run's random seed in every stamped table; a face's generator seed is
    # face_seed
    scores = other.stamped("scores")
    assert set(scores["seed"]) == {1} and set(scores["face_seed"]) == set(ds.table["face_seed"]) != {1}


# ---------------------------------------------------------------------------------------------------- observational


def _fairface_like(tmp_path, n=240):
    """A face table in the common vocabulary, as the FairFace/UTKFace/CFD loaders produce it."""
    root = tmp_path / "ff"
    root.mkdir()
    rng = np.random.default_rng(0)
    races = ["white", "black", "east_asian", "indian"]
    bins = ["3-9", "20-29", "40-49", "70+"]
    rows = []
    for i in range(n):
        key = f"train/{i}.jpg"
        rows.append(
            {
                "path": str(root / key),
                "key": key,
                "identity": key,
                "race": races[i % 4],
                "race_label": races[i % 4].replace("_", " ").title(),
                "gender": ["female", "male"][(i // 4) % 2],
                "age": np.nan,
                "age_group": bins[rng.integers(4)],
            }
        )
    table = pd.DataFrame(rows)
    (root / "train").mkdir()
    for k in table["key"]:
        face_image(k, 32).save(root / k)
    return FaceDataset(name="fairface", root=root, table=table, version="FairFace 1.25")


def test_observational_dataset_runs_the_same_probe(tmp_path):
    ds = _fairface_like(tmp_path)

    def plant(row):
        return 0.08 * (row.gender == "female") + 0.01 * ["3-9", "20-29", "40-49", "70+"].index(row.age_group)

    path = planted_vectors(tmp_path / "ff.npz", ds.table, _prompts(), plant)
    res = AUDIT.run(load_model(f"vectors:{path}"), {"dataset": ds, "k": 40, **FAST})
    assert "factor_effects" not in res.tables
    assert "analysis factors" in set(res.skipped["item"])
    vs = res.tables["variance_shares"]
    assert set(vs["attribute"]) == {"race", "gender", "age"}  # identity is nested in race and gender: left out
    assert set(vs.loc[vs["rank"] == 1, "attribute"]) == {"gender"}
    means = res.tables["level_means"]
    assert set(means["attribute"]) == {"age"} and set(means["level"]) == {6.0, 24.5, 44.5, 70.0}
    assert set(means["unit"]) == {"years, age-group midpoint"} and means["group"].nunique() == 8
    mk = res.tables["markedness"]
    noted = mk[mk["group"] == "indian"]
    assert len(noted) == 1 and noted["note"].iloc[0] == "no control word names this group"
    assert mk.loc[mk["group"] == "east_asian", "word"].iloc[0] == "asian"
    sk = res.tables["skew"]
    assert set(sk["grouping"]) == {"race", "gender", "race x gender"} and (sk["n_items"] <= 240).all()
    female = sk[(sk["grouping"] == "gender") & (sk["ranking"] == "warm") & (sk["kind"] == "scale")].iloc[0]
    assert female.max_skew_group == "female" and female.max_skew > female.max_skew_null_p95
    assert female.max_skew_p < 0.05 and female.ndkl > female.ndkl_null_p95
    # numeric ages (UTKFace) are binned as FairFace bins them
    ages = np.random.default_rng(1).choice([1, 5, 25, 33, 47, 88], size=240)
    utk = FaceDataset(name="utkface", root=ds.root, table=ds.table.assign(age=ages, age_group=""))
    res = AUDIT.run(load_model(f"vectors:{path}"), {"dataset": utk, "analyses": "regression,curves", "n_bootstrap": 0})
    means = res.tables["level_means"]
    assert set(means["level"]) == {1.0, 6.0, 24.5, 34.5, 44.5, 70.0}
    assert set(means["unit"]) == {"years, FairFace age-bin midpoint"}
    coefs = res.tables["regression_coefficients"]
    assert set(coefs.loc[coefs["attribute"] == "age", "level"]) == {"20-29", "3-9", "30-39", "40-49", "70+"}
    with pytest.raises(VlbiasError, match="analysis 'factors' cannot run on fairface: it needs a controlled dataset"):
        AUDIT.run(load_model(f"vectors:{path}"), {"dataset": ds, "analyses": "factors,skew", **FAST})


def test_races_merge_races_and_min_age_choose_the_analysed_people(tmp_path):
    """The study's people: three races with East Asian merged into asian, adults (bins from 20-29); the scores
    table keeps everyone, every analysis uses the chosen people, and skipped.csv says who was left out."""
    ds = _fairface_like(tmp_path)
    path = planted_vectors(tmp_path / "ff.npz", ds.table, _prompts(), lambda row: 0.0)
    opts = {"races": "white,black,asian", "merge_races": "east_asian=asian", "min_age": 20, "k": 40, **FAST}
    res = AUDIT.run(load_model(f"vectors:{path}"), {"dataset": ds, "analyses": "markedness,skew,group_means", **opts})
    t = ds.table
    kept = t[t["race"].isin(["white", "black", "east_asian"]) & (t["age_group"] != "3-9")]
    assert len(res.tables["scores"]) == 240 and set(res.tables["scores"]["race"]) >= {"east_asian", "indian"}
    mk = res.tables["markedness"]
    n = mk[(mk["dimension"] == "race") & (mk["grouping"] == "race")].set_index("group")["n"]
    expected = kept.assign(race=kept["race"].replace("east_asian", "asian"))["race"].value_counts()
    assert n.to_dict() == expected.to_dict()
    gm = res.tables["group_means"]
    assert set(gm.loc[gm["grouping"] == "race", "group"]) == {"white", "black", "asian"}
    assert gm.loc[gm["grouping"] == "gender", "n"].sum() == len(kept) * 9  # nine scale rows per group
    items = set(res.skipped["item"])
    assert f"{(t['race'] == 'indian').sum()} images of other races (indian)" in items
    assert f"{len(t[t['race'] != 'indian']) - len(kept)} images younger than 20 or of unknown age" in items
    with pytest.raises(VlbiasError, match=r"no image of the races purple \(the dataset has black, east_asian"):
        AUDIT.run(load_model(f"vectors:{path}"), {"dataset": ds, "races": "purple", **FAST})


# ---------------------------------------------------------------------------------------------------- options and errors


def test_grammatical_articles_embed_other_prompts(causalface, tmp_path):
    enc, ds = _planted(causalface, tmp_path, _smiling)
    with pytest.raises(MissingKeysError, match="no vector for 48 prompt.* 'A photo of an asian person.', .*every word"):
        AUDIT.run(enc, {"dataset": f"causalface:{causalface}", "article": "grammatical", "analyses": "skew", **FAST})
    path = planted_vectors(tmp_path / "g.npz", ds.table, _prompts("grammatical"), _smiling)
    res = AUDIT.run(
        load_model(f"vectors:{path}"),
        {"dataset": f"causalface:{causalface}", "article": "grammatical", "analyses": "skew", **FAST},
    )
    assert res.record.stimuli[-1]["article"] == "grammatical"


def test_missing_image_vectors_name_the_images(four_faces, tmp_path):
    enc, opts = four_faces
    (opts["dataset"].root / "e.png").write_bytes((opts["dataset"].root / "a.png").read_bytes())
    table = pd.concat([opts["dataset"].table, opts["dataset"].table.iloc[[0]].assign(key="e.png", identity="p5")])
    table["path"] = [str(opts["dataset"].root / k) for k in table["key"]]
    ds = FaceDataset(name="toy", root=opts["dataset"].root, table=table.reset_index(drop=True))
    with pytest.raises(MissingKeysError, match="no vector for 1 image.*e.png.*skip_bad_images"):
        AUDIT.run(enc, {**opts, "dataset": ds})
    res = AUDIT.run(enc, {**opts, "dataset": ds, "skip_bad_images": True})
    assert len(res.tables["scores"]) == 4 and "e.png" in set(res.skipped["item"])


def test_registry_and_options(four_faces):
    enc, opts = four_faces
    assert get_audit("perception") is AUDIT and AUDIT.modalities == ("text", "image")
    assert all(f.spec.help for f in AUDIT.options.fields())
    with pytest.raises(VlbiasError, match="has no option 'pairz'; did you mean pairs"):
        AUDIT.run(enc, {**opts, "pairz": 3})


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"dataset": None}, "needs a face dataset"),
        ({"pairs": 0}, "pairs=0: must be a whole number ≥ 1"),
        ({"k": 2.5}, "k=2.5: must be a whole number ≥ 1"),
        ({"analyses": "factors,bogus"}, "'bogus' is not one of factors, regression, curves, markedness, skew"),
        ({"delta": "ratio"}, "delta='ratio': must be absolute or relative"),
        ({"confidence": 1.5}, "must be a number > 0 and < 1"),
        ({"min_level_gap": {"age": -1}}, "min_level_gap.age=-1: must be a number ≥ 0"),
        ({"article": "fancy"}, "article='fancy': must be as-written or grammatical"),
        ({"lexicons": ["nope"]}, "lexicon 'nope' is neither a packaged one"),
        ({"dataset": "cfx:/data"}, "unknown dataset 'cfx'"),
    ],
)
def test_bad_options_are_one_line(four_faces, change, message):
    enc, opts = four_faces
    with pytest.raises(VlbiasError) as e:
        AUDIT.run(enc, {**opts, **change})
    assert message in str(e.value) and "\n" not in str(e.value)


def test_relative_delta_needs_a_positive_neutral_similarity(tmp_path, four_faces):
    enc, opts = four_faces
    e = np.eye(4)
    vec = {p: -e[0] for p in ("a photo of a person.", "a person.")}
    vec.update({f"a photo of a {w} person.": e[1] for w in ("alpha", "beta", "white", "black")})
    vec.update({f"a {w} person.": e[1] for w in ("alpha", "beta", "white", "black")})
    vec.update({k: [0.6, 0.8, 0, 0] for k in ("a.png", "b.png", "c.png", "d.png")})
    path = write_npz(tmp_path / "neg.npz", list(vec), np.array([np.asarray(v, float) for v in vec.values()]))
    with pytest.raises(VlbiasError, match="zero or negative for 4 of 4 images .* use delta: absolute"):
        AUDIT.run(load_model(f"vectors:{path}"), {**opts, "delta": "relative"})


def test_a_text_only_model_is_refused_before_any_work(four_faces):
    _, opts = four_faces
    with pytest.raises(ModalityError, match="cannot encode images; choose a vision-language model"):
        AUDIT.run(load_model("st:all-MiniLM-L6-v2"), opts)


def test_readme_names_the_four_neutral_prompts():
    """The neutral similarity is the mean over the four templates without a word (test above); the README says so,
    with the prompts the packaged templates make (it once named "A photo of a person." alone)."""
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")
    section = readme[readme.index("## Social perception of faces") : readme.index("## Model-zoo sweeps")]
    text = " ".join(section.split())
    prompts = _prompts().prompts[:4]  # the neutral word's prompts come first
    assert prompts == ["A photo of a person.", "A person.", "This is a person.", "cropped face photo of a person"]
    assert "the empty word gives the four neutral prompts (" + ", ".join(f'"{p}"' for p in prompts) + ")" in text
    assert 'the neutral prompt "A photo of a person."' not in text


def test_perception_runs_on_a_mitigated_encoder(four_faces, tmp_path):
    """A transform (here: feature 1 imputed with 0.5, both towers) gives the scores of the transformed vectors
    themselves, and every row names the mitigation."""
    from vlbias.mitigation import Mitigated, Transform
    from vlbias.mitigation.base import Impute

    enc, opts = four_faces
    op = Impute(np.array([1]), np.array([0.5]), 4)
    t = Transform("manual", "manual", {}, {"text": op, "image": op}, {}, "f" * 16)
    res = AUDIT.run(Mitigated(enc, t), opts)
    enc.load()
    keys = list(enc._index)
    moved = write_npz(tmp_path / "moved.npz", keys, t.apply(enc._matrix[[enc._index[k] for k in keys]], "text"))
    direct = AUDIT.run(load_model(f"vectors:{moved}"), opts)
    for col in ("cos_neutral", "s"):
        np.testing.assert_allclose(res.tables["scores"][col], direct.tables["scores"][col], rtol=1e-5)
    ws, wd = res.tables["word_scores"], direct.tables["word_scores"]
    assert list(ws["word"]) == list(wd["word"]) and "alpha" in set(ws["word"])
    np.testing.assert_allclose(ws["score"], wd["score"], rtol=1e-5)
    assert not np.allclose(res.tables["scores"]["s"], AUDIT.run(enc, opts).tables["scores"]["s"])
    assert set(res.stamped("scores")["mitigation"]) == {"manual"}
