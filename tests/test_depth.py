"""Bias by depth, end to end: audits over every layer of a random-init open_clip model from the command line, a sweep
with a layers: axis, vectors files with a layer column, the report's depth curves and the upstream analysis with
layer as a term (vlbias.models.layers)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from vlbias.audits.base import AuditResult, RunRecord, combine_layers, split_layers
from vlbias.cli import main
from vlbias.zoo.plan import load_config, make_task, plan

SMALL = "openclip:ViT-S-32-alt/random"  # 12 image blocks, 10 text blocks


def _cli(args, capsys) -> tuple[int, str, str]:
    code = main([str(a) for a in args])
    out = capsys.readouterr()
    return code, out.out, out.err


# ---------------------------------------------------------------------------------------------- EAT, every layer


# ---------------------------------------------------------------------------------------------- zero-shot


# ---------------------------------------------------------------------------------------------- sweeps


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
