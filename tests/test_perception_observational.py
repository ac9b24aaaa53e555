"""The perception probe on the real observational loaders (issue 4's CFD, FairFace and UTKFace layouts).

The probe's own tests use hand-built tables; this checks the two pieces together: each loader's table goes
through the probe, with a random-init model, and the loader's report reaches the probe's skipped list.
"""

from __future__ import annotations

import pytest

from tests.faces_fixtures import make_cfd, make_fairface, make_utkface
from vlbias.audits.perception import AUDIT
from vlbias.datasets import load_dataset

OPTS = {"n_bootstrap": 20, "n_random_rankings": 20, "k": 4}


@pytest.fixture(scope="module")
def datasets(tmp_path_factory):
    base = tmp_path_factory.mktemp("observational")
    return {
        "fairface": f"fairface:{make_fairface(base / 'fairface')['root']}",
        "utkface": f"utkface:{base / 'utkface' / 'UTKFace'}" if make_utkface(base / "utkface") else None,
        "cfd": f"cfd:{make_cfd(base / 'cfd')['root']}",
    }


@pytest.mark.parametrize("name", ["fairface", "utkface", "cfd"])
def test_real_loader_through_the_probe(datasets, small_clip, name):
    spec = datasets[name]
    ds = load_dataset(spec)
    res = AUDIT.run(small_clip, {"dataset": spec, **OPTS})
    scores = res.tables["scores"]
    assert len(scores) == len(ds.table)  # every loaded image scored, none silently dropped
    assert set(scores["race"]) == set(ds.table["race"]) and set(scores["gender"]) == {"female", "male"}
    assert "factor_effects" not in res.tables  # observational data: the pair experiment is noted, not run
    assert "analysis factors" in set(res.skipped["item"])
    assert {"variance_shares", "markedness", "skew"} <= set(res.tables)
    # what the loader could not match travels into the probe's skipped list
    for item in ds.report.as_frame()["item"]:
        assert item in set(res.skipped["item"])
    unknown = ds.table["race"].isna() | ds.table["gender"].isna()
    if unknown.any():  # FairFace's planted unknown race: scored, kept out of the groups, and said
        assert f"{int(unknown.sum())} image with unknown race or gender" in set(res.skipped["item"])
        assert res.tables["markedness"]["group"].notna().all()
