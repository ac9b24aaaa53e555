"""`vlbias perception` end to end with a random-init CLIP on a CausalFace-layout folder, and every bad input."""

from __future__ import annotations

import json
import subprocess
import sys

import pandas as pd
import pytest

from tests.perception_fixtures import write_causalface
from vlbias.audits.perception import AUDIT
from vlbias.cli import main
from vlbias.models import load_model

MODEL = "openclip:ViT-S-32-alt/random"
LEVELS = {"age": (0.8, 2.3, 4.4), "lighting": (-1, 6), "pose": (-3.0, 0.0, 3.0), "smiling": (-2.5, 0, 4)}


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    return write_causalface(tmp_path_factory.mktemp("cf"), seeds=(1, 2), levels=LEVELS, uncorrected_smiling=False)


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return tmp_path_factory.mktemp("perception_cache")


def run(args, capsys):
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


def test_random_init_model_end_to_end(tree, cache, tmp_path, capsys):
    out = tmp_path / "out"
    args = [
        "perception",
        "-m",
        MODEL,
        "-d",
        f"causalface:{tree}",
        "--n-bootstrap",
        "30",
        "--n-random-rankings",
        "30",
        "--k",
        "30",
        "--pairs",
        "200",
        "--cache-dir",
        cache,
        "--device",
        "cpu",
        "-o",
        out,
    ]
    code, _, err = run(args, capsys)
    assert code == 0, err
    assert "factor effects (median |change|" in err
    assert f"\nwrote 18 tables for 132 images to {out}; 4 notes in skipped.csv\n" in err
    names = {p.name for p in out.iterdir()}
    for table in (
        "results",
        "scores",
        "word_scores",
        "factor_effects",
        "factor_tests",
        "factor_pairs",
        "variance_shares",
        "regression_coefficients",
        "level_means",
        "curve_fits",
        "extreme_groups",
        "markedness",
        "skew",
        "skew_scales",
        "group_means",
        "level_correlations",
    ):
        assert f"{table}.parquet" in names and f"{table}.csv" in names
    plots = {p.name for p in (out / "plots").iterdir()}
    assert plots == {
        "factor_effects.png",
        "factor_effects_by_scale.png",
        "variance_shares.png",
        "level_curves_age.png",
        "level_curves_smiling.png",
        "markedness.png",
        "skew_race.png",
        "skew_gender.png",
        "skew_race_x_gender.png",
    }
    assert all((out / "plots" / p).stat().st_size > 10_000 for p in plots)
    scores = pd.read_parquet(out / "scores.parquet")
    assert len(scores) == 132 and scores["model"].eq(MODEL).all()
    scales = ["warm", "competent", "agency_pos", "agency_neg", "beliefs_pos", "beliefs_neg", "communion_pos"]
    assert set(scales) <= set(scores) and not any("+" in c or "-" in c or ":" in c for c in scores)  # no quoting
    words = pd.read_parquet(out / "word_scores.parquet")  # the word scores, long: one row per image and word
    assert (
        list(words.columns[-3:]) == ["key", "word", "score"] and words.groupby("key").size().eq(len(words) // 132).all()
    )
    assert scores["crop"].isin(["40,0,472,432", "0,0,432,432", "80,0,512,432"]).all()
    assert scores["cos_neutral"].between(-1, 1).all()
    record = json.loads((out / "record.json").read_text())
    assert record["options"]["dataset"] == f"causalface:{tree}" and record["stimuli"][0]["n_images"] == 132
    effects = pd.read_parquet(out / "factor_effects.parquet")
    assert set(effects["dimension"]) == {"lighting", "pose", "smiling", "identity", "age", "gender", "race"}


def test_faces_whose_groups_share_no_age_and_a_k_beyond_the_set(tmp_path, capsys):
    """24 faces with race, gender and age, the six race x gender groups at ages no other group has: the run is
    written whole; what its tables cannot make is said in skipped.csv (no most extreme group; the default k = 1000
    beyond the 24 images of each balanced set), no empty chart is drawn, and the skew keeps the k asked beside the k
    used."""
    from tests.faces_fixtures import make_manifest
    from tests.perception_fixtures import planted_vectors
    from vlbias.datasets import load_dataset
    from vlbias.stimuli.perception import Vocabulary, load_control, load_lexicon, load_templates

    rows = []
    for g, (race, gender) in enumerate((r, s) for r in ("white", "black", "asian") for s in ("female", "male")):
        for j in range(4):  # group g at ages of bins g .. g + 3: no bin that every group has
            rows.append({"path": f"f{g}{j}.jpg", "race": race, "gender": gender, "age": 25 + 10 * ((g + j) % 8)})
    manifest = make_manifest(tmp_path / "faces", rows)
    table = load_dataset(f"manifest:{manifest}").table
    vocab = Vocabulary([load_lexicon("scm"), load_lexicon("abc")], load_control(), load_templates(), "as-written")
    vectors = planted_vectors(tmp_path / "v.npz", table, vocab.prompt_set(), lambda row: 0.1 * (row.race == "black"))
    out = tmp_path / "out"
    args = ["perception", "-m", f"vectors:{vectors}", "-d", f"manifest:{manifest}", "--n-bootstrap", "20"]
    code, _, err = run([*args, "--n-random-rankings", "20", "-o", out], capsys)
    assert code == 0, err
    assert (out / "extreme_groups.parquet").is_file() and (out / "level_means.parquet").is_file()
    plots = {p.name for p in (out / "plots").iterdir()}
    assert "level_curves_age.png" in plots and not any(p.startswith("skew") for p in plots)
    notes = pd.read_csv(out / "skipped.csv").set_index("item")["reason"].to_dict()
    assert notes["figure most extreme group"] == (
        "not drawn: no level that every group has, so no group is compared with the others"
    )
    for grouping, n in (("race", 24), ("gender", 24), ("race x gender", 24)):
        assert notes[f"skew over {grouping}"] == (
            f"k = 1000 is more than the {n} images ranked: MaxSkew and NDKL used k = {n}, the whole set, the same "
            f"for every ranking (MaxSkew measures the set, 0 for a balanced one, not the ranking); give a k below {n}"
        )
        assert notes[f"figure skew_{grouping.replace(' ', '_')}"].startswith(f"not drawn: k = 1000 covers all {n}")
    skew = pd.read_parquet(out / "skew.parquet")
    assert skew["k"].eq(1000).all() and skew["k_used"].eq(skew["n_items"]).all() and skew["max_skew"].eq(0).all()
    results = pd.read_parquet(out / "results.parquet")
    metrics = set(results.loc[results["analysis"] == "skew", "metric"])
    assert {"max_skew", "ndkl"} <= metrics and not any("@" in m for m in metrics)  # names that join across datasets


def test_rerun_from_the_cache_loads_no_weights_and_gives_the_same_scores(tree, cache, tmp_path):
    opts = {"dataset": f"causalface:{tree}", "analyses": "markedness", "n_bootstrap": 0, "n_random_rankings": 0}
    first = AUDIT.run(load_model(MODEL, cache=cache, device="cpu"), opts)  # the end-to-end test filled the cache
    enc = load_model(MODEL, cache=cache, device="cpu")
    again = AUDIT.run(enc, opts)
    assert not enc._loaded  # every prompt and every cropped image came from the cache
    pd.testing.assert_frame_equal(first.tables["scores"], again.tables["scores"])
    # recomputed without the cache, in batches of 7: the 36 pose images, and only the prompts of one word
    lex = tmp_path / "one.yaml"
    lex.write_text("scales:\n  w: [warm]\n", encoding="utf-8")
    pose = {**opts, "dataset_options": {"attributes": "pose"}, "lexicons": [str(lex)]}
    fresh = AUDIT.run(load_model(MODEL, cache=False, device="cpu", batch_size=7), pose).tables["scores"]
    cached = first.tables["scores"].set_index("key").loc[fresh["key"]]
    assert len(fresh) == 36
    assert fresh["cos_neutral"].to_numpy() == pytest.approx(cached["cos_neutral"].to_numpy(), abs=1e-4)
    fresh_words = AUDIT.run(load_model(MODEL, cache=False, device="cpu", batch_size=7), pose).tables["word_scores"]
    cached_words = first.tables["word_scores"].set_index(["key", "word"])["score"]
    for word in ("warm", "female"):
        mine = fresh_words[fresh_words["word"] == word]
        assert len(mine) == 36
        got = cached_words.loc[list(zip(mine["key"], mine["word"]))].to_numpy()
        assert mine["score"].to_numpy() == pytest.approx(got, abs=1e-4)


def test_help_imports_no_deep_learning_library():
    code = (
        "import sys, contextlib, io\n"
        "from vlbias.cli import main\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        "    assert main(['perception', '--help']) == 0\n"
        "heavy = {'torch', 'open_clip', 'transformers', 'matplotlib', 'statsmodels'} & set(sys.modules)\n"
        "assert not heavy, heavy\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["-d", "nowhere:/x"], "unknown dataset 'nowhere'"),
        (["-d", "causalface"], "must be NAME:PATH"),
        (["-d", "causalface:{tmp}/missing"], "CausalFace folder not found"),
        (["--analyses", "factors,vibes"], "--analyses 'factors,vibes': 'vibes' is not one of factors, regression"),
        (["--lexicon", "{tmp}/none.yaml"], "is neither a packaged one"),
        (["--templates", "{tmp}/bad.txt"], "must hold the placeholder {w} exactly once"),
        (["--min-level-gap", "age"], "--min-level-gap 'age': 'age' must be KEY=VALUE"),
        (["--min-level-gap", "age=wide"], "--min-level-gap age='wide': must be a number ≥ 0"),
        (
            ["--dataset-option", "background=purple"],
            "dataset causalface option background='purple': must be original or removed",
        ),
        (["--out", "{tmp}/file.txt"], "is a file; give a new folder"),
        (["--out", "{tmp}/busy"], "holds files vlbias did not write (thesis.tex); give a new folder"),
    ],
)
def test_bad_input_is_one_line_and_writes_nothing(tree, tmp_path, capsys, extra, message):
    (tmp_path / "bad.txt").write_text("no placeholder here\n")
    (tmp_path / "file.txt").write_text("x")
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "thesis.tex").write_text("x")
    extra = [a.replace("{tmp}", str(tmp_path)) for a in extra]
    args = [
        "perception",
        "-m",
        "vectors:{}".format(tmp_path / "file.txt"),
        "-d",
        f"causalface:{tree}",
        "-o",
        tmp_path / "out",
        *extra,
    ]
    code, out, err = run(args, capsys)
    assert code == 2, err
    assert err.startswith("vlbias: error: ") and message in err and err.count("\n") == 1, err
    assert not (tmp_path / "out").exists()
    assert (tmp_path / "busy" / "thesis.tex").exists()
