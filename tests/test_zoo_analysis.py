"""Upstream analyses: the mixed model and the correlations, checked by hand, by a second path and on planted data."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from vlbias.audits.base import AuditResult, RunRecord
from vlbias.cli import main
from vlbias.stats.correlation import benjamini_hochberg, correlation, correlations_by_group
from vlbias.stats.mixed import fit_mixed_model
from vlbias.zoo.plan import make_task
from vlbias.zoo.store import ResultsStore


# ---------------------------------------------------------------------------------------------- correlations
def test_benjamini_hochberg_by_hand():
    adj = benjamini_hochberg([0.01, 0.04, 0.03, 0.5, np.nan])
    np.testing.assert_allclose(adj[:4], [0.04, 0.16 / 3, 0.16 / 3, 0.5])
    assert np.isnan(adj[4])  # a missing p-value is not part of the family


def test_pearson_interval_is_fishers_and_matches_scipy():
    from scipy import stats

    rng = np.random.default_rng(1)
    x = rng.normal(size=25)
    y = 0.5 * x + rng.normal(size=25)
    c = correlation(x, y, "pearson")
    ref = stats.pearsonr(x, y)
    lo, hi = ref.confidence_interval(0.95)
    assert c["r"] == pytest.approx(ref.statistic) and c["p_value"] == pytest.approx(ref.pvalue)
    assert (c["ci_low"], c["ci_high"]) == pytest.approx((lo, hi))
    z = np.arctanh(c["r"])
    assert c["ci_high"] == pytest.approx(np.tanh(z + 1.959963984540054 / np.sqrt(22)))


def test_spearman_interval_covers_at_the_nominal_rate():
    """Bivariate normal, rho_s known in closed form: 6/pi * asin(rho/2); 2000 samples of n = 40 (t-test p range)."""
    from scipy import stats

    rho, n, sims = 0.5, 40, 2000
    true = 6 / np.pi * np.arcsin(rho / 2)
    rng = np.random.default_rng(7)
    cov = [[1, rho], [rho, 1]]
    xy = rng.multivariate_normal([0, 0], cov, size=(sims, n))
    rx = stats.rankdata(xy[..., 0], axis=1)
    ry = stats.rankdata(xy[..., 1], axis=1)
    covered = 0
    for i in range(sims):
        c = correlation(rx[i], ry[i], "spearman")  # ranks in, the same rho out
        covered += c["ci_low"] <= true <= c["ci_high"]
    assert 0.93 <= covered / sims <= 0.97


def test_spearman_p_is_exact_for_a_small_zoo():
    """3 or 4 models in perfect rank order: the t approximation says p = 0; the truth is 2/3! and 2/4!."""
    from itertools import permutations

    from scipy import stats

    assert correlation([1, 2, 3], [2, 4, 9], "spearman")["p_value"] == pytest.approx(2 / 6)
    assert correlation([1, 2, 3, 4], [2, 4, 9, 10], "spearman")["p_value"] == pytest.approx(2 / 24)
    # a non-perfect case against a brute-force enumeration of all pairings
    x, y = [0.1, 0.5, 0.2, 0.9, 0.4, 0.7], [1.0, 3.0, 4.0, 6.0, 2.0, 5.0]
    rho = stats.spearmanr(x, y).statistic
    perms = list(permutations(y))
    extreme = sum(abs(stats.spearmanr(x, p).statistic) >= abs(rho) - 1e-12 for p in perms)
    assert correlation(x, y, "spearman")["p_value"] == pytest.approx(extreme / len(perms))


def test_spearman_sampled_p_agrees_with_full_enumeration():
    """n = 8 is past the exact range (8! > 20,000 resamples): the sampled p is within Monte-Carlo error of all 8!."""
    from itertools import permutations

    from scipy import stats

    x = np.array([0.3, 1.2, 0.7, 2.0, 1.1, 0.2, 1.6, 0.9])
    y = np.array([2.0, 1.0, 3.5, 4.0, 2.2, 0.5, 3.0, 5.0])
    rx, ry = stats.rankdata(x), stats.rankdata(y)
    rx, ry = rx - rx.mean(), ry - ry.mean()
    obs = abs(rx @ ry)
    null = np.abs(ry[np.array(list(permutations(range(8))))] @ rx)
    exact = np.mean(null >= obs * (1 - 1e-9))
    p = correlation(x, y, "spearman")["p_value"]
    assert 0.01 < exact < 0.5
    assert abs(p - exact) < 4 * np.sqrt(exact * (1 - exact) / 20_000)
    assert correlation(x, y, "spearman")["p_value"] == p  # seeded


def test_degenerate_inputs_give_missing_values_not_errors():
    assert np.isnan(correlation([1, 2], [3, 4])["r"])
    assert np.isnan(correlation([1, 1, 1, 1], [1, 2, 3, 4])["r"])
    c = correlation([1, 2, np.nan, 4, 5], [2, 1, 3, np.nan, 6])
    assert c["n"] == 3 and np.isnan(c["ci_low"])  # n = 3: an r, but no interval


def test_planted_correlations_survive_bh_and_null_ones_do_not():
    rng = np.random.default_rng(3)
    rows = []
    for g in range(8):
        x = rng.normal(size=40)
        y = (0.7 * x if g < 3 else 0) + rng.normal(scale=0.5 if g < 3 else 1.0, size=40)
        rows += [{"test": f"t{g}", "order": "text", "x": a, "y": b} for a, b in zip(x, y)]
    out = correlations_by_group(pd.DataFrame(rows), "x", "y", ["test", "order"])
    sig = out[out["significant_bh"]]
    assert set(sig["test"]) == {"t0", "t1", "t2"} and set(sig["method"]) == {"pearson", "spearman"}
    for method in ("pearson", "spearman"):
        part = out[out["method"] == method]
        np.testing.assert_allclose(part["p_bh"], benjamini_hochberg(part["p_value"]))


# ---------------------------------------------------------------------------------------------- mixed model
def planted_frame(seed=0, n_models=40, n_groups=6, beta=(0.2, 0.15, -0.25), fam=0.3, dfam=-0.2, sd=(0.3, 0.1, 0.1)):
    rng = np.random.default_rng(seed)
    lp, ld = rng.normal(size=n_models), rng.normal(size=n_models)
    af = rng.choice(["A", "B"], size=n_models)
    dfam_ = rng.choice(["X", "Y", "Z"], size=n_models)
    u = rng.normal(scale=sd, size=(n_groups, 3))
    rows = []
    for g in range(n_groups):
        y = (
            beta[0]
            + u[g, 0]
            + (beta[1] + u[g, 1]) * lp
            + (beta[2] + u[g, 2]) * ld
            + fam * (af == "B")
            + dfam * (dfam_ == "Y")
            + rng.normal(scale=0.1, size=n_models)
        )
        rows.append(
            pd.DataFrame(
                {
                    "effect_size": y,
                    "log_params": lp,
                    "log_dataset_size": ld,
                    "architecture_family": af,
                    "dataset_family": dfam_,
                    "group": f"g{g}",
                }
            )
        )
    return pd.concat(rows, ignore_index=True)


def fit(df, **kw):
    return fit_mixed_model(
        df,
        "effect_size",
        ["log_params", "log_dataset_size"],
        ["architecture_family", "dataset_family"],
        "group",
        **kw,
    )


@pytest.fixture(scope="module")
def planted():
    df = planted_frame()
    return df, fit(df, reference={"architecture_family": "A", "dataset_family": "X"}, standardise=False)


def test_mixed_model_recovers_planted_effects(planted):
    _, res = planted
    est = res.fixed.set_index("term")
    truth = {
        "log_params": 0.15,
        "log_dataset_size": -0.25,
        "architecture_family[B]": 0.3,
        "dataset_family[Y]": -0.2,
        "dataset_family[Z]": 0.0,
    }
    for term, value in truth.items():
        row = est.loc[term]
        assert row["ci_low"] <= value <= row["ci_high"], term
        assert abs(row["estimate"] - value) < 3 * row["std_error"], term
    assert est.loc["architecture_family[B]", "p_value"] < 1e-6 and est.loc["dataset_family[Z]", "p_value"] > 0.01
    assert res.n_obs == 240 and res.n_groups == 6 and res.converged
    assert res.re_formula == "~log_params + log_dataset_size" and res.method == "REML"
    sds = res.random.set_index(["term_1", "term_2"])["sd_or_correlation"]
    assert 0.1 < sds[("intercept", "intercept")] < 0.8 and 0.05 < sds[("residual", "residual")] < 0.2


def test_fixed_effects_equal_ols_in_a_balanced_design(planted):
    """Every group has the same models, so the random-effects columns lie in the fixed design and GLS = OLS."""
    import statsmodels.formula.api as smf

    df, res = planted
    ols = smf.ols(
        "effect_size ~ log_params + log_dataset_size + C(architecture_family, Treatment('A'))"
        " + C(dataset_family, Treatment('X'))",
        df,
    ).fit()
    got = res.fixed.set_index("term")["estimate"]
    assert got["log_params"] == pytest.approx(ols.params["log_params"], abs=2e-4)
    assert got["log_dataset_size"] == pytest.approx(ols.params["log_dataset_size"], abs=2e-4)
    assert got["architecture_family[B]"] == pytest.approx(
        ols.params["C(architecture_family, Treatment('A'))[T.B]"], abs=2e-4
    )


def test_standardising_rescales_coefficients_by_the_sd(planted):
    df, raw = planted
    std = fit(df, reference={"architecture_family": "A", "dataset_family": "X"})
    sd = std.scaling.set_index("predictor")["sd"]
    r, s = raw.fixed.set_index("term")["estimate"], std.fixed.set_index("term")["estimate"]
    for term in ("log_params", "log_dataset_size"):
        assert s[term] == pytest.approx(r[term] * sd[term], rel=2e-3)
    assert s["architecture_family[B]"] == pytest.approx(r["architecture_family[B]"], abs=2e-3)


def test_reference_levels_are_configurable(planted):
    df, res = planted
    swapped = fit(df, reference={"architecture_family": "B", "dataset_family": "Y"}, standardise=False)
    a, b = res.fixed.set_index("term")["estimate"], swapped.fixed.set_index("term")["estimate"]
    assert b["architecture_family[A]"] == pytest.approx(-a["architecture_family[B]"], abs=2e-3)
    assert b["dataset_family[X]"] == pytest.approx(-a["dataset_family[Y]"], abs=2e-3)
    assert b["dataset_family[Z]"] == pytest.approx(a["dataset_family[Z]"] - a["dataset_family[Y]"], abs=2e-3)
    default = fit(df)  # the most common level
    assert default.reference["architecture_family"] == df["architecture_family"].value_counts().idxmax()
    with pytest.raises(ValueError, match="reference level 'Q'"):
        fit(df, reference={"architecture_family": "Q"})
    one = df.assign(dataset_family="X")
    res1 = fit(one)
    assert "dataset_family has one level" in " ".join(res1.warnings)
    assert not res1.fixed["term"].str.startswith("dataset_family").any()


# ---------------------------------------------------------------------------------------------- end to end
def planted_zoo(root, seed=5):
    """An EAT-like results database over real catalogue models, effect sizes planted from their facts."""
    from vlbias.models.catalogue import shipped_catalogue

    cat = shipped_catalogue()
    cat = cat[
        cat["duplicate_of"].isna()
        & cat["n_params"].notna()
        & cat["dataset_size"].notna()
        & cat["dataset_family"].isin(["laion", "openai", "datacomp"])
        & cat["architecture_family"].isin(["ViT-B", "ViT-L"])  # both families in every dataset family: identifiable
    ]
    rng = np.random.default_rng(seed)
    models = cat.sample(frac=1, random_state=seed).reset_index(drop=True)  # 25 models
    lp = np.log10(models["n_params"].astype(float).to_numpy())
    ld = np.log10(models["dataset_size"].astype(float).to_numpy())
    n_tests = 6  # standardised as the analysis does: over the rows (each model once per test)
    zp = (lp - lp.mean()) / np.repeat(lp, n_tests).std(ddof=1)
    zd = (ld - ld.mean()) / np.repeat(ld, n_tests).std(ddof=1)
    acc = rng.uniform(0.3, 0.8, size=len(models))
    za = (acc - acc.mean()) / acc.std()
    tests = [(t, o) for t in ("flowers", "race", "gender") for o in ("text", "image")]
    store = ResultsStore(root)
    effects = {}
    for k, (test, order) in enumerate(tests):
        u = rng.normal(scale=(0.2, 0.05, 0.05))
        y = (
            0.1
            + u[0]
            + (0.3 + u[1]) * zp
            + (-0.2 + u[2]) * zd
            + 0.25 * (models["dataset_family"] == "laion").to_numpy()
            + (0.3 * za if k < 2 else 0.0)
            + rng.normal(scale=0.08, size=len(models))
        )
        effects[(test, order)] = y
    for i, spec in enumerate(models["spec"]):
        rows = pd.DataFrame([{"test": t, "order": o, "effect_size": effects[(t, o)][i]} for t, o in tests])
        rec = RunRecord(audit="eat", model={"spec": spec, "identity": f"id{i}"}, options={}, seed=0)
        task = make_task(spec, "eat", {})
        store.write_part(task, AuditResult("eat", {"results": rows}, rec), {"model_identity": f"id{i}"})
    accuracy = root / "acc.csv"
    pd.DataFrame({"spec": models["spec"], "average": acc}).to_csv(accuracy, index=False)
    return store, accuracy, models


def test_vlbias_analyze_on_a_planted_zoo(tmp_path, capsys):
    store, accuracy, models = planted_zoo(tmp_path / "zoo")
    assert main(["results", "import-accuracy", str(accuracy), "--db", str(tmp_path / "zoo")]) == 0
    capsys.readouterr()
    code = main(
        ["analyze", "--db", str(tmp_path / "zoo"), "--reference", "dataset_family=openai", "--out", str(tmp_path / "a")]
    )
    out = capsys.readouterr().out
    assert code == 0 and "reference levels:" in out and "dataset_family=openai" in out
    fixed = pd.read_csv(tmp_path / "a" / "mixed_model.csv").set_index("term")
    for term, truth in (("log_params", 0.3), ("log_dataset_size", -0.2), ("dataset_family[laion]", 0.25)):
        assert fixed.loc[term, "ci_low"] <= truth <= fixed.loc[term, "ci_high"], term
    corr = pd.read_csv(tmp_path / "a" / "bias_vs_accuracy.csv")
    sig = corr[corr["significant_bh"] & (corr["method"] == "pearson")]
    assert set(zip(sig["test"], sig["order"])) == {("flowers", "text"), ("flowers", "image")}
    data = pd.read_csv(tmp_path / "a" / "bias_vs_accuracy_data.csv")
    assert (
        len(data) == len(models) * 6 and not data.duplicated(["model", "test", "order"]).any()
    )  # one row per model per test
    for png in ("mixed_model_coefficients.png", "bias_vs_accuracy.png"):
        assert (tmp_path / "a" / png).stat().st_size > 5000
    tables = set(store.tables()["table"])
    assert {"analysis.mixed_model", "analysis.bias_vs_accuracy", "analysis.bias_vs_accuracy_data"} <= tables
    one = ["analyze", "--db", str(tmp_path / "zoo"), "--no-plots", "--out", str(tmp_path / "one")]
    assert main([*one, "--where", "test = 'flowers' AND \"order\" = 'text'"]) == 0
    out = capsys.readouterr().out  # one group and one test, never "1 groups" or "1 tests"
    assert out.startswith("mixed model: 25 rows, 25 models, 1 group (0 rows without the needed facts left out: ")
    assert "\nbias vs downstream accuracy (average), BH across 1 test:\n" in out


def test_rows_left_out_tell_whole_models_from_single_rows():
    from vlbias.zoo.analyze import AnalysisSettings, mixed_model_data

    facts = {"n_params": 1e8, "dataset_size": 4e8, "architecture_family": "ViT-B", "dataset_family": "laion"}
    df = pd.DataFrame(
        [
            {"model": "a", "test": "t1", "order": "text", "effect_size": 0.5, **facts},
            {"model": "a", "test": "t2", "order": "text", "effect_size": 0.1, **facts},
            {"model": "b", "test": "t1", "order": "text", "effect_size": 0.2, **facts},
            {"model": "b", "test": "t2", "order": "text", "effect_size": np.nan, **facts},  # undefined d
            {"model": "c", "test": "t1", "order": "text", "effect_size": 0.3, **{**facts, "dataset_size": None}},
            {"model": "c", "test": "t2", "order": "text", "effect_size": 0.4, **{**facts, "dataset_size": None}},
        ]
    )
    data, info = mixed_model_data(df, AnalysisSettings())
    assert sorted(data["model"]) == ["a", "a", "b"]
    assert info["rows"] == 3 and info["rows_left_out"] == 3 and info["models"] == 2
    assert info["models_left_out"] == ["c"] and info["models_partly_left_out"] == ["b"]


def test_analyze_errors(tmp_path, capsys):
    store, _, _ = planted_zoo(tmp_path / "zoo")
    db = str(tmp_path / "zoo")
    for args, message in [
        (["--audit", "zeroshot"], "no zeroshot.results table"),
        (["--effect", "d"], "no column d"),
        (["--reference", "colour=red"], "--reference 'colour=red'"),
        (["--reference", "dataset_family=webli"], "reference level 'webli'"),
        (["--where", "test = 'nothing'"], "no rows"),
    ]:
        code = main(["analyze", "--db", db, "--no-plots", *args])
        err = capsys.readouterr().err
        assert code == 2 and message in err and err.count("\n") == 1, (args, err)


def test_audit_zoo_analysis_hook(tmp_path):
    from dataclasses import replace

    from tests.sweep_fixtures import TEXTPROBE
    from vlbias.audits.registry import register, unregister
    from vlbias.zoo.analyze import AnalysisSettings, analyze

    store, _, _ = planted_zoo(tmp_path / "zoo")

    def by_family(runs, facts, options):
        rows = [
            {"dataset_family": facts[r.record.model["spec"]]["dataset_family"], "effect_size": d}
            for r in runs
            for d in r.results["effect_size"]
        ]
        assert options == {"by": "dataset_family"}
        return {"by_family": pd.DataFrame(rows).groupby("dataset_family", as_index=False)["effect_size"].mean()}

    register(replace(TEXTPROBE, name="eat", zoo_analysis=by_family), replace=True)
    try:
        summary = analyze(store, tmp_path / "a", AnalysisSettings(compare={"by": "dataset_family"}), plots=False)
    finally:
        unregister("eat")
    got = summary["tables"]["eat_by_family"]
    assert set(got["dataset_family"]) == {"laion", "openai", "datacomp"}
    assert "analysis.eat_by_family" in set(store.tables()["table"])


# ---------------------------------------------------------------------------------------------- model facts
def _factless_zoo(root, n_models: int):
    """EAT parts of ``n_models`` models the catalogue knows nothing of, effect sizes planted from facts kept apart."""
    rng = np.random.default_rng(3)
    store = ResultsStore(root)
    facts = []
    for i in range(n_models):
        spec = f"hf:lab/clip-{i}"
        size, data = 10 ** (7 + i % 3), 10 ** (8 + (i // 2) % 3)
        rows = pd.DataFrame(
            [
                {"test": t, "order": "all-text", "effect_size": 0.1 * np.log10(size) + rng.normal(scale=0.05)}
                for t in ("weat1", "weat7", "weat8")
            ]
        )
        rec = RunRecord(audit="eat", model={"spec": spec, "identity": f"id{i}"}, options={}, seed=0)
        store.write_part(make_task(spec, "eat", {}), AuditResult("eat", {"results": rows}, rec), {})
        family, dfam = ("ViT-B", "laion") if i % 2 else ("ViT-L", "openai")
        facts.append(f"{spec},{size},{data},{family},{dfam}")
    catalogue = root.parent / "facts.csv"
    catalogue.write_text(
        "spec,n_params,dataset_size,architecture_family,dataset_family\n" + "\n".join(facts) + "\n", encoding="utf-8"
    )
    return store, catalogue


def test_facts_added_after_the_sweep_are_picked_up_and_the_advice_names_the_reason(tmp_path, capsys):
    store, catalogue = _factless_zoo(tmp_path / "zoo", 6)
    db = str(tmp_path / "zoo")
    assert main(["analyze", "--db", db, "--no-plots"]) == 2  # nothing else to analyse: the reason is the answer
    out = capsys.readouterr().err
    assert (
        "vlbias: error: missing model facts: the mixed model needs 3 models with a known parameter count, "
        "dataset size, architecture family and dataset family, and 0 of the 6 models have them: hf:lab/clip-0 lacks "
        "parameter count, architecture family, dataset family, dataset size;"
    ) in out
    assert "`vlbias results facts --catalogue FILE` or `vlbias analyze --catalogue FILE`" in out
    assert main(["results", "facts", "--db", db, "--catalogue", str(catalogue)]) == 0
    err = capsys.readouterr().err
    assert "hf:lab/clip-1: architecture_family, dataset_family, dataset_size, n_params" in err
    assert "facts of 6 model(s) changed" in err
    models = store.query("SELECT model, n_params, dataset_size, architecture_family FROM models ORDER BY model")
    assert models["n_params"].tolist() == [10**7, 10**8, 10**9, 10**7, 10**8, 10**9]
    assert models["architecture_family"].tolist() == ["ViT-L", "ViT-B"] * 3
    assert main(["analyze", "--db", db, "--no-plots"]) == 0  # the facts stay: no file needed again
    out = capsys.readouterr().out
    assert out.startswith("mixed model: 18 rows, 6 models, 3 groups")


def test_analyze_takes_a_catalogue_file_and_says_when_models_are_too_few(tmp_path, capsys):
    store, catalogue = _factless_zoo(tmp_path / "zoo", 4)
    assert main(["analyze", "--db", str(tmp_path / "zoo"), "--no-plots", "--catalogue", str(catalogue)]) == 0
    captured = capsys.readouterr()
    assert captured.out.startswith("mixed model: 12 rows, 4 models, 3 groups")
    assert "facts of hf:lab/clip-0 refreshed: " in captured.err
    two, catalogue2 = _factless_zoo(tmp_path / "two" / "zoo", 2)
    assert main(["analyze", "--db", str(tmp_path / "two" / "zoo"), "--no-plots", "--catalogue", str(catalogue2)]) == 2
    out = capsys.readouterr().err
    assert (
        "vlbias: error: too few models: the mixed model separates upstream facts across models and needs "
        "at least 3; these results have 2 (sweep more models)"
    ) in out


def test_a_loaded_encoder_gives_the_facts_the_catalogue_lacks(tmp_path):
    """MiniLM has no catalogue row: its architecture and parameter count come from the loaded encoder."""
    import yaml

    config = {
        "models": ["st:all-MiniLM-L6-v2"],
        "audits": {"eat": {"tests": ["weat7"], "permutations": 100, "n_bootstrap": 0}},
        "encoder": {"device": "cpu", "cache_dir": str(tmp_path / "cache")},
    }
    path = tmp_path / "zoo.yaml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    assert main(["sweep", str(path), "--out", str(tmp_path / "zoo")]) == 0
    models = ResultsStore(tmp_path / "zoo").query("SELECT * FROM models")
    row = models.iloc[0]
    assert row["architecture"] == "BertModel" and row["n_params"] == 22_713_216 and row["embed_dim"] == 384
    assert pd.isna(row["dataset_size"])  # what no catalogue and no encoder knows stays unknown
