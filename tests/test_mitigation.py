"""Mitigation methods as encoder transforms: each removes what it claims on planted data (hand-checked algebra, the
EAT d and the zero-shot shares) and leaves an orthogonal signal; the fit set is never evaluated; transforms save,
reload and stamp every row; the CLI, sweeps and the comparison use them."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pandas as pd
import pytest

from tests.mitigation_fixtures import DIM, G, planted_world
from vlbias.audits.eat import AUDIT as EAT
from vlbias.audits.zeroshot import AUDIT as ZEROSHOT
from vlbias.cli import main
from vlbias.errors import VlbiasError
from vlbias.mitigation import Mitigated, Transform, fit_transform, load_transform, method_names, mitigate, split_people
from vlbias.mitigation.methods.hard_debias import bias_subspace
from vlbias.mitigation.methods.projection import calibrated, span_complement
from vlbias.mitigation.registry import split_spec
from vlbias.models import load_model
from vlbias.zoo.mitigation import compare
from vlbias.zoo.plan import parse_config, plan

FAST_EAT = {"permutations": 2000, "n_bootstrap": 0, "seed": 1}


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    w = planted_world(tmp_path_factory.mktemp("planted"))
    w["encoder"] = load_model(w["model"], cache=False)
    w["methods"] = {
        "hard_debias": "hard_debias",
        "projection": "projection",
        "clipclip": f"clipclip:dataset={w['dataset']},m=1",
        "sfid": f"sfid:dataset={w['dataset']},k=1",
    }
    return w


@pytest.fixture(autouse=True)
def _quiet():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


def test_registry_finds_every_method_module():
    assert method_names() == ["clipclip", "hard_debias", "projection", "sfid"]
    assert split_spec("sfid:towers=text,k=3") == ("sfid", {"towers": "text", "k": "3"})
    assert split_spec("x:dataset=manifest:/a,b.csv,m=2") == ("x", {"dataset": "manifest:/a,b.csv", "m": "2"})


# ------------------------------------------------------------------ the algebra, hand-checked
def test_hard_debias_finds_and_removes_the_planted_direction_exactly(world):
    t = fit_transform(world["encoder"], "hard_debias")
    e0 = np.eye(DIM)[G]
    np.testing.assert_allclose(t.ops["text"].matrix, np.eye(DIM) - np.outer(e0, e0), atol=1e-6)
    v = world["encoder"].encode_texts(["a photo of a woman.", "he", "executive"])
    out = t.apply(v, "text")
    np.testing.assert_allclose(out[:, G], 0, atol=1e-7)
    # what was orthogonal to the direction keeps its direction
    rest = np.delete(v, G, axis=1)
    np.testing.assert_allclose(np.delete(out, G, axis=1), rest / np.linalg.norm(rest, axis=1, keepdims=True), atol=1e-6)
    assert t.towers == ("text",) and t.apply(v, "image") is v


def test_bias_subspace_of_hand_pairs():
    pairs = np.array([[[1.0, 2, 0], [-1, 2, 0]], [[3, 0, 1], [1, 0, 1]]])  # differences (2,0,0) and (2,0,0)
    np.testing.assert_allclose(np.abs(bias_subspace(pairs, 1)), [[1, 0, 0]])
    with pytest.raises(VlbiasError, match="fewer than 2 directions"):
        bias_subspace(pairs, 2)


def test_plain_projection_annihilates_the_prompts_and_keeps_their_complement():
    rng = np.random.default_rng(0)
    a = rng.standard_normal((3, 8))
    p0 = span_complement(a)
    np.testing.assert_allclose(p0 @ a.T, 0, atol=1e-12)
    x = rng.standard_normal(8)
    x -= a.T @ np.linalg.lstsq(a.T, x, rcond=None)[0]  # x orthogonal to the rows of a
    np.testing.assert_allclose(p0 @ x, x, atol=1e-12)
    np.testing.assert_allclose(p0 @ p0, p0, atol=1e-12)


def test_calibrated_projection_is_the_minimiser_of_its_objective():
    """Chuang et al. eq. 4: min ||P - P0||^2 + lam/|S| sum ||P (z_i - z_j)||^2 has gradient 2 (P - P0) + 2 lam P M."""
    rng = np.random.default_rng(1)
    p0 = span_complement(rng.standard_normal((2, 6)))
    pairs = [(rng.standard_normal(6), rng.standard_normal(6)) for _ in range(4)]
    lam = 3.0
    p = calibrated(p0, pairs, lam)
    diffs = np.stack([a - b for a, b in pairs])
    m = diffs.T @ diffs / len(pairs)
    np.testing.assert_allclose((p - p0) + lam * p @ m, 0, atol=1e-12)

    def objective(q):
        return np.sum((q - p0) ** 2) + lam * np.mean([np.sum((q @ (a - b)) ** 2) for a, b in pairs])

    for _ in range(5):
        assert objective(p) < objective(p + 1e-3 * rng.standard_normal(p.shape))
    assert calibrated(p0, pairs, 0.0) is p0


def test_clipclip_and_sfid_pick_the_planted_dimension(world):
    enc = world["encoder"]
    cc = fit_transform(enc, world["methods"]["clipclip"])
    assert cc.ops["image"].index.tolist() == [G] and cc.towers == ("text", "image")
    assert cc.details["mi_clipped_mean"] > 10 * cc.details["mi_kept_mean"]
    sf = fit_transform(enc, world["methods"]["sfid"])
    assert sf.ops["image"].index.tolist() == [G] and sf.ops["text"].index.tolist() == [G]
    # the text samples are balanced female/male pairs classified with confidence: the imputed value is the mean of
    # G over all held prompts, +-1/sqrt(2) in equal numbers, so 0
    assert sf.details["text"]["imputed_from"].startswith("all held samples")
    assert sf.ops["text"].values[0] == pytest.approx(0, abs=1e-7)
    v = enc.encode_texts(["nurse", "engineer"])
    assert np.all(cc.apply(v, "text")[:, G] == 0)


# ------------------------------------------------------------------ planted data: what each method claims
@pytest.mark.parametrize("name", ["hard_debias", "projection", "clipclip", "sfid"])
def test_planted_eat_falls_to_noise(world, name):
    enc = world["encoder"]
    opts = {"test_files": [str(world["test"])], **FAST_EAT}
    before = EAT.run(enc, opts).results.iloc[0]
    after = EAT.run(mitigate(enc, world["methods"][name]), opts).results.iloc[0]
    assert before.effect_size > 1.5 and before.p_value < 0.01
    assert abs(after.effect_size) < 0.5 and after.p_value > 0.05


@pytest.mark.parametrize("name", ["hard_debias", "projection", "clipclip", "sfid"])
def test_planted_zeroshot_shares_equalise_and_the_orthogonal_accuracy_stays(world, name):
    opts = {"dataset": world["dataset"], "protocol": str(world["protocol"]), "n_bootstrap": 0}
    c = compare(world["encoder"], world["methods"][name], "zeroshot", opts, n_bootstrap=400)
    t = c.table.set_index("value")
    nurse = t.loc["occupation: nurse top-1 share, range over gender"]
    assert nurse.before == 100 and nurse.after < 40 and nurse.difference_high < 0
    acc = t.loc["glasses accuracy"]
    assert (acc.before, acc.after, acc.difference, acc.difference_low, acc.difference_high) == (100, 100, 0, 0, 0)
    assert set(c.table["audit"]) == {"zeroshot"} and set(c.table["method"]) == {name}


def test_planted_eat_comparison_pairs_the_same_targets(world):
    opts = {"test_files": [str(world["test"])], **FAST_EAT}
    c = compare(world["encoder"], "hard_debias", "eat", opts, n_bootstrap=300)
    row = c.table.iloc[0]
    assert row.value == "planted all-text"
    assert row.before == pytest.approx(c.before.results.effect_size.iloc[0])
    assert row.after == pytest.approx(c.after.results.effect_size.iloc[0])
    assert row.difference_high < 0 and row.n_units == 12
    result = c.result()
    out = result.stamped()
    assert set(out["mitigation"]) == {"hard_debias"} and set(out["audit"]) == {"eat"}
    assert (
        result.audit == "mitigation_comparison"
        and result.record.mitigation["comparisons"][0]["method"] == "hard_debias"
    )


# ------------------------------------------------------------------ honest evaluation
def test_split_people_is_disjoint_complete_and_seeded():
    ids = [f"p{i}" for i in range(10)] * 2
    fit, ev = split_people(ids, 0.3, seed=4)
    assert len(fit) == 3 and fit.isdisjoint(ev) and fit | ev == set(ids)
    assert split_people(ids, 0.3, seed=4) == (fit, ev) and split_people(ids, 0.3, seed=5) != (fit, ev)
    assert len(split_people(ids, 0.99, 0)[1]) == 1  # below 1 always leaves someone to evaluate


def test_no_evaluation_image_was_used_to_fit(world):
    enc = world["encoder"]
    t = fit_transform(enc, world["methods"]["clipclip"])
    fit_people, eval_people = split_people([r["identity"] for r in world["rows"]], 0.5, 0)
    fit_keys = {r["path"] for r in world["rows"] if r["identity"] in fit_people}
    assert t.holdout == fit_keys and t.fit["images"]["fit_people"] == 20 == len(fit_people)
    opts = {"dataset": world["dataset"], "protocol": str(world["protocol"]), "n_bootstrap": 0}
    menc = Mitigated(enc, t)
    res = ZEROSHOT.run(menc, opts)
    evaluated = set(res.tables["images"]["identity"])
    assert evaluated == eval_people and evaluated.isdisjoint(fit_people)
    held = res.skipped[res.skipped["reason"].str.contains("held out: a fit-set person")]
    assert len(held) == 40 and res.record.mitigation["held_out_images"] == 40
    # the "before" of a comparison holds the same images out and changes no vector
    before = ZEROSHOT.run(Mitigated(enc, t.holdout_only()), opts)
    assert set(before.tables["images"]["key"]) == set(res.tables["images"]["key"])
    np.testing.assert_array_equal(Mitigated(enc, t.holdout_only()).encode_texts(["nurse"]), enc.encode_texts(["nurse"]))
    with pytest.raises(VlbiasError, match="fit set"):
        menc.encode_images([world["test"].parent / sorted(fit_keys)[0]], root=world["test"].parent)


def test_fit_texts_evaluated_are_counted(world):
    menc = mitigate(world["encoder"], "hard_debias")
    with pytest.warns(UserWarning, match="also in the fit set"):
        menc.encode_texts(["a photo of a woman.", "he"])
    assert menc.mitigation_record["text_overlap"] == 1


# ------------------------------------------------------------------ files, provenance, errors
def test_saved_transform_applies_bit_for_bit(world, tmp_path):
    enc = world["encoder"]
    t = fit_transform(enc, world["methods"]["sfid"])
    back = load_transform(t.save(tmp_path / "m.npz"))
    assert back.transform_hash == t.transform_hash and back.fit_hash == t.fit_hash and back.holdout == t.holdout
    v = enc.encode_texts(["nurse", "engineer", "he"])
    np.testing.assert_array_equal(back.apply(v, "text"), t.apply(v, "text"))
    assert back.fit["prompts"]["texts"] == t.fit["prompts"]["texts"]
    other = load_model(planted_world(tmp_path / "other", seed=9)["model"], cache=False)
    with pytest.raises(VlbiasError, match="fit it with this model"):
        Mitigated(other, back)


def test_every_row_carries_the_mitigation_and_raw_hashes_are_unchanged(world):
    enc = world["encoder"]
    opts = {"test_files": [str(world["test"])], **FAST_EAT}
    raw = EAT.run(enc, opts)
    mit = EAT.run(mitigate(enc, "projection:lam=0"), opts)
    assert raw.record.mitigation == {} and "mitigation" not in raw.stamped().columns
    rows = mit.stamped()
    assert list(rows["mitigation"]) == ["projection:lam=0.0"]
    assert rows["mitigation_hash"].iloc[0] == mit.record.mitigation["transform_hash"]
    assert mit.record.config_hash != raw.record.config_hash
    from vlbias.utils.io import stable_hash

    r = raw.record
    old = {"audit": r.audit, "model": r.model["identity"], "options": r.options, "seed": r.seed, "stimuli": r.stimuli}
    assert r.config_hash == stable_hash(old, n=16)


def test_errors_are_one_line(world):
    enc = world["encoder"]
    for spec, match in [
        ("nope", "unknown mitigation 'nope'"),
        ("projection:lamb=1", "did you mean lam"),
        ("projection:lam=-1", "lam"),
        ("clipclip", "give dataset=NAME:PATH"),
        ("projection:1", "write NAME:KEY=VALUE"),
        (f"clipclip:dataset={world['dataset']},m={DIM}", "would clip every one"),
        (f"clipclip:dataset={world['dataset']},attribute=hair", "no column 'hair'"),
    ]:
        with pytest.raises(VlbiasError, match=match) as e:
            fit_transform(enc, spec)
        assert "\n" not in str(e.value)
    with pytest.raises(VlbiasError, match="mitigated already"):
        Mitigated(mitigate(enc, "hard_debias"), fit_transform(enc, "hard_debias"))


# ------------------------------------------------------------------ CLI and sweeps
def test_cli_mitigation_flag_saves_and_reuses_the_transform(world, tmp_path, capsys):
    base = ["eat", "-m", world["model"], "--test-file", str(world["test"]), "--permutations", "500", "--no-cache"]
    assert main([*base, "--mitigation", "hard_debias", "-o", str(tmp_path / "a")]) == 0
    assert (tmp_path / "a" / "mitigation.npz").is_file()
    record = json.loads((tmp_path / "a" / "record.json").read_text())
    assert record["mitigation"]["method"] == "hard_debias" and record["mitigation"]["fit"]["prompts"]["n_texts"] > 0
    capsys.readouterr()
    assert main([*base, "--mitigation", str(tmp_path / "a" / "mitigation.npz"), "--format", "csv"]) == 0
    again = pd.read_csv(__import__("io").StringIO(capsys.readouterr().out))
    first = pd.read_csv(tmp_path / "a" / "results.csv")
    assert again["effect_size"].iloc[0] == first["effect_size"].iloc[0]
    assert again["config_hash"].iloc[0] == first["config_hash"].iloc[0]
    assert main([*base, "--mitigation", "projection:lamb=2"]) != 0
    assert "vlbias: error: mitigation projection has no option 'lamb'" in capsys.readouterr().err


def test_sweep_mitigations_axis(world, tmp_path):
    raw = {"models": [world["model"]], "audits": {"eat": {"test_files": [str(world["test"])]}}}
    plain = plan(parse_config(raw, source=tmp_path / "s.yaml"))
    crossed = plan(parse_config({**raw, "mitigations": ["none", "hard_debias", "projection:lam=0"]},
                                source=tmp_path / "s.yaml"))  # fmt: skip
    assert [t.mitigation for t in crossed] == [None, "hard_debias", "projection:lam=0.0"]
    assert crossed[0].task_id == plain[0].task_id and len({t.task_id for t in crossed}) == 3
    with pytest.raises(VlbiasError, match="unknown mitigation"):
        parse_config({**raw, "mitigations": ["nope"]}, source=tmp_path / "s.yaml")


def test_sweep_saves_each_mitigated_part_with_its_transform(world, tmp_path):
    from vlbias.zoo.runner import run_sweep
    from vlbias.zoo.store import ResultsStore

    raw = {"models": [world["model"]], "audits": {"eat": {"test_files": [str(world["test"])], **FAST_EAT}},
           "mitigations": ["none", "hard_debias"], "out": str(tmp_path / "out")}  # fmt: skip
    config = parse_config(raw, source=tmp_path / "s.yaml")
    run_sweep(config)
    parts = ResultsStore(tmp_path / "out").completed_parts()
    saved = sorted((p / "mitigation.npz").is_file() for p in parts)
    assert saved == [False, True]
    mitigated = next(p for p in parts if (p / "mitigation.npz").is_file())
    rows = pd.read_parquet(mitigated / "results.parquet")
    assert list(rows["mitigation"]) == ["hard_debias"]
    assert rows["mitigation_hash"].iloc[0] == load_transform(mitigated).transform_hash


def test_mitigation_compare_command_writes_the_tradeoff(world, tmp_path, capsys):
    out = tmp_path / "cmp"
    args = ["mitigation-compare", "-m", world["model"], "--no-cache", "--audit", "zeroshot",
            "--option", f"dataset={world['dataset']}", "--option", f"protocol={world['protocol']}",
            "--option", "n_bootstrap=0", "--mitigation", "hard_debias",
            "--mitigation", world["methods"]["clipclip"], "--n-bootstrap", "200", "-o", str(out)]  # fmt: skip
    assert main(args) == 0
    table = pd.read_csv(out / "results.csv")
    overall = table[(table["value"] == "overall") & (table["kind"] == "accuracy")]
    assert list(overall["method"]) == ["hard_debias", "clipclip"] and list(overall["abs_change"]) == [0, 0]
    assert (out / "tradeoff.png").stat().st_size > 0
    assert (out / "transforms" / "2-clipclip.npz").is_file()
    assert "hard_debias: bias overall 55 -> 8.75" in capsys.readouterr().out
    assert set(table["n_units"]) == {40, 20}  # the evaluation people, once however many tasks
    # the report's mitigation page: the before/after tables and the trade-off figure
    assert main(["report", str(out), "--out", str(tmp_path / "rep"), "--format", "md"]) == 0
    md = (tmp_path / "rep" / "report.md").read_text()
    assert "## Mitigation" in md and "Bias reduction against accuracy cost" in md
    assert "| hard_debias | occupation: nurse top-1 share, range over gender | 100 \\[100, 100\\] | 7.50 \\[" in md


# ------------------------------------------------------------------ end to end on real model code
def test_end_to_end_minilm_text_methods(minilm):
    for spec in ("hard_debias", "projection"):
        c = compare(minilm, spec, "eat", {"tests": ["sent-weat6"], "permutations": 200, "n_bootstrap": 0},
                    n_bootstrap=100)  # fmt: skip
        row = c.table.iloc[0]
        assert row.value == "sent-weat6 all-text" and np.isfinite([row.before, row.after]).all()
        assert c.after.record.mitigation["fitted_with"]["spec"] == "st:all-MiniLM-L6-v2"


def test_end_to_end_openclip_random_image_methods(world, tmp_path):
    """The image-fitted methods on the real open_clip code path (random weights), with an embedding cache: the raw
    embeddings are cached once and reused by the fit and both runs."""
    from tests.faces_fixtures import make_manifest

    enc = load_model("openclip:ViT-B-32/random", cache=tmp_path / "cache", device="cpu")
    rows = [{"path": f"f/p{i}_{j}.png", "identity": f"p{i}", "gender": "female" if i % 2 else "male",
             "glasses": "yes" if i % 3 else "no"} for i in range(8) for j in range(2)]  # fmt: skip
    dataset = f"manifest:{make_manifest(tmp_path / 'faces', rows)}"
    opts = {"dataset": dataset, "protocol": str(world["protocol"]), "n_bootstrap": 0}
    for spec in (f"clipclip:dataset={dataset},m=20", f"sfid:dataset={dataset},k=20,trees=10,towers=image"):
        c = compare(enc, spec, "zeroshot", opts, n_bootstrap=50)
        assert set(c.table["kind"]) == {"bias", "accuracy"}
        assert len(c.after.tables["images"]) == 2 * 8  # two tasks, the 4 evaluation people's 8 images each


def test_sfid_forest_halves_hold_every_attribute_value():
    """Four people, two of each value: whatever the seed, each half holds both values (a plain random half of the
    people could draw both women)."""
    from vlbias.mitigation.methods.sfid import _person_halves

    people = np.array(["a", "a", "b", "c", "d"])
    labels = np.array(["f", "f", "f", "m", "m"])
    for seed in range(20):
        halves = _person_halves(people, labels, seed)
        assert set(labels[halves]) == {"f", "m"} == set(labels[~halves])
        assert len(set(people[halves]) & set(people[~halves])) == 0


def test_no_embedding_path_bypasses_the_transform(world):
    menc = mitigate(world["encoder"], "hard_debias")
    with pytest.raises(AttributeError, match="mitigated encoder has no _embed_texts"):
        menc._embed_texts(["he"])
    assert menc.spec == world["encoder"].spec and menc.modalities == world["encoder"].modalities


def test_perception_comparison_pairs_each_scale_s_group_range(tmp_path):
    """The perception comparison: per scale, the range over gender of the mean scale score, before (the audit's own
    scores) and after a transform that removes the planted social axis from the images; identities resampled
    jointly, the difference's interval below 0, and the values exactly those of the two runs' scores tables."""
    from tests.perception_fixtures import DIM as PDIM
    from tests.perception_fixtures import axis, planted_vectors, write_causalface
    from vlbias.datasets import load_dataset
    from vlbias.mitigation.base import Linear
    from vlbias.stimuli.perception import Vocabulary, load_control, load_lexicon, load_templates

    tree = write_causalface(tmp_path / "cf", seeds=(101, 202, 303, 404))
    table = load_dataset(f"causalface:{tree}").table
    vocab = Vocabulary([load_lexicon("scm"), load_lexicon("abc")], load_control(), load_templates(), "as-written")
    social = lambda row: 0.05 * (row.gender == "female")  # noqa: E731 - women move every scale score
    enc = load_model(f"vectors:{planted_vectors(tmp_path / 'v.npz', table, vocab.prompt_set(), social)}", cache=False)
    project = np.eye(PDIM) - np.outer(axis(1), axis(1))  # the images lose the social axis
    t = Transform("projection", "drop-social", {}, {"image": Linear(project)}, {}, "fit0")
    opts = {"dataset": f"causalface:{tree}", "analyses": "factors", "pairs": 50, "n_bootstrap": 0}
    c = compare(enc, t, "perception", opts, n_bootstrap=300, seed=2)
    bias = c.table[(c.table["kind"] == "bias") & (c.table["value"] != "overall")]
    assert set(c.table["statistic"]) == {"score range (Delta points)"} and len(bias) == 8
    for side, run in (("before", c.before), ("after", c.after)):
        scores = run.tables["scores"]
        for row in bias.itertuples():
            scale = row.value.split(":")[0]
            means = scores.groupby("gender")[scale].mean()
            assert getattr(row, side) == pytest.approx(means.max() - means.min(), abs=1e-9)
    assert (bias["difference_high"] < 0).all() and (bias["n_units"] == 4).all()
    assert c.table.loc[c.table["value"] == "overall", "difference"].iloc[0] < 0
    with pytest.raises(VlbiasError, match="no column 'religion'"):
        compare(enc, t, "perception", opts, group_by="religion", n_bootstrap=10)
    # the groups the audit compares, not every scored image: its races and group_subsets apply
    kept = {**opts, "races": "black,white", "group_subsets": "age"}
    c = compare(enc, t, "perception", kept, group_by="race", n_bootstrap=50)
    scores = c.before.tables["scores"]
    scores = scores[scores["race"].isin(["black", "white"]) & (scores["attribute"] == "age")]
    assert 0 < len(scores) < len(c.before.tables["scores"])
    row = c.table[c.table["value"] == "warm: score range over race"].iloc[0]
    means = scores.groupby("race")["warm"].mean()
    assert row.before == pytest.approx(means.max() - means.min(), abs=1e-9)
