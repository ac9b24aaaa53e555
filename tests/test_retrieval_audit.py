"""The retrieval audit (``vlbias retrieval``): SocialCounterfactuals' intersectional MaxSkew@K and PATA's caption
association, on releases in their own layouts (tests/benchmark_fixtures.py), each number checked against an
independent computation written from the papers' definitions in this file, with planted effects recovered."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import yaml

from tests.benchmark_fixtures import make_pata, make_socialcounterfactuals
from tests.helpers import tiny_hf_clip, write_parquet_vectors
from vlbias.audits.registry import get_audit
from vlbias.cli import main
from vlbias.datasets import load_dataset
from vlbias.errors import VlbiasError
from vlbias.models import load_model
from vlbias.stats.skew import ranking_skew, resampled_skew
from vlbias.stimuli.retrieval import neutral_caption

AUDIT = get_audit("retrieval")


# ---------------------------------------------------------------------------------------------------- references
def reference_skew(scores, labels, k, target=None):
    """Geyik et al.'s Skew@k, MaxSkew@k and NDKL, from the definitions: rank by score (ties in input order), the
    share of each group in the top k against its intended share (equal, or ``target``)."""
    order = sorted(range(len(scores)), key=lambda i: -scores[i])
    groups = sorted(set(labels))
    q = {g: (target[g] if target else 1 / len(groups)) for g in groups}
    k = min(k, len(scores))
    top = [labels[i] for i in order[:k]]
    skews = {g: (math.log(top.count(g) / k / q[g]) if top.count(g) else -math.inf) for g in groups}
    z = sum(1 / math.log2(i + 1) for i in range(1, k + 1))
    kl_sum = 0.0
    for i in range(1, k + 1):
        prefix = [labels[j] for j in order[:i]]
        kl = sum((prefix.count(g) / i) * math.log(prefix.count(g) / i / q[g]) for g in groups if prefix.count(g))
        kl_sum += kl / math.log2(i + 1)
    best = max(groups, key=lambda g: skews[g])
    return {"max_skew": skews[best], "max_skew_group": best, "min_skew": min(skews.values()), "ndkl": kl_sum / z}


def test_resampled_skew_with_every_cluster_once_is_the_ranking_s():
    rng = np.random.default_rng(5)
    scores, labels = rng.normal(size=40), rng.choice(["a", "b", "c"], 40)
    clusters = np.repeat([f"s{i}" for i in range(8)], 5)
    ones = np.ones((2, 8))
    shares = np.array([np.mean(labels == g) for g in "abc"])
    for target, depth, tgt in (("uniform", -1, None), ("pool", -1, shares), ("uniform", None, None)):
        est = ranking_skew(scores, labels, k=7, target=tgt, n_perm=0, ndkl_depth=depth).iloc[0]
        rep = resampled_skew(scores, labels, clusters, k=7, target=target, ndkl_depth=depth, draws=ones)
        for stat in ("max_skew", "min_skew", "ndkl"):
            assert rep[stat] == pytest.approx([est[stat]] * 2)
    ref = reference_skew(list(scores), list(labels), 7)
    assert rep["max_skew"][0] == pytest.approx(ref["max_skew"])


def test_a_replicate_ranks_the_drawn_sets_items_with_their_copies():
    scores = np.array([0.9, 0.1, 0.8, 0.2, 0.5, 0.4])
    labels = np.array(["w", "b", "w", "b", "b", "w"])
    clusters = np.array(["s0", "s0", "s1", "s1", "s2", "s2"])
    # s0 drawn twice, s1 never, s2 once: the pool 0.9w, 0.9w, 0.5b, 0.4w, 0.1b, 0.1b
    rep = resampled_skew(scores, labels, clusters, k=3, draws=np.array([[2.0, 0.0, 1.0]]), target="pool")
    ref = reference_skew([0.9, 0.9, 0.1, 0.1, 0.5, 0.4], list("wwbbbw"), 3, target={"w": 0.5, "b": 0.5})
    assert rep["max_skew"][0] == pytest.approx(ref["max_skew"]) == pytest.approx(math.log(2 / 3 / 0.5))
    assert rep["min_skew"][0] == pytest.approx(ref["min_skew"])
    assert rep["ndkl"][0] == pytest.approx(ref["ndkl"])


@pytest.mark.parametrize(
    "caption,attributes,neutral",
    [
        ("A photo of an obese Asian chef", ("obese", "Asian"), "A photo of a chef"),
        ("A photo of a Black woman astronaut", ("Black", "woman"), "A photo of an astronaut"),
        ("An old Middle Eastern man nurse.", ("old", "Middle Eastern"), "A man nurse."),
        ("A photo of a chef", ("White", "man"), "A photo of a chef"),
    ],
)
def test_the_neutral_caption_drops_the_attributes(caption, attributes, neutral):
    assert neutral_caption(caption, attributes) == neutral


# ---------------------------------------------------------------------------------------------------- SocialCF
#: planted cosine with the neutral query per race-gender combination (the rest: small noise)
PLANT = {("White", "man"): 0.9, ("White", "woman"): 0.7, ("Asian", "man"): 0.5}


@pytest.fixture(scope="module")
def sc(tmp_path_factory):
    home = tmp_path_factory.mktemp("sc")
    rel = make_socialcounterfactuals(
        home / "SocialCounterfactuals",
        sets={"race-gender": {"chef": 3, "nurse": 2}, "physical-gender": {"chef": 2}},
    )
    ds = load_dataset(f"socialcounterfactuals:{rel['root']}")
    rng = np.random.default_rng(11)
    q = np.eye(8)[0]
    keys, vecs, cos = ["A photo of a chef", "A photo of a nurse"], [q, q], {}
    for key, a1, a2, pair in zip(ds.table["key"], ds.table["a1"], ds.table["a2"], ds.table["attribute_type"]):
        c = PLANT.get((a1, a2), 0.0) if pair == "race-gender" else 0.0
        c = c + rng.uniform(-0.05, 0.05)
        v = np.zeros(8)
        v[0], v[1 + int(rng.integers(0, 7))] = c, math.sqrt(1 - c * c)
        keys.append(key)
        vecs.append(v)
        cos[key] = c
    write_parquet_vectors(home / "vectors.parquet", keys, np.array(vecs, dtype=np.float32))
    return {"root": rel["root"], "spec": f"vectors:{home / 'vectors.parquet'}", "table": ds.table, "cos": cos}


def _sc(sc, **options):
    return AUDIT.run(load_model(sc["spec"]), {"dataset": f"socialcounterfactuals:{sc['root']}", **options})


def test_socialcounterfactuals_skew_against_the_paper_s_definition(sc):
    res = _sc(sc, k=5, n_bootstrap=200, seed=2)
    rankings = res.tables["rankings"]
    t = sc["table"]
    assert set(zip(rankings["attribute_type"], rankings["subject"])) == {
        ("race-gender", "chef"), ("race-gender", "nurse"), ("physical-gender", "chef")
    }  # fmt: skip
    assert set(rankings["query"]) == {"A photo of a chef", "A photo of a nurse"}
    for row in rankings.itertuples(index=False):
        pool = t[(t["attribute_type"] == row.attribute_type) & (t["subject"] == row.subject)]
        types = (pool["a1_type"].iloc[0], pool["a2_type"].iloc[0])
        cols = {f"{types[0]} x {types[1]}": ["a1", "a2"], types[0]: ["a1"], types[1]: ["a2"]}[row.grouping]
        labels = [" ".join(r) for r in pool[cols].itertuples(index=False)]
        ref = reference_skew([sc["cos"][k] for k in pool["key"]], labels, 5)
        assert row.max_skew == pytest.approx(ref["max_skew"], abs=1e-6)
        assert row.max_skew_group == ref["max_skew_group"]
        assert (
            row.min_skew == pytest.approx(ref["min_skew"])
            if math.isfinite(ref["min_skew"])
            else row.min_skew == -np.inf
        )
        assert row.ndkl == pytest.approx(ref["ndkl"], abs=1e-6)
        assert row.n_sets == pool["counterfactual_set"].nunique() and row.k == 5


def test_the_planted_group_tops_every_race_gender_ranking(sc):
    res = _sc(sc, k=3, n_bootstrap=200)
    rg = res.tables["rankings"].query("attribute_type == 'race-gender' and subject == 'chef'").set_index("grouping")
    # 3 sets: the top 3 are the three White men; every resample of the sets keeps them on top
    assert rg.loc["race x gender", "max_skew_group"] == "White man"
    assert rg.loc["race x gender", "max_skew"] == pytest.approx(math.log(12))
    assert rg.loc["race", "max_skew"] == pytest.approx(math.log(6)) and rg.loc["race", "max_skew_group"] == "White"
    assert rg.loc["gender", "max_skew"] == pytest.approx(math.log(2)) and rg.loc["gender", "max_skew_group"] == "man"
    assert rg.loc["race x gender", "max_skew_low"] == pytest.approx(math.log(12))
    assert rg.loc["race x gender", "max_skew_high"] == pytest.approx(math.log(12))
    # physical-gender has no planted effect: far from the maximum
    pg = res.tables["rankings"].query("attribute_type == 'physical-gender'").set_index("grouping")
    assert pg.loc["physical x gender", "max_skew"] < math.log(10)


def test_results_summarise_the_rankings_over_subjects(sc):
    res = _sc(sc, k=5, n_bootstrap=100)
    rankings, results = res.tables["rankings"], res.tables["results"].set_index(["attribute_type", "grouping"])
    for (pair, grouping), part in rankings.groupby(["attribute_type", "grouping"]):
        row = results.loc[(pair, grouping)]
        assert row["n_rankings"] == len(part)
        assert row["mean_max_skew"] == pytest.approx(part["max_skew"].mean())
        assert row["median_max_skew"] == pytest.approx(part["max_skew"].median())
        assert row["mean_ndkl"] == pytest.approx(part["ndkl"].mean())
        assert row["mean_max_skew_low"] <= row["mean_max_skew_high"]


def test_similarity_per_group_with_intervals_over_sets(sc):
    res = _sc(sc, k=5, n_bootstrap=200)
    sim = res.tables["similarity"].query("attribute_type == 'race-gender' and grouping == 'race x gender'")
    sim = sim.set_index("group")
    t = sc["table"]
    rg = t[t["attribute_type"] == "race-gender"]
    white_men = rg[(rg["a1"] == "White") & (rg["a2"] == "man")]
    assert sim.loc["White man", "mean_cos"] == pytest.approx(
        np.mean([sc["cos"][k] for k in white_men["key"]]), abs=1e-6
    )
    assert sim.loc["White man", "n_clusters"] == 5 and sim.loc["White man", "n_images"] == 5
    gap = res.tables["similarity_gap"].query("attribute_type == 'race-gender' and grouping == 'race x gender'").iloc[0]
    assert gap["max_group"] == "White man" and gap["difference_low"] > 0.5
    assert "ratio" not in res.tables["similarity_gap"].columns


def test_a_protocol_file_with_a_query_template_and_another_k(sc, tmp_path):
    path = tmp_path / "mine.yaml"
    path.write_text(
        yaml.safe_dump(
            {"name": "mine", "kind": "counterfactual", "pools": ["attribute_type", "subject"],
             "query": "A photo of a {subject}", "groupings": [["a1"]], "clusters": "counterfactual_set", "k": 2}
        )
    )  # fmt: skip
    res = _sc(sc, protocol=str(path), n_bootstrap=0)
    rankings = res.tables["rankings"]
    assert set(rankings["grouping"]) == {"race", "physical"} and (rankings["k"] == 2).all()
    assert rankings["max_skew_low"].isna().all()
    assert res.record.resolved["protocol"] == "mine" and res.record.resolved["k"] == 2
    assert not res.skipped["item"].str.contains("was published on").any()  # the protocol names no dataset


def test_socialcounterfactuals_from_the_command_line(sc, tmp_path):
    out = tmp_path / "out"
    assert main(["retrieval", "-m", sc["spec"], "-d", f"socialcounterfactuals:{sc['root']}", "--k", "4",
                 "--n-bootstrap", "20", "--out", str(out)]) == 0  # fmt: skip
    for name in ("results", "rankings", "similarity", "images", "skipped"):
        assert (out / f"{name}.csv").is_file()
    again = pd.read_parquet(out / "rankings.parquet")
    direct = _sc(sc, k=4, n_bootstrap=20).tables["rankings"]
    assert np.allclose(again["max_skew"], direct["max_skew"]) and np.allclose(
        again["max_skew_high"], direct["max_skew_high"]
    )


def test_a_broken_embedded_image_is_reported_not_dropped(tmp_path):
    rel = make_socialcounterfactuals(
        tmp_path / "sc", sets={"race-gender": {"chef": 2}}, shards=1, broken=(("race-gender_chef_1", "Black", "man"),)
    )
    spec = f"socialcounterfactuals:{rel['root']}"
    key = load_dataset(spec).table.query("counterfactual_set == 'race-gender_chef_1' and a1 == 'Black' and a2 == 'man'")
    model = load_model(f"hf:{tiny_hf_clip(tmp_path / 'clip')}", device="cpu")
    with pytest.raises(VlbiasError, match="skip"):
        AUDIT.run(model, {"dataset": spec, "n_bootstrap": 0, "k": 4})
    res = AUDIT.run(model, {"dataset": spec, "n_bootstrap": 0, "k": 4, "skip_bad_images": True})
    assert res.skipped["item"].eq(key["key"].iloc[0]).any()
    assert res.tables["rankings"]["n_images"].max() == 23


# ---------------------------------------------------------------------------------------------------- PATA
LINES = [f"office_{race}_{g}_{age}" for race in ("black", "caucasian", "eastasian") for g in ("male", "female")
         for age in ("young", "old") for _ in range(2)] + [f"gun_range_{race}_{g}_young" for race in
                                                           ("black", "caucasian", "indian") for g in ("male", "female")]  # fmt: skip


@pytest.fixture(scope="module")
def pata(tmp_path_factory):
    """Planted: the office's negative race caption ("photo of a servant") is closest to the black images; images
    and captions live in 12 dimensions, one per caption plus noise."""
    home = tmp_path_factory.mktemp("pata")
    make_pata(home / "pata", LINES)
    ds = load_dataset(f"pata:{home / 'pata'}")
    caps = list(dict.fromkeys(ds.captions["caption"]))
    eye = np.eye(16)
    cap_vec = {c: eye[i] for i, c in enumerate(caps)}
    rng = np.random.default_rng(4)
    keys, vecs = list(caps), [cap_vec[c] for c in caps]
    for key, race in zip(ds.table["key"], ds.table["race"]):
        v = 0.3 * cap_vec["photo of a successful person"] + rng.normal(scale=0.15, size=16)
        if race == "black":
            v = v + 0.8 * cap_vec["photo of a servant"]
        keys.append(key)
        vecs.append(v / np.linalg.norm(v))
    write_parquet_vectors(home / "vectors.parquet", keys, np.array(vecs, dtype=np.float32))
    lookup = dict(zip(keys, vecs))
    return {"root": home / "pata", "spec": f"vectors:{home / 'vectors.parquet'}", "table": ds.table,
            "captions": ds.captions, "vec": lookup}  # fmt: skip


def _pata(pata, **options):
    return AUDIT.run(load_model(pata["spec"]), {"dataset": f"pata:{pata['root']}", **options})


def test_pata_association_with_the_negative_captions(pata):
    res = _pata(pata, n_bootstrap=200, k=6)
    assert res.record.resolved["protocol"] == "pata" and res.content_warning
    t, caps, vec = pata["table"], pata["captions"], pata["vec"]
    assoc = res.tables["association"]
    office = caps[(caps["scene"] == "office") & (caps["attribute"] == "race")]
    texts = office["caption"].tolist()
    neg = (office["polarity"] == "negative").to_numpy()
    imgs = t[t["scene"] == "office"]
    logits = 100 * np.array([[vec[k] @ vec[c] for c in texts] for k in imgs["key"]])
    probs = np.exp(logits - logits.max(axis=1, keepdims=True))
    probs /= probs.sum(axis=1, keepdims=True)
    p_neg = pd.Series(probs[:, neg].sum(axis=1), index=imgs["race"].to_numpy())
    top_neg = pd.Series(neg[logits.argmax(axis=1)].astype(float), index=imgs["race"].to_numpy())
    got = assoc[(assoc["scene"] == "office") & (assoc["attribute"] == "race")].set_index("group")
    for race in ("black", "white", "east_asian"):
        assert got.loc[race, "p_negative_pct"] == pytest.approx(100 * p_neg[race].mean(), abs=1e-4)
        assert got.loc[race, "top1_negative_pct"] == pytest.approx(100 * top_neg[race].mean())
    assert got["p_negative_pct"].idxmax() == "black" and got.loc["black", "top1_negative_pct"] == 100.0
    gap = res.tables["association_gap"].query(
        "scene == 'office' and attribute == 'race' and measure == 'p_negative_pct'"
    )
    assert gap["max_group"].iloc[0] == "black" and gap["difference_low"].iloc[0] > 0
    # gun_range's gender captions have no negative one: no association, and a note saying so
    assert assoc.query("scene == 'gun_range' and attribute == 'gender'").empty
    assert res.skipped["item"].str.contains("gun_range, gender: no negative caption").any()


def test_pata_skew_of_each_caption(pata):
    res = _pata(pata, n_bootstrap=100, k=6)
    t, caps, vec = pata["table"], pata["captions"], pata["vec"]
    rk = res.tables["rankings"]
    imgs = t[t["scene"] == "office"]
    office = caps[(caps["scene"] == "office") & (caps["attribute"] == "race")]
    texts = office["caption"].tolist()
    cos = np.array([[vec[k] @ vec[c] for c in texts] for k in imgs["key"]])
    labels = imgs["race"].tolist()
    shares = {g: labels.count(g) / len(labels) for g in set(labels)}
    best = cos.argmax(axis=1)
    for j, text in enumerate(texts):
        rows = rk[(rk["scene"] == "office") & (rk["caption"] == text)].set_index("measure")
        # top-k against the scene's own shares
        ref = reference_skew(list(cos[:, j]), labels, 6, target=shares)
        assert rows.loc["top-k", "max_skew"] == pytest.approx(ref["max_skew"])
        assert rows.loc["top-k", "ndkl"] == pytest.approx(ref["ndkl"])
        # the images whose best caption it is, against the scene's shares
        chosen = [labels[i] for i in range(len(labels)) if best[i] == j]
        assert rows.loc["assigned", "n_assigned"] == len(chosen)
        if chosen:
            skews = {g: math.log(chosen.count(g) / len(chosen) / shares[g]) for g in set(chosen)}
            assert rows.loc["assigned", "max_skew"] == pytest.approx(max(skews.values()))
    servant = rk[(rk["caption"] == "photo of a servant") & (rk["measure"] == "assigned")].iloc[0]
    assert servant["max_skew_group"] == "black" and servant["max_skew"] > math.log(2)  # a third of the scene is black
    summary = res.tables["results"].set_index(["attribute", "polarity", "measure"])
    part = rk[(rk["attribute"] == "race") & (rk["polarity"] == "negative") & (rk["measure"] == "top-k")]
    assert summary.loc[("race", "negative", "top-k"), "mean_max_skew"] == pytest.approx(part["max_skew"].mean())


def test_pata_needs_its_captions(pata, tmp_path):
    with pytest.raises(VlbiasError, match="no retrieval protocol was published on facet"):
        from vlbias.stimuli.retrieval import protocol_for

        protocol_for("facet")
    res = _pata(pata, n_bootstrap=0, k=3, scale=10.0)
    assert res.record.resolved["scale"] == 10.0


def test_pata_mitigation_comparison_pairs_the_association_with_negative_captions(pata):
    """mitigation-compare on the retrieval audit: per scene and attribute, the range over groups of the mean
    P(negative caption) and of the share of images whose best caption is negative, before and after a transform
    that removes the planted "servant" direction from the images: exactly the runs' own per-image values, and the
    office's race range falls."""
    from vlbias.mitigation import Transform
    from vlbias.mitigation.base import Linear
    from vlbias.zoo.mitigation import compare

    servant = pata["vec"]["photo of a servant"]
    t = Transform("projection", "drop-servant", {}, {"image": Linear(np.eye(16) - np.outer(servant, servant))}, {}, "f")
    opts = {"dataset": f"pata:{pata['root']}", "n_bootstrap": 0, "k": 6}
    model = load_model(pata["spec"])
    c = compare(model, t, "retrieval", opts, n_bootstrap=200, seed=1)
    rows = c.table[c.table["value"] != "overall"].set_index("value")
    assert set(c.table["statistic"]) == {"range over groups (pct points)"}
    assert "gun_range, gender: P(negative caption)" not in rows.index  # no negative gender caption there
    for side, run in (("before", c.before), ("after", c.after)):
        img = run.tables["images"]
        img = img[(img["scene"] == "office") & (img["attribute"] == "race")]
        means = img.groupby("group")["p_negative_pct"].mean()
        got = rows.loc["office, race: P(negative caption)", side]
        assert got == pytest.approx(means.max() - means.min(), abs=1e-9)
        share = (img["best_polarity"] == "negative").groupby(img["group"]).mean() * 100
        assert rows.loc["office, race: best caption negative", side] == pytest.approx(share.max() - share.min())
    race = rows.loc["office, race: P(negative caption)"]
    assert race.before > 80 and race.after < 10 and race.difference_high < 0, race
    with pytest.raises(VlbiasError, match="no attribute 'religion'"):
        compare(model, t, "retrieval", opts, group_by="religion", n_bootstrap=10)
    only = compare(model, t, "retrieval", opts, group_by="race", n_bootstrap=10).table
    assert only["value"].str.contains(", race: |overall").all()
