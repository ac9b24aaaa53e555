"""The report finds each audit's presentation through the audit registry: a test audit that names its own
presentation module (tests/probe_presentation.py) gets its page, model-page parts, figure and methods text from it;
an audit without one, and an audit this vlbias does not know, get the generic section."""

from __future__ import annotations

import importlib
import json
import re
from dataclasses import replace

import pandas as pd
import pytest
import yaml

from tests import probe_presentation
from tests.sweep_fixtures import IMAGEPROBE, TEXTPROBE, WORDS, write_stimuli
from vlbias.audits.registry import audit_names, get_audit, register, unregister
from vlbias.errors import VlbiasError
from vlbias.report import build_report
from vlbias.report.presentation import presentation
from vlbias.report.sections import other_section
from vlbias.zoo.plan import load_config
from vlbias.zoo.runner import run_sweep
from vlbias.zoo.store import ResultsStore


@pytest.fixture(scope="module")
def sweep(tmp_path_factory):
    """One `vectors:` model, `textprobe` presented by tests/probe_presentation.py, `imageprobe` with no
    presentation, on one dataset."""
    register(replace(TEXTPROBE, presentation="tests.probe_presentation"), replace=True)
    register(IMAGEPROBE, replace=True)
    root = tmp_path_factory.mktemp("presented")
    stim = write_stimuli(root)
    config = {
        "models": [f"vectors:{stim['vectors']}"],
        "audits": {"textprobe": {}, "imageprobe": {}},
        "datasets": [f"manifest:{stim['a'] / 'faces.csv'}"],
        "seed": 3,
        "encoder": {"device": "cpu", "cache_dir": str(root / "cache")},
    }
    (root / "zoo.yaml").write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    summary = run_sweep(load_config(root / "zoo.yaml"), out=root / "zoo")
    assert summary.total == 2 and [o.status for o in summary.outcomes] == ["done", "done"]
    yield root
    unregister("textprobe")
    unregister("imageprobe")


def test_an_audit_is_presented_by_the_module_its_spec_names(sweep):
    report = build_report(sweep / "zoo", sweep / "report", workers=1).out
    marker = json.loads((report / "report.json").read_text())
    assert marker["errors"] == [] and "textprobe.html" in marker["pages"]
    page = (report / "textprobe.html").read_text()
    assert f"<h1>{probe_presentation.TITLE}</h1>" in page and probe_presentation.INTRO in page
    assert "figures/probe-pairs.png" in marker["figures"] and 'src="figures/probe-pairs.png"' in page
    n_pairs = len(WORDS) * (len(WORDS) - 1) // 2
    assert len(pd.read_csv(report / "data" / "probe-results.csv")) == n_pairs
    index = (report / "index.html").read_text()
    assert f'<a href="textprobe.html">{probe_presentation.TITLE}</a>' in index  # navigation and contents
    [model_page] = (report / "models").glob("*.html")
    assert (
        'id="probe-' in model_page.read_text() and "a photo of a doctor / a photo of a nurse" in model_page.read_text()
    )
    methods = (report / "methods.html").read_text()
    section = methods[methods.index('id="m-textprobe"') : methods.index('id="m-imageprobe"')]
    assert "Probe method: the cosine of each pair of 1 run(s)" in section


def test_an_audit_without_a_presentation_gets_the_generic_section(sweep):
    report = build_report(sweep / "zoo", sweep / "report-generic", workers=1).out
    page = (report / "audit-imageprobe.html").read_text()
    assert "<h1>Audit imageprobe</h1>" in page
    [csv] = re.findall(r'href="(data/imageprobe-results-[^"]+\.csv)"', page)
    rows = ResultsStore(sweep / "zoo").query("SELECT image, prompt, cosine FROM imageprobe.results")
    shown = pd.read_csv(report / csv)[["image", "prompt", "cosine"]]
    pd.testing.assert_frame_equal(
        shown.sort_values(["image", "prompt"]).reset_index(drop=True),
        rows.sort_values(["image", "prompt"]).reset_index(drop=True),
    )
    assert presentation("imageprobe").section is other_section

    unregister("imageprobe")  # an audit this vlbias does not know: the generic section too
    try:
        report = build_report(sweep / "zoo", sweep / "report-unknown", workers=1).out
    finally:
        register(IMAGEPROBE, replace=True)
    assert "<h1>Audit imageprobe</h1>" in (report / "audit-imageprobe.html").read_text()
    assert "(an audit this vlbias does not know)" in (report / "index.html").read_text()


def test_the_packaged_audits_are_presented_through_their_specs():
    for name in ("eat", "zeroshot", "perception"):
        spec = get_audit(name)
        module = importlib.import_module(spec.presentation)
        shown = presentation(name)
        # the section is the audit's own, wrapped with its depth section (vlbias.report.depth.with_depth)
        assert shown.section.__wrapped__ is module.section and shown.methods is module.methods
        assert (shown.title, shown.page) == (module.TITLE, f"{name}.html")
    assert {"eat", "zeroshot", "perception"} <= set(audit_names())


def test_a_presentation_that_cannot_be_used_is_a_one_line_error():
    register(replace(TEXTPROBE, name="badprobe", presentation="tests.no_such_presentation"))
    try:
        with pytest.raises(
            VlbiasError, match=r"audit 'badprobe' names 'tests.no_such_presentation' as its presentation"
        ):
            presentation("badprobe")
    finally:
        unregister("badprobe")
