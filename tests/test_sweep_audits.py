"""The three real audits through a sweep: association tests, zero-shot on a CFD-layout folder and perception on a
CausalFace-layout folder.

Two random-init models (two seeds of one architecture) run every audit; their catalogue facts come from a user
catalogue file, so `vlbias analyze` can run the zero-shot audit's grouped model comparison across the zoo.
"""

from __future__ import annotations

import pandas as pd
import pytest
import yaml

from tests.faces_fixtures import make_cfd
from tests.perception_fixtures import write_causalface
from vlbias.cli import main
from vlbias.stimuli.zeroshot import CONTENT_WARNING
from vlbias.zoo.store import ResultsStore

MODELS = ["openclip:ViT-S-32-alt/random", "openclip:ViT-S-32-alt/random-1"]


@pytest.fixture(scope="module")
def swept(tmp_path_factory):
    root = tmp_path_factory.mktemp("audits")
    cfd = make_cfd(root / "cfd")["root"]
    levels = {"age": (0.8, 2.6, 4.4), "smiling": (-2.5, 0.0, 3.0), "pose": (0.0, 3.0), "lighting": (-1.0, 3.0)}
    causalface = write_causalface(root / "causalface", seeds=(101, 202), levels=levels, uncorrected_smiling=False)
    (root / "facts.csv").write_text(
        "spec,architecture,pretraining_dataset,dataset_family\n"
        f"{MODELS[0]},ViT-S-32-alt,small data,laion\n"
        f"{MODELS[1]},ViT-S-32-alt,big data,laion\n",
        encoding="utf-8",
    )
    config = {
        "models": MODELS,
        "catalogue": ["facts.csv"],
        "audits": {
            "eat": {"tests": ["weat1", "weat10"], "permutations": 2000, "n_bootstrap": 50},
            "zeroshot": {"n_bootstrap": 20},
            "perception": {"dataset": f"causalface:{causalface}", "n_bootstrap": 0, "n_random_rankings": 0, "pairs": 40},
        },
        "datasets": [f"cfd:{cfd}"],
        "encoder": {"device": "cpu", "cache_dir": str(root / "cache")},
    }
    path = root / "zoo.yaml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    assert main(["sweep", str(path)]) == 0
    return root, path


def test_every_audit_runs_for_every_model_into_the_database(swept, capsys):
    root, _ = swept
    store = ResultsStore(root / "zoo")
    tasks = store.query("SELECT model, audit, dataset, status, content_warning FROM tasks ORDER BY audit, model")
    assert tasks["status"].eq("done").all() and len(tasks) == 6
    eat = store.query("SELECT * FROM eat.results_with_models ORDER BY model, test")
    assert len(eat) == 4 and set(eat["test"]) == {"weat1", "weat10"} and set(eat["order"]) == {"all-text"}
    assert eat["effect_size"].between(-2, 2).all() and eat["p_value"].between(0, 1).all()
    assert (eat["ci_low"] <= eat["effect_size"]).all() and (eat["effect_size"] <= eat["ci_high"]).all()
    assert set(eat["pretraining_dataset"]) == {"small data", "big data"}
    zs = tasks[tasks["audit"] == "zeroshot"]
    assert zs["dataset"].str.startswith("cfd:").all() and zs["content_warning"].notna().all()
    assert tasks[tasks["audit"] == "perception"]["dataset"].str.startswith("causalface:").all()
    tables = set(store.tables()["table"])
    assert {"zeroshot.images", "zeroshot.results", "perception.results", "perception.factor_effects"} <= tables
    summary = store.query("SELECT * FROM zeroshot.results_with_models")
    assert set(summary["model"]) == set(MODELS) and set(summary["pretraining_dataset"]) == {"small data", "big data"}
    assert summary["stimuli"].str.contains("; birhane2024@").all()
    # the content warning travels with the Parquet parts
    import pyarrow.parquet as pq

    part = next((root / "zoo" / "parts" / "zeroshot").glob("*/results.parquet"))
    assert b"vlbias.content_warning" in pq.read_schema(part).metadata


def test_analyze_runs_the_zero_shot_comparison_across_the_zoo(swept, capsys):
    root, _ = swept
    code = main(
        ["analyze", "--db", str(root / "zoo"), "--compare-by", "pretraining_dataset", "--baseline", "small data"]
    )
    out = capsys.readouterr().out
    assert code == 0
    # the warning once, as written (it starts with its own "CONTENT WARNING:"), on a line of its own
    assert out.count("CONTENT WARNING") == 1 and f"\n\n{CONTENT_WARNING}\n" in out
    # two models of one architecture and data family cannot separate the upstream facts: said, not fatal
    assert "mixed model: not fitted" in out
    comparison = pd.read_csv(root / "zoo" / "analysis" / "zeroshot_comparison.csv")
    assert set(comparison["protocol"]) == {"birhane2024"} and len(comparison)
    assert (root / "zoo" / "analysis" / "CONTENT_WARNING.txt").is_file()
    assert "analysis.zeroshot_comparison" in set(ResultsStore(root / "zoo").tables()["table"])


def test_a_rerun_of_the_real_audits_does_nothing(swept, capsys):
    root, path = swept
    assert main(["sweep", str(path)]) == 0
    assert "(6 were already done)" in capsys.readouterr().err
