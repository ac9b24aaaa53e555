"""`vlbias report`: the report of a small real sweep (every audit, random-init open_clip and `vectors:` models), of
single audit output folders, as Markdown, every bad input, and the pages checked in a real (headless) Chromium."""

from __future__ import annotations

import json
import os
import re
import shutil
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote

import pandas as pd
import pytest

from tests.report_fixtures import MINILM, OPENCLIP, build_sweep
from vlbias.cli import main
from vlbias.zoo.store import ResultsStore


# ---------------------------------------------------------------------------------------------- fixtures
@pytest.fixture(scope="module")
def zoo(tmp_path_factory):
    """The sweep, `vlbias analyze` on it, and its HTML report (figures drawn by two worker processes)."""
    root = tmp_path_factory.mktemp("report")
    info = build_sweep(root)
    assert main(["sweep", str(info["config"])]) == 1  # one task fails by design: a vectors model lacks images
    assert main(["analyze", "--db", str(info["out"]), "--compare-by", "pretraining_dataset"]) == 0
    report = root / "html"
    assert main(["report", str(info["out"]), "--out", str(report), "--jobs", "2"]) == 0
    return {**info, "root": root, "report": report}


class Page(HTMLParser):
    """Links, images, ids, and the text inside content-warning <details> of one HTML page."""

    def __init__(self, text: str):
        super().__init__()
        self.links: list[str] = []
        self.images: list[str] = []
        self.ids: set[str] = set()
        self.cw_depth = 0
        self.stack: list[bool] = []
        self.images_outside_cw: list[str] = []
        self.text_outside_cw: list[str] = []
        self.text_inside_cw: list[str] = []
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if "id" in a:
            self.ids.add(a["id"])
        if tag == "a" and "href" in a:
            self.links.append(a["href"])
        if tag == "img":
            self.images.append(a["src"])
            if not self.cw_depth:
                self.images_outside_cw.append(a["src"])
        if tag == "details":
            cw = "cw" in (a.get("class") or "").split()
            self.stack.append(cw)
            self.cw_depth += cw

    def handle_endtag(self, tag):
        if tag == "details" and self.stack:
            self.cw_depth -= self.stack.pop()

    def handle_data(self, data):
        (self.text_inside_cw if self.cw_depth else self.text_outside_cw).append(data)


def pages_of(report: Path) -> dict[str, Page]:
    return {p.relative_to(report).as_posix(): Page(p.read_text(encoding="utf-8")) for p in report.rglob("*.html")}


def tables_of(html: str) -> list[list[list[str]]]:
    """Every <table> as rows of cell texts."""
    out = []
    for t in re.findall(r"<table>(.*?)</table>", html, flags=re.S):
        rows = []
        for tr in re.findall(r"<tr>(.*?)</tr>", t, flags=re.S):
            cells = re.findall(r"<t[dh][^>]*>(.*?)</t[dh]>", tr, flags=re.S)
            rows.append([re.sub(r"<[^>]+>", "", c).replace("&amp;", "&").strip() for c in cells])
        out.append(rows)
    return out


def db(zoo, sql: str) -> pd.DataFrame:
    return ResultsStore(zoo["out"]).query(sql)


# ---------------------------------------------------------------------------------------------- the sweep's report
def read_data(report: Path, stem: str) -> pd.DataFrame:
    """A data file of a report by its stem: CSV, or compressed Parquet for a long table."""
    [path] = [p for p in (report / "data").glob(f"{stem}.*") if p.suffix in (".csv", ".parquet")]
    return pd.read_csv(path) if path.suffix == ".csv" else pd.read_parquet(path)


def test_sweep_report_has_every_section_page_and_figure(zoo):
    report = zoo["report"]
    marker = json.loads((report / "report.json").read_text())
    assert marker["errors"] == [] and marker["kind"] == "sweep"
    pages = pages_of(report)
    for name in ("index.html", "eat.html", "zeroshot.html", "perception.html", "upstream.html", "methods.html"):
        assert name in pages
    model_pages = [p for p in pages if p.startswith("models/")]
    assert len(model_pages) == len(zoo["models"]) == 5
    figures = marker["figures"]
    for stem in ("eat-heatmap", "eat-forest", "mixed-model-coefficients", "bias-vs-accuracy"):
        assert f"figures/{stem}.png" in figures
    assert any(f.startswith("figures/zeroshot-comparison-") for f in figures)  # the model-group comparison
    assert any(f.endswith("level_curves_age.png") for f in figures)  # perception, per model
    assert any(f.endswith("/factor_effects.png") for f in figures)
    assert any("/share-labels-race+gender" in f for f in figures)  # zero-shot group bar charts, per model
    shown = {src for page in pages.values() for src in page.images}
    referenced = {re.sub(r"^(\.\./)+", "", s) for s in shown}
    assert referenced == set(figures)  # every figure drawn is shown, and drawn once (one file each)
    for name in pages:  # every figure links the data it draws
        for fig in re.findall(r"<figure>(.*?)</figure>", (report / name).read_text(), flags=re.S):
            assert re.search(r'href="(\.\./)*data/[^"]+\.(csv|parquet)"', fig), (name, fig[:200])
    from PIL import Image

    for f in figures:
        with Image.open(report / f) as im:
            assert im.format == "PNG" and im.width > 200 and im.height > 100


def test_numbers_on_the_pages_are_the_databases(zoo):
    from vlbias.plots.eat import covers_zero
    from vlbias.report.fmt import interval, pvalue

    report = zoo["report"]
    eat = db(zoo, 'SELECT model, test, "order", status, effect_size, ci_low, ci_high, p_value FROM eat.results')
    csv = pd.read_csv(report / "data" / "eat-results.csv")
    merged = eat.merge(csv, on=["model", "test", "order"], suffixes=("", "_csv"))
    assert len(merged) == len(eat) == 5 * 8
    pd.testing.assert_series_equal(merged["effect_size"], merged["effect_size_csv"], check_names=False)
    # each model page's table shows its own rows, formatted from the database values
    pages = {p.name: p for p in (report / "models").glob("*.html")}
    for model in zoo["models"]:
        mine = eat[eat["model"] == model]
        html = next(p.read_text() for n, p in pages.items() if f"<h1>{model}</h1>" in p.read_text())
        rows = next(t for t in tables_of(html) if t and "d [95% CI]" in t[0])
        header = rows[0]
        shown = {(r[header.index("test")], r[header.index("order")]): r for r in rows[1:]}
        assert len(shown) == len(mine) == 8
        assert "no contradiction. The permutation test holds the attribute sets A and B fixed" in html
        for r in mine.itertuples():
            cell = shown[(r.test, r.order)]
            d = cell[header.index("d [95% CI]")].rstrip("*†")
            assert d == interval(r.effect_size, r.ci_low, r.ci_high)
            # † where p < .05 beside an interval that covers 0 (the caption says why)
            assert cell[header.index("d [95% CI]")].endswith("†") == covers_zero(r.p_value, r.ci_low, r.ci_high)
            assert cell[header.index("p")] == pvalue(r.p_value)
    # the zero-shot gaps are the audit's disparity rows
    disp = db(
        zoo,
        "SELECT model, label, difference FROM zeroshot.disparity WHERE metric = 'top1_pct' "
        "AND kind = 'category' AND grouping <> 'all'",
    )
    shown = pd.read_csv(report / "data" / "zeroshot-disparity.csv")
    assert sorted(shown["difference"]) == sorted(disp["difference"]) and len(disp) == 4


def test_summary_leads_with_each_audits_headline_numbers(zoo):
    """The summary page opens with the headlines of each audit, before the metadata: per test the model with the
    largest |d| with its interval, the largest zero-shot gaps (behind the content warning), perception's top factor
    per model."""
    from vlbias.report.fmt import interval

    html = (zoo["report"] / "index.html").read_text()
    assert html.index('id="headlines"') < html.index('id="glance"') < html.index('id="models"')
    tables = tables_of(html)
    eat_rows = next(t for t in tables if t and t[0][:3] == ["test", "order", "largest |d|: model"])
    eat = db(zoo, "SELECT model, test, \"order\", effect_size, ci_low, ci_high FROM eat.results WHERE status = 'ok'")
    eat["abs_d"] = eat["effect_size"].abs()
    top = eat.loc[eat.groupby(["test", "order"])["abs_d"].idxmax()].sort_values("abs_d", ascending=False)
    assert len(eat_rows) - 1 == len(top) == 8
    from vlbias.report.fmt import model_labels

    labels = model_labels(zoo["models"])
    for shown, r in zip(eat_rows[1:], top.itertuples()):
        assert shown[:3] == [r.test, r.order, labels[r.model]]
        assert shown[3].rstrip("*†") == interval(r.effect_size, r.ci_low, r.ci_high)
    perception = next(t for t in tables if t and t[0][:3] == ["model", "dataset", "top factor"])
    fe = db(zoo, "SELECT model, dimension FROM perception.factor_effects WHERE scale = 'all scales' AND rank = 1")
    assert {(labels[m], d) for m, d in zip(fe["model"], fe["dimension"])} == {(r[0], r[2]) for r in perception[1:]}
    page = Page(html)
    inside = " ".join(page.text_inside_cw)
    assert "largest gaps between groups" in inside and "gap, pp [CI]" in inside  # zero-shot, behind the warning
    assert "largest gaps between groups" not in " ".join(page.text_outside_cw)


def test_a_comparison_within_families_has_one_figure_set_per_family(zoo, tmp_path):
    """`vlbias analyze --within FACT` compares per value of the fact: the report draws each value's comparison on
    its own figures (not every family's bars on one)."""
    sweep = tmp_path / "zoo"
    shutil.copytree(zoo["out"], sweep)
    path = sweep / "analysis" / "zeroshot_comparison.parquet"
    comp = pd.read_parquet(path)
    at = list(comp.columns).index("baseline") + 1
    families = []
    for family in ("ViT-B-32", "ViT-L-14"):
        part = comp.copy()
        part.insert(at, "family", family)
        part["difference"] += 10 if family == "ViT-L-14" else 0
        families.append(part)
    pd.concat(families, ignore_index=True).to_parquet(path, index=False)
    out = tmp_path / "report"
    assert main(["report", str(sweep), "--out", str(out), "--jobs", "1"]) == 0
    page = (out / "zeroshot.html").read_text()
    assert "Within family ViT-B-32" in page and "Within family ViT-L-14" in page
    figures = json.loads((out / "report.json").read_text())["figures"]
    folders = {f.split("/")[1] for f in figures if f.startswith("figures/zeroshot-comparison-")}
    assert {f.split("-birhane2024")[0] for f in folders} == {
        "zeroshot-comparison-family-ViT-B-32",
        "zeroshot-comparison-family-ViT-L-14",
    }


def test_summary_says_what_was_skipped_and_failed_and_why(zoo):
    html = (zoo["report"] / "index.html").read_text()
    tables = tables_of(html)
    failed = next(t for t in tables if t and t[0][-1] == "error")
    assert len(failed) == 2 and failed[1][1] == "perception" and "has no vector for" in failed[1][3]
    skipped = next(t for t in tables if t and t[0][-1] == "reason" and t[0][0] == "model")
    assert {(r[0], r[1]) for r in skipped[1:]} == {(MINILM, "perception"), (MINILM, "zeroshot")}
    assert all("has no image encoder" in r[3] for r in skipped[1:])
    inner = next(t for t in tables if t and t[0][:2] == ["audit", "reason"])
    assert ["eat", f"{MINILM} is a text-only model", "6", "1"] == inner[[r[0] for r in inner].index("eat")][:4]
    glance = re.search(r'id="glance">.*?<ul>(.*?)</ul>', html, flags=re.S).group(1)
    assert "5 model(s)" in glance and "15 task(s): 12 done, 1 failed, 2 skipped" in glance


def test_rerun_config_plans_exactly_the_tasks_that_ran(zoo):
    from vlbias.zoo.plan import load_config, plan

    config = load_config(zoo["report"] / "data" / "rerun.yaml")
    tasks = db(zoo, "SELECT task_id, model FROM tasks")
    assert {t.task_id for t in plan(config)} == set(tasks["task_id"])
    assert config.models == zoo["models"]
    catalogue = pd.read_csv(zoo["report"] / "data" / "catalogue.csv")
    assert set(catalogue["spec"]) == set(zoo["models"])
    methods = (zoo["report"] / "methods.html").read_text()
    needles = (
        "vlbias sweep",
        "data/rerun.yaml",
        "birhane2024",
        "scm",
        "mini-flowers",
        "PCG64",
        "A photo of a {w} person.",
        "trustworthy, friendly, honest",
    )  # templates and words, hash-verified
    for needle in needles:
        assert needle in methods


def test_offensive_labels_are_behind_a_content_warning(zoo):
    report = zoo["report"]
    assert (report / "CONTENT_WARNING.txt").read_text().startswith("CONTENT WARNING")
    for name, page in pages_of(report).items():
        outside = " ".join(page.text_outside_cw).lower()
        for label in ("gorilla", "chimpanzee", "orangutan", "suspicious person"):
            assert label not in outside, (name, label)
        zs_images = [s for s in page.images_outside_cw if "zeroshot" in s]
        assert zs_images == [], name
    zs = pages_of(report)["zeroshot.html"]
    assert any("gorilla" in t for t in zs.text_inside_cw) or zs.images  # the content is there, behind the click


def test_markdown_summary_draws_only_what_it_shows_with_the_same_figures(zoo, tmp_path):
    out = tmp_path / "md"
    assert main(["report", str(zoo["out"]), "--out", str(out), "--format", "md", "--jobs", "1"]) == 0
    md = (out / "report.md").read_text()
    assert not list(out.rglob("*.html"))
    for heading in (
        "# vlbias report",
        "## Association tests",
        "## Zero-shot",
        "## Perception",
        "## Upstream analysis",
        "## Methods",
    ):
        assert heading in md
    assert "<details><summary>⚠ Content warning" in md
    linked = re.findall(r"\]\(((?:figures|data)/[^)]+)\)", md)
    assert linked and all((out / link).is_file() for link in linked)
    figures = json.loads((out / "report.json").read_text())["figures"]
    assert "figures/eat-heatmap.png" in figures
    assert not any("level_curves" in f for f in figures)  # per-model figures are not in the Markdown summary
    html_figures = set(json.loads((zoo["report"] / "report.json").read_text())["figures"])
    # drawn serially here, by worker processes for the HTML report: the same pixels
    for f in figures:
        assert f in html_figures and (out / f).read_bytes() == (zoo["report"] / f).read_bytes(), f
    eat = db(zoo, "SELECT count(*) AS n FROM eat.results WHERE status = 'ok'")
    assert eat["n"][0] > 0 and "| test | order |" in md


def test_a_database_without_its_parts_gives_the_same_numbers(zoo, tmp_path):
    """The report reads each run's tables from its Parquet part; a results.duckdb copied alone gives the same data
    (read from the database rows of each task) and says what it lacks."""
    alone = tmp_path / "copy"
    alone.mkdir()
    shutil.copy(zoo["out"] / "results.duckdb", alone / "results.duckdb")
    out = tmp_path / "md"
    assert main(["report", str(alone / "results.duckdb"), "--out", str(out), "--format", "md"]) == 0
    assert not (alone / "report").exists() and not (alone / "parts").exists()  # nothing written beside the input
    md = (out / "report.md").read_text()
    assert "read from the database alone" in md
    for name in ("eat-results", "zeroshot-disparity", "perception-factor-effects", "mixed-model-fixed-effects"):
        a, b = read_data(out, name), read_data(zoo["report"], name)
        pd.testing.assert_frame_equal(
            a.sort_values(list(a.columns)).reset_index(drop=True),
            b.sort_values(list(b.columns)).reset_index(drop=True),
            obj=name,
            check_dtype=False,  # a string column read back from the database or from a part: the same text
        )


# ---------------------------------------------------------------------------------------------- one audit folder
def test_report_of_one_audit_output_folder(zoo, tmp_path):
    from tests.report_fixtures import EAT_TESTS

    vectors = next(m for m in zoo["models"] if m.startswith("vectors:"))
    tests = [str(zoo["root"] / f"{name}.yaml") for name in EAT_TESTS]
    run = tmp_path / "eat-run"
    args = ["eat", "--model", vectors, "--permutations", "500", "--n-bootstrap", "100", "--out", str(run)]
    for t in tests:
        args += ["--test-file", t]
    assert main(args) == 0
    zs = tmp_path / "zs-run"
    assert (
        main(
            ["zeroshot", "--model", vectors, "--dataset", f"cfd:{zoo['cfd']}", "--n-bootstrap", "20", "--out", str(zs)]
        )
        == 0
    )

    assert main(["report", str(run)]) == 0  # default: RESULTS/report
    report = run / "report"
    pages = pages_of(report)
    assert {"index.html", "eat.html", "methods.html"} <= set(pages) and "upstream.html" not in pages
    assert len([p for p in pages if p.startswith("models/")]) == 1
    marker = json.loads((report / "report.json").read_text())
    assert marker["kind"] == "audit" and marker["errors"] == []
    assert "figures/eat-heatmap.png" in marker["figures"] and "figures/eat-forest.png" in marker["figures"]
    from vlbias.zoo.plan import load_config, make_task, plan

    config = load_config(report / "data" / "rerun.yaml")
    [task] = plan(config)
    record = json.loads((run / "record.json").read_text())
    assert task.model == vectors and task.options_dict["permutations"] == 500 == record["options"]["permutations"]
    from vlbias.audits.registry import get_audit

    assert task == make_task(vectors, "eat", get_audit("eat").parse_options(task.options_dict).to_dict())

    assert main(["report", str(zs), "--out", str(tmp_path / "zs-report")]) == 0
    zpages = pages_of(tmp_path / "zs-report")
    assert "zeroshot.html" in zpages and zpages["zeroshot.html"].images
    assert zpages["zeroshot.html"].images_outside_cw == []


def _small_eat_run(root: Path) -> Path:
    """One EAT run of a `vectors:` model on one small word test (seconds)."""
    import numpy as np
    import yaml

    from tests.helpers import write_parquet_vectors

    words = {r: [f"{r.lower()}{i}" for i in range(4)] for r in "XYAB"}
    test = root / "t.yaml"
    test.write_text(yaml.safe_dump({r: {"name": f"set {r}", "words": w} for r, w in words.items()}), encoding="utf-8")
    keys = sum(words.values(), [])
    vectors = root / "v.parquet"
    write_parquet_vectors(vectors, keys, np.random.default_rng(0).normal(size=(len(keys), 8)).astype(np.float32))
    run = root / "eat-run"
    args = ["eat", "-m", f"vectors:{vectors}", "--test-file", str(test), "--permutations", "99"]
    assert main([*args, "--n-bootstrap", "20", "--out", str(run)]) == 0
    return run


def test_html_and_markdown_reports_never_replace_each_other(tmp_path, capsys):
    run = _small_eat_run(tmp_path)
    assert main(["report", str(run), "--jobs", "1"]) == 0
    assert main(["report", str(run), "--format", "md", "--jobs", "1"]) == 0
    html, md = run / "report", run / "report-md"
    assert (html / "index.html").is_file() and (md / "report.md").is_file()
    assert not (html / "report.md").exists() and not list(md.glob("*.html"))
    before = sorted(p.relative_to(html).as_posix() for p in html.rglob("*"))
    capsys.readouterr()
    for fmt, out in (("md", html), ("html", md)):
        assert main(["report", str(run), "--format", fmt, "--out", str(out), "--overwrite"]) == 2
        err = capsys.readouterr().err
        other, mine = ("HTML", "Markdown") if fmt == "md" else ("Markdown", "HTML")
        folder = "report-md" if fmt == "md" else "report"
        assert f"holds the {other} report; write the {mine} report to another folder (its default is " in err
        assert f"RESULTS/{folder})" in err
    assert sorted(p.relative_to(html).as_posix() for p in html.rglob("*")) == before
    assert main(["report", str(run), "--format", "md", "--overwrite", "--jobs", "1"]) == 0  # its own: replaced


def test_a_report_stays_small_and_keeps_every_number(tmp_path):
    """A perception run with the default 1,000 pairs per dimension (factor_pairs: 56,000 rows; its CSV in the
    report was 25 MB): no CSV of the report is longer than 5,000 rows; by default the run's large tables are linked
    where the run keeps them (the link resolves from the page, the summary says so), with --self-contained a long
    table is compressed Parquet with every value of the run's; the whole report is small either way."""

    from tests.perception_fixtures import planted_vectors, write_causalface
    from vlbias.datasets import load_dataset
    from vlbias.stimuli.perception import Vocabulary, load_control, load_lexicon, load_templates

    levels = {"age": (0.8, 2.6, 4.4), "smiling": (-2.5, 0.0, 3.0), "pose": (0.0, 3.0), "lighting": (-1.0, 3.0)}
    tree = write_causalface(tmp_path / "cf", seeds=(101, 202), levels=levels, size=64, uncorrected_smiling=False)
    table = load_dataset(f"causalface:{tree}").table
    vocab = Vocabulary([load_lexicon("scm"), load_lexicon("abc")], load_control(), load_templates(), "as-written")
    vectors = planted_vectors(tmp_path / "v.npz", table, vocab.prompt_set(), lambda row: 0.01 * (row.race == "black"))
    run = tmp_path / "run"
    args = ["perception", "-m", f"vectors:{vectors}", "-d", f"causalface:{tree}", "--n-bootstrap", "20"]
    assert main([*args, "--n-random-rankings", "20", "--k", "20", "--out", str(run)]) == 0
    pairs = pd.read_parquet(run / "factor_pairs.parquet")
    assert len(pairs) == 56_000
    sizes = {}
    for how in ("linked", "self-contained"):
        out = tmp_path / how
        flags = ["--self-contained"] if how == "self-contained" else []
        assert main(["report", str(run), "--out", str(out), "--jobs", "1", *flags]) == 0
        for f in (out / "data").glob("*.csv"):
            assert sum(1 for _ in f.open(encoding="utf-8")) - 1 <= 5_000, f.name
        page = (out / "perception.html").read_text()
        copies = [f for f in (out / "data").glob("*.parquet") if "factor_pairs" in f.name]
        marker = json.loads((out / "report.json").read_text())
        if how == "linked":
            assert not copies
            [href] = {h for h in re.findall(r'href="([^"]+)"', page) if h.endswith("factor_pairs.parquet")}
            assert (out / unquote(href)).resolve() == (run / "factor_pairs.parquet").resolve()
            assert str((run / "factor_pairs.parquet").resolve()) in marker["linked"]
            assert "Linked, not copied" in (out / "index.html").read_text()
        else:
            [stored] = copies
            pd.testing.assert_frame_equal(pd.read_parquet(stored), pairs)  # every number, as the run stored it
            assert "factor_pairs" in page and stored.name in page
            assert marker["linked"] == [] and "Linked, not copied" not in (out / "index.html").read_text()
        sizes[how] = sum(f.stat().st_size for f in out.rglob("*") if f.is_file())
    print(f"report of one perception run: {sizes}")
    assert sizes["linked"] < sizes["self-contained"] < 2_500_000, sizes  # 28 MB before Parquet and palette PNGs


# ---------------------------------------------------------------------------------------------- bad inputs
def _err(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(("vlbias: error:", "vlbias report: error:")), err
    return err[0]


def test_bad_inputs_are_one_line_errors_and_write_nothing(zoo, tmp_path, capsys):
    assert main(["report", str(tmp_path / "nowhere")]) == 2
    assert "not found" in _err(capsys)
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(["report", str(empty)]) == 2
    assert "is not a results database" in _err(capsys)
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "record.json").write_text("{not json")
    assert main(["report", str(broken)]) == 2
    assert "record.json cannot be read" in _err(capsys)
    (broken / "record.json").write_text('{"audit": "eat", "model": {"spec": "x"}, "options": {}}')
    assert main(["report", str(broken)]) == 2
    assert "no result tables" in _err(capsys)
    keep = tmp_path / "mine"
    keep.mkdir()
    (keep / "thesis.tex").write_text("precious")
    assert main(["report", str(zoo["out"]), "--out", str(keep)]) == 2
    assert "holds files vlbias did not write (thesis.tex)" in _err(capsys)
    assert (keep / "thesis.tex").read_text() == "precious"
    assert main(["report", str(zoo["out"]), "--out", str(zoo["out"])]) == 2
    assert "holds a vlbias sweep folder, not a report" in _err(capsys)
    assert main(["report", str(zoo["out"]), "--out", str(zoo["out"]), "--overwrite"]) == 2
    assert "holds a vlbias sweep folder, not a report" in _err(capsys)
    (tmp_path / "file").write_text("x")
    assert main(["report", str(zoo["out"]), "--out", str(tmp_path / "file")]) == 2
    assert "is a file" in _err(capsys)
    assert main(["report", str(zoo["out"]), "--format", "pdf"]) == 2
    assert "pdf" in _err(capsys)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["broken", "empty", "file", "mine"]


def test_a_failing_build_leaves_the_previous_report_whole(zoo, tmp_path, monkeypatch):
    import vlbias.report.build as build

    out = tmp_path / "again"
    shutil.copytree(zoo["report"], out)
    before = sorted(p.relative_to(out).as_posix() for p in out.rglob("*"))

    def boom(ctx):
        raise RuntimeError("planted failure while building")

    monkeypatch.setattr(build, "methods_section", boom)
    with pytest.raises(RuntimeError, match="planted"):
        build.build_report(zoo["out"], out, workers=1, overwrite=True)
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*")) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["again"]  # no temporary folder left beside it


# ---------------------------------------------------------------------------------------------- hostile names
#: names a hostile user gives a model file, test sets, labels, groups and folders
PAYLOADS = [
    "<script>alert(1)</script>",
    "<img src=x onerror=alert(1)>",
    "[x](javascript:alert(1))",
    '=HYPERLINK("http://evil","x")',
    "@SUM(1+1)",
    "+cmd",
    "-2+3",
]


@pytest.fixture(scope="module")
def hostile(tmp_path_factory):
    """An EAT run and a zero-shot run whose model file, folder, test, set names, class labels and groups are payloads,
    each reported as Markdown and as HTML."""
    import numpy as np
    import yaml

    from tests.faces_fixtures import make_manifest
    from tests.helpers import write_parquet_vectors

    root = tmp_path_factory.mktemp("hostile")
    home = root / "<script>alert(1)</script>"  # the folder path holds a payload too
    home.mkdir(parents=True)
    words = {r: [f"{r.lower()}{i}" for i in range(4)] for r in "XYAB"}
    test = {"title": PAYLOADS[1], "source": PAYLOADS[2]}
    test.update({r: {"name": n, "words": words[r]} for r, n in zip("XYAB", PAYLOADS[3:])})
    test_file = home / "[x](javascript:alert(1)).yaml"
    test_file.write_text(yaml.safe_dump(test), encoding="utf-8")
    faces = [{"path": f"{i}.jpg", "person": f"p{i // 2}", "group": PAYLOADS[4 + i % 3]} for i in range(6)]
    manifest = make_manifest(home / "faces", faces)
    (home / "classes.txt").write_text("\n".join(PAYLOADS[:4]) + "\n", encoding="utf-8")
    (home / "templates.txt").write_text("{c}\n", encoding="utf-8")
    keys = sum(words.values(), []) + PAYLOADS[:4] + [f["path"] for f in faces]
    vectors = home / "[x](javascript:alert(1)).parquet"
    write_parquet_vectors(vectors, keys, np.random.default_rng(0).normal(size=(len(keys), 8)).astype(np.float32))
    spec = f"vectors:{vectors}"
    eat = ["eat", "-m", spec, "--test-file", test_file, "--permutations", "99", "--n-bootstrap", "20"]
    assert main([str(a) for a in [*eat, "--out", home / "eat-run"]]) == 0
    zs = ["zeroshot", "-m", spec, "-d", f"manifest:{manifest}", "--classes", home / "classes.txt"]
    zs += ["--templates", home / "templates.txt", "--group-by", "group", "--n-bootstrap", "10", "--no-plots"]
    assert main([str(a) for a in [*zs, "--out", home / "zs-run"]]) == 0
    reports = {}
    for run in ("eat-run", "zs-run"):
        for fmt in ("md", "html"):
            out = root / f"{run}-{fmt}"
            assert main(["report", str(home / run), "--out", str(out), "--format", fmt, "--jobs", "1"]) == 0
            reports[run, fmt] = out
    return reports


class Tags(HTMLParser):
    """Every start tag with its attributes, and the visible text."""

    def __init__(self, html: str):
        super().__init__()
        self.tags: list[tuple[str, dict]] = []
        self.text: list[str] = []
        self.feed(html)

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data):
        self.text.append(data)

    def unsafe(self) -> list:
        """Scripts, frames, event handlers, and links or sources that are not the report's own files."""
        bad = []
        for tag, attrs in self.tags:
            if tag in ("script", "iframe", "object", "embed") or any(k.startswith("on") for k in attrs):
                bad.append((tag, attrs))
            for k in ("href", "src"):
                v = (attrs.get(k) or "").strip().lower()
                if v and not (tag == "link" and k == "href" and v.startswith("data:,")):  # the page's empty favicon
                    if ":" in v.split("/")[0] or v.startswith("//"):
                        bad.append((tag, attrs))
        return bad


def _rendered(md: str) -> Tags:
    """Markdown as CommonMark (with GFM tables) renders it with raw HTML allowed: as GitHub does before it sanitises,
    and as editors' previews, pandoc and static-site generators do."""
    from markdown_it import MarkdownIt

    return Tags(MarkdownIt("commonmark", {"html": True}).enable("table").render(md))


def test_markdown_report_shows_hostile_names_as_text(hostile):
    """No payload in a name, label or path becomes HTML, a link or an image in the Markdown report; each is shown
    as written."""
    for run in ("eat-run", "zs-run"):
        md = (hostile[run, "md"] / "report.md").read_text(encoding="utf-8")
        outside_code = re.sub(r"`[^`\n]*`", "", re.sub(r"(?ms)^(`{3,}).*?^\1$", "", md))
        for payload in PAYLOADS[:3]:
            assert payload not in outside_code, (run, payload)
        page = _rendered(md)
        assert page.unsafe() == [], run
        links = [a["href"] for t, a in page.tags if t == "a"] + [a["src"] for t, a in page.tags if t == "img"]
        assert links and all(re.fullmatch(r"(data|figures)/[\w.+-]+\.(csv|png)", h) for h in links), links
        shown = "".join(page.text)
        assert "vectors:[x](javascript:alert(1)).parquet" in shown and "<script>alert(1)</script>" in shown
        if run == "eat-run":
            assert f"{PAYLOADS[3]} vs {PAYLOADS[4]}" in shown and f"{PAYLOADS[5]} vs {PAYLOADS[6]}" in shown
        else:
            assert all(label in shown for label in PAYLOADS[:4])


def test_html_report_escapes_hostile_names_and_links_only_its_own_files(hostile):
    for run in ("eat-run", "zs-run"):
        pages = list(hostile[run, "html"].rglob("*.html"))
        assert pages
        for p in pages:
            page = Tags(p.read_text(encoding="utf-8"))
            assert page.unsafe() == [], p
        index = "".join(Tags((hostile[run, "html"] / "index.html").read_text(encoding="utf-8")).text)
        assert "vectors:[x](javascript:alert(1)).parquet" in index


def test_report_csvs_carry_no_formulas_and_numbers_stay_numbers(hostile):
    import csv

    for out in hostile.values():
        files = sorted((out / "data").glob("*.csv"))
        assert files
        for f in files:
            with open(f, newline="", encoding="utf-8") as fh:
                for row in csv.reader(fh):
                    for cell in row:
                        if cell[:1] and cell[0] in "=+-@\t\r":
                            float(cell)  # only numbers may start so (-0.58); anything else is a formula
    eat = pd.read_csv(hostile["eat-run", "md"] / "data" / "eat-results.csv")
    assert eat.loc[0, ["x_name", "y_name", "a_name", "b_name"]].tolist() == ["'" + p for p in PAYLOADS[3:]]
    assert eat["effect_size"].dtype == float and eat.loc[0, "effect_size"] < 0  # a negative number, kept a number
    disparity = pd.read_csv(hostile["zs-run", "md"] / "data" / "zeroshot-disparity.csv")
    assert '\'=HYPERLINK("http://evil","x")' in set(disparity["label"])
    groups = set(disparity["max_group"].dropna()) | set(disparity["min_group"].dropna())
    assert groups and groups <= {"'@SUM(1+1)", "'+cmd", "'-2+3"}
    assert disparity["difference"].dtype == float


def test_links_only_to_the_reports_own_files():
    """A link target that is not relative to the report or http(s) is shown as its text, in Markdown and HTML."""
    from vlbias.report import blocks as B
    from vlbias.report.build import _templates
    from vlbias.report.fmt import Table, md_text, safe_href

    for bad in ("javascript:alert(1)", " JavaScript:alert(1)", "java\tscript:x", "data:text/html,x", "//evil.org/x"):
        assert safe_href(bad) is None, bad
    assert safe_href("models/a b(1).html") == "models/a%20b%281%29.html"
    assert safe_href("https://example.org/x") == "https://example.org/x"
    t = Table(["model"], [["m"]], csv="javascript:alert(2)", links={(0, 0): "javascript:alert(3)"}, numeric=[False])
    blocks = [B.bullets([B.Link("click", "javascript:alert(1)"), B.Link("ok", "data/x.csv")]), B.table(t)]
    md = B.markdown(blocks)
    assert "javascript" not in md.replace(md_text("javascript:alert(2)"), "")
    assert "- click\n- [ok](data/x.csv)" in md and "Data: javascript:alert(2)" in md
    page = '{% from "blocks.html.j2" import render with context %}{{ render(blocks) }}'
    html = _templates().from_string(page).render(blocks=blocks, root="")
    assert "href" in html and "javascript" not in re.sub(r">[^<]*<", "><", html)
    assert '<a href="data/x.csv">ok</a>' in html and "<li>click</li>" in html


def test_markdown_text_escapes_what_markdown_and_html_read():
    from vlbias.report.blocks import md_code
    from vlbias.report.fmt import md_text

    assert md_text("<b>&amp;</b>") == r"\<b\>\&amp;\</b\>"
    assert md_text("![i](x) [l](y)") == r"!\[i\](x) \[l\](y)"
    assert md_text("# h") == r"\# h" and md_text("- i") == r"\- i" and md_text("12. x") == r"12\. x"
    assert md_text("-0.58", line_start=False) == "-0.58" and md_text("0.95", line_start=False) == "0.95"
    assert md_text("laion2b_s34b_b79k *x* _y_ ~~z~~") == r"laion2b_s34b_b79k \*x\* \_y\_ \~\~z\~\~"
    assert md_text("from `/a/<b>` and\n# more") == "from `/a/<b>` and # more"  # one line: no heading in it
    assert md_text("a ` b") == r"a \` b"
    assert md_code("x\n```\n<script>") == "````\nx\n```\n<script>\n````"


# ---------------------------------------------------------------------------------------------- small parts
def test_formatting_and_model_names():
    from vlbias.plots.eat import stars
    from vlbias.report.fmt import interval, model_labels, num, pvalue

    assert [stars(p) for p in (0.0009, 0.001, 0.009, 0.049, 0.05, float("nan"))] == ["***", "**", "**", "*", "", ""]
    assert interval(0.4213, 0.1, 0.7) == "+0.42 [+0.10, +0.70]" and interval(0.5, float("nan"), 1) == "+0.50"
    assert (num(1234567), num(0.012345), num(float("nan")), num(2.0)) == ("1,234,567", "0.0123", "–", "2")
    assert (pvalue(1e-6), pvalue(0.04567), pvalue(0.0)) == ("1.0e-06", "0.046", "0")
    labels = model_labels(["vectors:/a/m.parquet", "vectors:/b/m.parquet", OPENCLIP])
    assert labels[OPENCLIP] == OPENCLIP and len(set(labels.values())) == 3
    assert labels["vectors:/a/m.parquet"] == "vectors:m.parquet #1"


# ---------------------------------------------------------------------------------------------- in a browser
BROWSER_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
CHROMIUM = os.environ.get("VLBIAS_CHROMIUM", "/usr/bin/chromium")


def _browser_or_skip():
    """Debian's chromium through playwright; CI sets VLBIAS_REQUIRE_BROWSER=1, so a missing browser fails there."""
    why = None
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        why = "the playwright package is not installed"
    if why is None and not Path(CHROMIUM).is_file():
        why = f"no Chromium at {CHROMIUM} (apt-get install chromium)"
    if why:
        if os.environ.get("VLBIAS_REQUIRE_BROWSER") == "1":
            pytest.fail(f"the browser check is required here but {why}")
        pytest.skip(why)


def test_report_in_headless_chromium(zoo, tmp_path):
    """Every page loads without console errors, every image renders, every link between pages (and to data)
    resolves, nothing is fetched from the network; a screenshot of the association-test page is saved (to
    $VLBIAS_SCREENSHOT too, which is how docs/report.png is made)."""
    _browser_or_skip()
    from playwright.sync_api import sync_playwright

    report = zoo["report"].resolve()
    problems: list[str] = []
    requests: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=BROWSER_ARGS, headless=True)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.on("console", lambda m: problems.append(f"console {m.type}: {m.text}") if m.type == "error" else None)
            page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
            page.on("requestfailed", lambda r: problems.append(f"failed request: {r.url}"))
            page.on("request", lambda r: requests.append(r.url))
            ids: dict[str, set[str]] = {}
            links: list[tuple[str, str]] = []
            files = sorted(report.rglob("*.html"))
            for f in files:
                page.goto(f.as_uri(), wait_until="load")
                page.evaluate("document.querySelectorAll('details').forEach(d => d.open = true)")
                page.wait_for_function("[...document.images].every(i => i.complete)")
                broken = page.evaluate(
                    "[...document.images].filter(i => !(i.naturalWidth > 0)).map(i => i.getAttribute('src'))"
                )
                problems += [f"{f.name}: image does not render: {b}" for b in broken]
                ids[f.as_uri()] = set(page.evaluate("[...document.querySelectorAll('[id]')].map(e => e.id)"))
                links += [(f.as_uri(), h) for h in page.evaluate("[...document.links].map(a => a.href)")]
                if f.name == "eat.html":  # the heat map in view
                    shot = tmp_path / "report.png"
                    page.screenshot(path=str(shot), full_page=False)
                    if os.environ.get("VLBIAS_SCREENSHOT"):
                        shutil.copy(shot, os.environ["VLBIAS_SCREENSHOT"])
        finally:
            browser.close()
    assert len(files) == 11
    assert (tmp_path / "report.png").stat().st_size > 10_000
    csv_links = 0
    linked = set(json.loads((report / "report.json").read_text())["linked"])  # a run's large tables, in the results
    assert linked
    for source, href in links:
        assert href.startswith("file://"), (source, href)  # no link leaves the report but to the results' files
        target, _, anchor = href.partition("#")
        path = Path(unquote(target.removeprefix("file://")))
        assert path.is_file() and (report in path.parents or str(path) in linked), (source, href)
        if anchor:
            assert anchor in ids[target], (source, href)
        csv_links += path.suffix in (".csv", ".parquet")
    assert csv_links > 20
    assert all(u.startswith(("file://", "data:")) for u in requests), [u for u in requests if "file://" not in u]
    assert problems == []


def test_eat_methods_say_what_the_battery_and_the_preset_ran():
    """The methods page says the battery runs 24 of its 26 rows without instrument images, names the preset and the
    study's sampler; a run of tests alone says nothing of the battery."""
    from types import SimpleNamespace

    from vlbias.report.audits.eat import CSV_COLUMNS, methods

    ctx = SimpleNamespace(concat=lambda runs, name: pd.DataFrame())

    def text(options):
        run = SimpleNamespace(options=options, record=SimpleNamespace(options=options))
        return methods(ctx, [run])[0].text

    battery = text({"battery": "standard", "permutations": 1000000, "seed": 0})
    assert "26 rows per model, of which 24 run unless an instrument image set is supplied" in battery
    assert "All randomness from numpy's PCG64 seeded with 0" in battery and "Preset" not in battery
    preset = text({"preset": "ghate2025", "sampler": "ghate2025-legacy", "seed": 82804230, "tests": []})
    assert "legacy RandomState(82804230)" in preset and "Preset: ghate2025" in preset and "26 rows" in preset
    assert "26 rows" not in text({"tests": ["sent-weat1"]})
    # the effect-size CSV keeps the study's signed d beside d, where a run has it
    at = CSV_COLUMNS.index("effect_size")
    assert CSV_COLUMNS[at + 1 : at + 3] == ["reported_sign", "effect_size_reported"]


def test_eat_rows_show_the_random_init_null_and_mark_p_beside_an_interval_covering_0():
    """A run with null_seeds: each model page's table has the null's range and whether d is beyond it; a row whose
    p < .05 while its interval covers 0 is marked †, and the caption says why; no null, no such columns."""
    from vlbias.report.audits.eat import _rows

    base = {"x_name": "X", "y_name": "Y", "a_name": "A", "b_name": "B", "x_size": 8, "y_size": 8, "a_size": 8,
            "b_size": 8, "confidence": 0.95, "status": "ok", "reason": "", "n_permutations": 12870, "exact": True}  # fmt: skip
    rows = pd.DataFrame(
        [
            {**base, "test": "t1", "order": "all-text", "effect_size": 1.2, "ci_low": 0.4, "ci_high": 1.6,
             "p_value": 0.001, "null_d_low": -0.5, "null_d_high": 0.7, "beyond_null": True},
            {**base, "test": "t2", "order": "all-text", "effect_size": 0.6, "ci_low": -0.25, "ci_high": 1.53,
             "p_value": 0.027, "null_d_low": -0.4, "null_d_high": 0.9, "beyond_null": False},
        ]
    )  # fmt: skip
    t = _rows(rows).table
    col = {name: i for i, name in enumerate(t.columns)}
    assert [r[col["random-init null d"]] for r in t.rows] == ["[-0.50, +0.70]", "[-0.40, +0.90]"]
    assert [r[col["beyond null"]] for r in t.rows] == ["yes", "no"]
    assert [r[col["d [95% CI]"]][-1] for r in t.rows] == ["*", "†"]  # t2: p = .027, interval [-0.25, 1.53]
    assert "the bootstrap interval also resamples A and B" in t.caption and "random-init null" in t.caption
    plain = _rows(rows.drop(columns=["null_d_low", "null_d_high", "beyond_null"])).table
    assert "random-init null d" not in plain.columns and "beyond null" not in plain.columns


def test_results_lacking_a_column_the_report_reads_are_one_line(tmp_path, capsys):
    """Results written before a column was renamed (here: an EAT run without effect_size) are one line that says what
    to do, and no report folder."""
    run = _small_eat_run(tmp_path)
    results = pd.read_parquet(run / "results.parquet")
    results.rename(columns={"effect_size": "d"}).to_parquet(run / "results.parquet", index=False)
    capsys.readouterr()
    assert main(["report", str(run), "--out", str(tmp_path / "report")]) == 2
    err = _err(capsys)
    assert "lack the column 'effect_size'" in err and "run the eat audit again" in err, err
    assert not (tmp_path / "report").exists()
