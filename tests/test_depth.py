"""Bias by depth, end to end: audits over every layer of a random-init open_clip model from the command line, a sweep
with a layers: axis, vectors files with a layer column, the report's depth curves and the upstream analysis with
layer as a term (vlbias.models.layers)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from tests.faces_fixtures import make_cfd
from vlbias.audits.base import AuditResult, RunRecord, combine_layers, split_layers
from vlbias.cli import main
from vlbias.zoo.plan import load_config, make_task, plan
from vlbias.zoo.store import ResultsStore

SMALL = "openclip:ViT-S-32-alt/random"  # 12 image blocks, 10 text blocks


def _cli(args, capsys) -> tuple[int, str, str]:
    code = main([str(a) for a in args])
    out = capsys.readouterr()
    return code, out.out, out.err


# ---------------------------------------------------------------------------------------------- EAT, every layer
@pytest.fixture(scope="module")
def eat_all_layers(tmp_path_factory):
    root = tmp_path_factory.mktemp("eat-depth")
    out = root / "eat"
    args = ["eat", "-m", SMALL, "--battery", "standard", "--layer", "all", "--permutations", 50, "--n-bootstrap", 20]
    code = main([str(a) for a in [*args, "--cache-dir", root / "cache", "--out", out]])
    assert code == 0
    return root, out


def test_eat_battery_over_every_layer(eat_all_layers, small_clip):
    from vlbias.audits.eat import AUDIT

    root, out = eat_all_layers
    res = pd.read_parquet(out / "results.parquet")
    ok = res[res["status"] == "ok"]
    # the text rows ran at every block of the 10-block text tower, each row stamped with its layer and reading
    assert sorted(ok["layer"].unique()) == list(range(1, 11)) and set(res["reading"]) == {"lens"}
    assert not res.duplicated(["test", "order", "layer"]).any()
    assert ok["ci_low"].notna().all() and (ok["ci_low"] <= ok["effect_size"]).all()
    per_layer = res.groupby("layer").size()
    assert per_layer.nunique() == 1  # every layer the same battery rows
    assert res.groupby("layer")["model_identity"].nunique().eq(1).all() and res["model_identity"].nunique() == 10
    record = json.loads((out / "record.json").read_text())
    assert [e["layer"] for e in record["model"]["layers"]] == list(range(1, 11))
    skipped = pd.read_csv(out / "skipped.csv")
    notes = skipped[skipped["item"].str.startswith("layer ")]
    assert list(notes["item"]) == ["layer 11", "layer 12"]
    assert "its text tower has 10 blocks, so it has no layer 11" in notes["reason"].iloc[0]
    assert (out / "plots" / "depth.png").stat().st_size > 5000
    # the last text block through the lens is the model's text embedding: the same effect sizes as the model itself
    opts = {"battery": "standard", "permutations": 50, "n_bootstrap": 20}
    own = AUDIT.run(small_clip, opts).results.set_index(["test", "order"])
    top = ok[ok["layer"] == 10].set_index(["test", "order"])
    text = top[top.index.get_level_values("order") == "all-text"]
    assert list(text.index.get_level_values("test")) == [
        "sent-weat1",
        "sent-weat2",
        "sent-weat3",
        "sent-weat3b",
        "sent-weat4",
        "sent-gender-names-valence",
        "sent-gender-terms-valence",
        "sent-weat10",
    ]  # the battery's all-text rows (its image rows need image sets this test does not have)
    np.testing.assert_allclose(text["effect_size"], own.loc[text.index, "effect_size"], atol=1e-5)
    np.testing.assert_array_equal(text["p_value"], own.loc[text.index, "p_value"])
    # the parts split back into one run per layer, each the run of that layer alone
    runs = split_layers(AuditResult.read(out))
    assert [r.layers for r in runs] == [[k] for k in range(1, 11)]
    assert runs[3].record.config_hash == record["model"]["layers"][3]["config_hash"]
    assert set(runs[3].results["layer"]) == {4}


def test_eat_depth_table_on_the_console(eat_all_layers, capsys):
    root, _ = eat_all_layers
    code, out, _ = _cli(
        ["eat", "-m", SMALL, "--test", "weat1", "--layer", "2,4", "--permutations", 50, "--n-bootstrap", 0]
        + ["--cache-dir", root / "cache"],
        capsys,
    )
    assert code == 0 and "Effect size d by layer (lens)" in out and "│ weat1 │ all-text │" in out
    code, out, _ = _cli(
        ["eat", "-m", SMALL, "--test", "weat1", "--layer", "2,4", "--permutations", 50, "--n-bootstrap", 0]
        + ["--cache-dir", root / "cache", "--format", "csv"],
        capsys,
    )
    table = pd.read_csv(__import__("io").StringIO(out))
    assert (
        code == 0
        and list(table["layer"]) == [2, 4]
        and list(table.columns[:4])
        == [
            "model",
            "model_identity",
            "layer",
            "reading",
        ]
    )


def test_the_report_shows_eat_depth_curves(eat_all_layers, tmp_path, capsys):
    _, out = eat_all_layers
    code, _, err = _cli(["report", out, "--out", tmp_path / "r"], capsys)
    assert code == 0, err
    page = (tmp_path / "r" / "eat.html").read_text()
    assert "Association tests over depth" in page and "layers 1–10, lens" in page
    assert "the sections below show layer 10 (lens), and the depth section every layer read" in page
    figures = sorted(p.name for p in (tmp_path / "r" / "figures").glob("eat-depth-*.png"))
    assert len(figures) == 1 and (tmp_path / "r" / "figures" / figures[0]).stat().st_size > 5000
    data = sorted((tmp_path / "r" / "data").glob("eat-depth-*.*"))  # a long table: compressed Parquet
    table = pd.read_parquet(data[0]) if data and data[0].suffix == ".parquet" else pd.read_csv(data[0])
    assert len(data) == 1 and sorted(table["layer"].unique()) == list(range(1, 11))


# ---------------------------------------------------------------------------------------------- zero-shot
def test_zeroshot_over_every_layer_and_its_report(tmp_path, capsys):
    cfd = make_cfd(tmp_path / "cfd")
    out = tmp_path / "zs"
    code, _, err = _cli(
        ["zeroshot", "-m", SMALL, "-d", f"cfd:{cfd['root']}", "--layer", "all", "--n-bootstrap", 20]
        + ["--cache-dir", tmp_path / "cache", "-o", out],
        capsys,
    )
    assert code == 0, err
    assert "10 layers: the tables hold every layer's rows" in err
    res = pd.read_parquet(out / "results.parquet")
    assert sorted(res["layer"].unique()) == list(range(1, 11))
    top1 = res[res["grouping"] != "all"]
    assert top1["top1_pct_low"].notna().all() and (top1["top1_pct_low"] <= top1["top1_pct"]).all()
    # every layer classifies the same images into the same groups; the shares of each layer sum to 100 per group
    sums = res[(res["kind"] == "label") & (res["grouping"] == "race+gender")].groupby(["layer", "group"])["top1_pct"]
    np.testing.assert_allclose(sums.sum(), 100.0)
    assert len(list((out / "plots" / "depth").glob("depth-*.png"))) >= 1
    code, _, err = _cli(["report", out, "--out", tmp_path / "r"], capsys)
    assert code == 0, err
    page = (tmp_path / "r" / "zeroshot.html").read_text()
    assert "Zero-shot over depth" in page and "Shares over depth" in page
    figures = list((tmp_path / "r" / "figures").rglob("depth-*.png"))
    assert figures and all(f.stat().st_size > 5000 for f in figures)


# ---------------------------------------------------------------------------------------------- perception
def test_perception_over_layers_and_its_report(tmp_path, capsys):
    from tests.perception_fixtures import write_causalface

    levels = {"age": (0.8, 2.6, 4.4), "smiling": (-2.5, 0.0, 3.0)}
    faces = write_causalface(tmp_path / "cf", seeds=(101, 202), levels=levels, size=64, uncorrected_smiling=False)
    out = tmp_path / "pe"
    code, _, err = _cli(
        ["perception", "-m", SMALL, "-d", f"causalface:{faces}", "--layer", "2,6,-1", "--n-bootstrap", 20]
        + ["--n-random-rankings", 0, "--pairs", 40, "--cache-dir", tmp_path / "cache", "-o", out],
        capsys,
    )
    assert code == 0, err
    fe = pd.read_parquet(out / "factor_effects.parquet")
    # -1: each tower's last block (12 of the image tower, 10 of the text tower), stamped as -1
    assert sorted(fe["layer"].unique()) == [-1, 2, 6] and set(fe["reading"]) == {"lens"}
    pooled = fe[fe["scale"] == "all scales"]
    assert {"age", "smiling"} <= set(pooled["dimension"]) and pooled["median_ci_low"].notna().all()
    code, _, err = _cli(["report", out, "--out", tmp_path / "r"], capsys)
    assert code == 0, err
    page = (tmp_path / "r" / "perception.html").read_text()
    # the usual section shows the last block (-1); the depth curve the block numbers (never both kinds on one axis)
    assert "the sections below show layer -1 (lens), and the depth section every layer read" in page
    assert "Perception over depth" in page and "layers 2, 6, lens" in page
    figures = sorted((tmp_path / "r" / "figures").glob("perception-depth-*.png"))
    assert len(figures) == 1 and figures[0].stat().st_size > 5000


# ---------------------------------------------------------------------------------------------- retrieval
def test_retrieval_over_layers(tmp_path, capsys):
    from tests.benchmark_fixtures import make_socialcounterfactuals

    rel = make_socialcounterfactuals(tmp_path / "sc", sets={"race-gender": {"chef": 2}})
    out = tmp_path / "rt"
    code, _, err = _cli(
        ["retrieval", "-m", SMALL, "-d", f"socialcounterfactuals:{rel['root']}", "--k", 4, "--n-bootstrap", 0]
        + ["--layer", "2,6", "--cache-dir", tmp_path / "cache", "--out", out],
        capsys,
    )
    assert code == 0, err
    res = pd.read_parquet(out / "results.parquet")
    assert sorted(res["layer"].unique()) == [2, 6] and set(res["reading"]) == {"lens"}
    assert len(res[res["layer"] == 2]) == len(res[res["layer"] == 6]) > 0 and " at layer 6: mean MaxSkew" in err


# ---------------------------------------------------------------------------------------------- sweeps
def test_sweep_layers_axis_one_pass_per_model(tmp_path, monkeypatch, capsys):
    from vlbias.models.backends.openclip import Backend

    passes = []
    real = Backend._embed_text_layers
    monkeypatch.setattr(
        Backend, "_embed_text_layers", lambda self, *a: passes.append((len(a[0]), sorted(a[1]))) or real(self, *a)
    )
    config = tmp_path / "sweep.yaml"
    config.write_text(
        f"models: [{SMALL}]\n"
        "audits:\n  eat: {tests: [weat1], orders: [all-text], permutations: 50, n_bootstrap: 0}\n"
        "layers: [null, 1, all]\nreading: raw\n"
        f"encoder: {{cache_dir: {tmp_path / 'cache'}, device: cpu}}\n"
    )
    cfg = load_config(config)
    tasks = plan(cfg)
    assert [t.layer for t in tasks] == [None, *range(1, 13)] and {t.reading for t in tasks[1:]} == {"raw"}
    # the task on the model's embedding keeps the id it has without layers:
    assert tasks[0].task_id == make_task(SMALL, "eat", tasks[0].options_dict).task_id
    assert len({t.task_id for t in tasks}) == 13
    code, _, err = _cli(["sweep", config, "--out", tmp_path / "out"], capsys)
    assert code == 0, err
    # weat1's 100 texts in two batches of 64 and 36 (the default batch size): each batch's one forward pass filled
    # the ten text layers of the ten layered tasks that ran
    assert passes == [(64, list(range(1, 11))), (36, list(range(1, 11)))]
    tab = ResultsStore(tmp_path / "out").query("select status, count(*) n from tasks group by status order by status")
    assert dict(zip(tab["status"], tab["n"])) == {"done": 11, "skipped": 2}
    rows = ResultsStore(tmp_path / "out").query("select layer, reading, effect_size from eat.results order by layer")
    assert list(rows["layer"].iloc[:10]) == list(range(1, 11)) and rows["layer"].isna().sum() == 1
    assert set(rows["reading"].dropna()) == {"raw"}
    code, _, err = _cli(["sweep", config, "--out", tmp_path / "out"], capsys)
    assert code == 0 and "(13 were already done)" in err
    code, _, err = _cli(["report", tmp_path / "out", "--out", tmp_path / "r"], capsys)
    assert code == 0, err
    page = (tmp_path / "r" / "eat.html").read_text()
    assert "Association tests over depth" in page and "layers 1–10, raw" in page


def test_sweep_layers_config_errors(tmp_path):
    from vlbias.errors import VlbiasError

    for body, message in [
        ("layers: [0]", "layers: 0: a layer is a transformer block number"),
        ("layers: [1, all, x]", "layers: 'x'"),
        ("reading: raw", "reading: applies to layers"),
        ("layers: all\nreading: logits", "--reading 'logits'"),
    ]:
        config = tmp_path / "c.yaml"
        config.write_text(f"models: [{SMALL}]\naudits: {{eat: {{}}}}\n{body}\n")
        with pytest.raises(VlbiasError, match=message) as e:
            load_config(config)
        assert str(e.value).startswith(str(config))
    config.write_text("models: [openclip:RN50/random]\naudits: {eat: {}}\nlayers: all\n")
    with pytest.raises(VlbiasError, match="layers: all: openclip:RN50/random: its image tower .ResNet."):
        plan(load_config(config))


# ---------------------------------------------------------------------------------------------- vectors files
def test_vectors_files_with_a_layer_column(tmp_path, capsys):
    words = tmp_path / "words.txt"
    words.write_text("\n".join(["rose", "tulip", "daisy", "ant", "wasp", "moth", "love", "peace", "hate", "war"]))
    vec = tmp_path / "v.parquet"
    code, _, err = _cli(
        ["embed", "-m", SMALL, "--texts", words, "--layer", "all", "--cache-dir", tmp_path / "c", "--out", vec], capsys
    )
    assert code == 0 and "layers 11, 12 left out" in err
    table = pd.read_parquet(vec)
    assert sorted(table["layer"].unique()) == list(range(1, 11)) and len(table) == 100
    test = tmp_path / "t.yaml"
    test.write_text(
        "name: flowers\nX: {name: flowers, texts: [rose, tulip, daisy]}\nY: {name: insects, texts: [ant, wasp, moth]}\n"
        "A: {name: pleasant, texts: [love, peace]}\nB: {name: unpleasant, texts: [hate, war]}\n"
    )
    common = ["--test-file", test, "--permutations", "exact", "--n-bootstrap", 0, "--format", "csv"]
    code, out, err = _cli(["eat", "-m", f"vectors:{vec}", "--layer", "all", *common], capsys)
    assert code == 0, err
    from_file = pd.read_csv(__import__("io").StringIO(out))
    code, out, err = _cli(["eat", "-m", SMALL, "--layer", "all", "--cache-dir", tmp_path / "c", *common], capsys)
    direct = pd.read_csv(__import__("io").StringIO(out))
    assert list(from_file["layer"]) == list(direct["layer"]) == list(range(1, 11))
    np.testing.assert_allclose(from_file["effect_size"], direct["effect_size"], atol=1e-6)
    code, out, err = _cli(["eat", "-m", f"vectors:{vec}", "--layer", "-1", *common], capsys)
    assert code == 0 and list(pd.read_csv(__import__("io").StringIO(out))["layer"]) == [10]
    code, _, err = _cli(["eat", "-m", f"vectors:{vec}", *common], capsys)
    assert code == 2 and "holds no vectors of the model's embedding (rows with a null layer)" in err
    assert "its layers: 1, 2, 3, 4, 5, 6, 7, 8, 9, 10" in err


# ---------------------------------------------------------------------------------------------- results and analysis
def _result(layer, effect, identity="m"):
    rec = RunRecord(
        audit="eat",
        model={"spec": "vectors:x", "identity": f"{identity}{layer}", "layer": layer, "reading": "raw"},
        options={},
        seed=0,
    )
    rows = pd.DataFrame({"test": ["t"], "order": ["all-text"], "effect_size": [effect]})
    return AuditResult("eat", {"results": rows}, rec, skipped=pd.DataFrame({"item": ["w"], "reason": ["r"]}))


def test_combine_and_split_layers_round_trip(tmp_path):
    combined = combine_layers([_result(1, 0.1), _result(2, 0.3)], notes=[("layer 3", "not run: too deep", 3)])
    assert list(combined.results["layer"]) == [1, 2] and list(combined.results["reading"]) == ["raw", "raw"]
    assert list(combined.results["model_identity"]) == ["m1", "m2"] and combined.layers == [1, 2]
    combined.write(tmp_path / "out")
    parts = split_layers(AuditResult.read(tmp_path / "out", lazy=True))
    assert [p.layers for p in parts] == [[1], [2]]
    assert [p.record.config_hash for p in parts] == [
        _result(1, 0.1).record.config_hash,
        _result(2, 0.3).record.config_hash,
    ]
    assert list(parts[1].results["effect_size"]) == [0.3] and list(parts[1].skipped["item"]) == ["w"]
    notes = pd.read_csv(tmp_path / "out" / "skipped.csv")
    assert list(notes.loc[notes["item"] == "layer 3", "layer"]) == [3]
    plain = _result(None, 0.5)
    assert split_layers(plain) == [plain] and plain.layers == [] and "layer" not in plain.stamped().columns


def _layered_zoo(root, with_embedding: bool):
    from tests.test_zoo_analysis import planted_zoo

    store, _, models = planted_zoo(root)  # the embedding rows: effects planted from the model facts
    rng = np.random.default_rng(3)
    base = store.query('select model, test, "order", effect_size from eat.results')
    for spec in models["spec"]:
        mine = base[base["model"] == spec]
        for layer in (2, 4, 6, 8):
            rows = mine[["test", "order"]].assign(
                effect_size=mine["effect_size"].to_numpy() + 0.05 * layer + rng.normal(scale=0.02, size=len(mine))
            )
            rec = RunRecord(
                "eat", {"spec": spec, "identity": f"{spec}@{layer}", "layer": layer, "reading": "lens"}, {}, 0
            )
            task = make_task(spec, "eat", {}, layer, "lens")
            store.write_part(task, AuditResult("eat", {"results": rows}, rec), {"model_identity": f"{spec}@{layer}"})
    if not with_embedding:
        import shutil

        for spec in models["spec"]:
            shutil.rmtree(store.part_dir(make_task(spec, "eat", {})))
    return store


def test_analyze_takes_layer_as_a_term(tmp_path, capsys):
    _layered_zoo(tmp_path / "zoo", with_embedding=True)
    db = tmp_path / "zoo"
    code, out, err = _cli(["analyze", "--db", db, "--no-plots", "--term", "layer", "--out", tmp_path / "a"], capsys)
    assert code == 0, err
    fixed = pd.read_csv(tmp_path / "a" / "mixed_model.csv").set_index("term")
    sd = np.std(np.tile([2, 4, 6, 8], 25 * 6), ddof=1)  # standardised over the rows: every model at each layer
    assert fixed.loc["layer", "ci_low"] <= 0.05 * sd <= fixed.loc["layer", "ci_high"]
    assert fixed.loc["layer", "p_value"] < 1e-6
    summary = json.loads((tmp_path / "a" / "analysis.json").read_text())
    assert summary["terms"] == ["layer"] and summary["mixed_model"]["n_obs"] == 25 * 6 * 4
    # without the term: the models' own embeddings, one row per model and test
    code, out, err = _cli(["analyze", "--db", db, "--no-plots", "--out", tmp_path / "b"], capsys)
    summary = json.loads((tmp_path / "b" / "analysis.json").read_text())
    assert code == 0 and summary["mixed_model"]["n_obs"] == 25 * 6
    assert "layer" not in set(pd.read_csv(tmp_path / "b" / "mixed_model.csv")["term"])


def test_analyze_refuses_layers_without_embeddings_or_the_term(tmp_path, capsys):
    _layered_zoo(tmp_path / "zoo", with_embedding=False)
    code, _, err = _cli(["analyze", "--db", tmp_path / "zoo", "--no-plots"], capsys)
    assert code == 2 and err.count("\n") == 1
    assert "rows hold layers 2, 4, 6, 8 of the models and none of their embeddings; add --term layer" in err
    code, _, err = _cli(["analyze", "--db", tmp_path / "zoo", "--no-plots", "--where", "layer = 8"], capsys)
    assert code == 0, err


def test_layers_and_mitigations_together(tmp_path, capsys):
    """A mitigation transforms the model's embedding: a sweep with both axes mitigates only the embedding's tasks,
    and the command line refuses --mitigation beside --layer in one line."""
    config = tmp_path / "sweep.yaml"
    config.write_text(
        f"models: [{SMALL}]\n"
        "audits:\n  eat: {tests: [weat1], orders: [all-text], permutations: 50, n_bootstrap: 0}\n"
        "layers: [null, 1, -1]\nmitigations: [none, hard_debias]\n"
    )
    tasks = plan(load_config(config))
    assert [(t.layer, t.mitigation) for t in tasks] == [(None, None), (None, "hard_debias"), (1, None), (-1, None)]
    assert len({t.task_id for t in tasks}) == 4
    # the raw embedding's task keeps its id; the mitigated one and each layer's differ from it
    assert tasks[0].task_id == make_task(SMALL, "eat", tasks[0].options_dict).task_id
    assert "hard_debias" in tasks[1].label() and "layer 1 (lens)" in tasks[2].label()
    code, _, err = _cli(
        ["eat", "-m", SMALL, "--test", "weat1", "--layer", "-1", "--mitigation", "hard_debias", "--no-cache"], capsys
    )
    assert code != 0 and "Traceback" not in err
    assert err.strip().splitlines()[-1] == (
        "vlbias: error: --mitigation hard_debias transforms the model's embedding, not a layer's; drop --layer "
        "(measure bias by depth and mitigation in separate runs)"
    )
