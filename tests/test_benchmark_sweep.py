"""The four benchmarks of issue 17 in one sweep of two models, then in the report: SocialCounterfactuals and PATA
through the retrieval audit (crossed with the config's datasets, each with the protocol published on it), FACET
through the zero-shot audit, MMBias through the EAT battery; each release in its own layout."""

from __future__ import annotations

import json

import numpy as np
import pytest
import yaml

from tests.benchmark_fixtures import facet_person, make_facet, make_mmbias, make_pata, make_socialcounterfactuals
from tests.helpers import write_parquet_vectors
from vlbias.datasets import load_dataset
from vlbias.models.images import list_image_folder
from vlbias.report import build_report
from vlbias.stimuli.zeroshot import load_protocol
from vlbias.zoo.plan import load_config
from vlbias.zoo.runner import run_sweep
from vlbias.zoo.store import ResultsStore


@pytest.fixture(scope="module")
def swept(tmp_path_factory):
    root = tmp_path_factory.mktemp("benchmarks")
    sc = make_socialcounterfactuals(root / "sc", sets={"race-gender": {"chef": 2}, "physical-gender": {"nurse": 2}})
    pata = make_pata(
        root / "pata", [f"office_{r}_{g}_young" for r in ("black", "caucasian") for g in ("male", "female")]
    )
    plan = [("doctor", "masc"), ("doctor", "fem"), ("nurse", "masc"), ("nurse", "fem")] * 10  # 10 people a contrast
    people = [facet_person(i, f"sa_{i // 2}.jpg", c, (0 if i % 2 else 30, 0, 20, 40), gender=g, skin={3: 3})
              for i, (c, g) in enumerate(plan)]  # fmt: skip
    facet = make_facet(root / "facet", people)
    mmbias = make_mmbias(root / "mmbias", per_group=2)
    keys = []
    for spec in (f"socialcounterfactuals:{sc['root']}", f"pata:{pata['root']}", f"facet:{facet['root']}"):
        ds = load_dataset(spec)
        keys += list(ds.table["key"])
        if ds.captions is not None:
            keys += list(ds.captions["caption"])
    keys += ["A photo of a chef", "A photo of a nurse"]
    keys += [p for t in load_protocol("facet").tasks for ps in t.prompts().values() for p in ps]
    ph = mmbias["phrases"]
    keys += ph["pleasant_phrases"] + ph["unpleasant_phrases"] + [t for v in ph["category_phrases"].values() for t in v]
    keys += [str(p) for p in list_image_folder(mmbias["root"] / "data" / "Images")[0]]
    keys = list(dict.fromkeys(keys))
    models = []
    for seed in (1, 2):
        path = root / f"model{seed}.parquet"
        write_parquet_vectors(path, keys, np.random.default_rng(seed).normal(size=(len(keys), 24)).astype(np.float32))
        models.append(f"vectors:{path}")
    config = {
        "models": models,
        "audits": {
            "retrieval": {"n_bootstrap": 20, "k": 4},
            "zeroshot": {"dataset": f"facet:{facet['root']}", "protocol": "facet", "n_bootstrap": 20},
            "eat": {"battery": "mmbias", "mmbias": str(mmbias["root"]), "permutations": 100, "n_bootstrap": 10},
        },
        "datasets": [f"socialcounterfactuals:{sc['root']}", f"pata:{pata['root']}"],
        "encoder": {"device": "cpu", "cache_dir": str(root / "cache")},
    }
    (root / "zoo.yaml").write_text(yaml.safe_dump(config), encoding="utf-8")
    summary = run_sweep(load_config(root / "zoo.yaml"), out=root / "zoo")
    return root, summary


def test_every_benchmark_runs_for_every_model(swept):
    root, summary = swept
    assert summary.total == 8 and all(o.status == "done" for o in summary.outcomes), [o.error for o in summary.outcomes]
    store = ResultsStore(root / "zoo")
    tasks = store.query("SELECT model, audit, dataset FROM tasks ORDER BY audit, dataset, model")
    assert tasks.groupby("audit").size().to_dict() == {"eat": 2, "retrieval": 4, "zeroshot": 2}
    assert {d.split(":")[0] for d in tasks.loc[tasks["audit"] == "retrieval", "dataset"]} == {
        "pata",
        "socialcounterfactuals",
    }


def test_the_report_presents_them(swept):
    root, _ = swept
    report = build_report(root / "zoo", root / "report", workers=1).out
    marker = json.loads((report / "report.json").read_text())
    assert marker["errors"] == [] and "retrieval.html" in marker["pages"]
    page = (report / "retrieval.html").read_text()
    assert "MaxSkew@k" in page and "socialcounterfactuals" in page and "pata" in page
    assert "Content warning" in page  # PATA's negative captions
    zeroshot = (report / "zeroshot.html").read_text()
    assert "Recall disparities by class" in zeroshot
    eat = (report / "eat.html").read_text()
    assert "mmbias-christian-muslim" in eat
