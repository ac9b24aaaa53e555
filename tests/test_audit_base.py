"""The shared audit result: provenance stamping, atomic writes and read-back."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from vlbias.audits.base import AuditResult, RunRecord


def _result():
    rec = RunRecord(audit="demo", model={"spec": "vectors:x.txt", "identity": "abc"}, options={"n": 3}, seed=7)
    return AuditResult("demo", {"results": pd.DataFrame({"test": ["t1", "t2"], "effect_size": [0.5, -1.0]})}, rec)


def test_write_and_read_back(tmp_path):
    res = _result()
    res.write(tmp_path / "out")
    files = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert files == [".vlbias-output.json", "record.json", "results.csv", "results.parquet", "skipped.csv"]
    back = AuditResult.read(tmp_path / "out")
    assert back.record.config_hash == res.record.config_hash
    df = back.results
    assert list(df.columns[:6]) == ["model", "model_identity", "audit", "vlbias_version", "config_hash", "seed"]
    assert df["effect_size"].tolist() == [0.5, -1.0] and set(df["seed"]) == {7}


def test_a_lazy_read_reads_each_table_when_first_used_and_once(tmp_path, monkeypatch):
    res = _result()
    res.tables["items"] = pd.DataFrame({"item": ["a"]})
    res.write(tmp_path / "out")
    read = []
    real = pd.read_parquet
    monkeypatch.setattr(pd, "read_parquet", lambda path, **kw: read.append(path.stem) or real(path, **kw))
    back = AuditResult.read(tmp_path / "out", lazy=True)
    assert list(back.tables) == ["items", "results"] and len(back.tables) == 2
    assert "results" in back.tables and "skipped" not in back.tables and back.tables.get("skipped") is None
    assert read == []  # naming and counting the tables reads none
    assert back.results["effect_size"].tolist() == [0.5, -1.0]
    assert back.tables["results"] is back.results and read == ["results"]
    with pytest.raises(KeyError):
        back.tables["nothing"]
    assert read == ["results"]
    eager = AuditResult.read(tmp_path / "out")
    assert isinstance(eager.tables, dict) and read == ["results", "items", "results"]


def test_config_hash_tracks_what_determines_results():
    base = _result().record
    changed = [
        RunRecord(audit="demo", model={"spec": "vectors:x.txt", "identity": "abd"}, options={"n": 3}, seed=7),
        RunRecord(audit="demo", model={"spec": "vectors:x.txt", "identity": "abc"}, options={"n": 4}, seed=7),
        RunRecord(audit="demo", model={"spec": "vectors:x.txt", "identity": "abc"}, options={"n": 3}, seed=8),
    ]
    assert len({base.config_hash, *(c.config_hash for c in changed)}) == 4
    same = RunRecord(audit="demo", model={"spec": "other", "identity": "abc"}, options={"n": 3}, seed=7)
    assert same.config_hash == base.config_hash  # the identity, not the spell-out, names the model


def test_failed_write_leaves_old_output_untouched(tmp_path, monkeypatch):
    out = tmp_path / "out"
    _result().write(out)
    before = (out / "results.csv").read_text()
    bad = _result()
    bad.tables["broken"] = pd.DataFrame({"x": [object()]})  # cannot be written to Parquet
    import pyarrow as pa

    with pytest.raises(pa.ArrowException):
        bad.write(out, overwrite=True)
    assert (out / "results.csv").read_text() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]  # no temporary folder left behind


def test_options_are_immutable_so_defaults_are_never_shared_between_runs():
    import dataclasses

    from vlbias.audits.eat import EATOptions

    first = EATOptions.parse()
    with pytest.raises(dataclasses.FrozenInstanceError):
        first.tests = ("weat1",)
    with pytest.raises(AttributeError):
        first.tests.append("weat1")  # a tuple
    with pytest.raises(TypeError):
        first.image_sets["x"] = "y"  # a FrozenMap
    assert EATOptions.parse().to_dict() == first.to_dict()


def test_record_never_loads_weights(vitb32):
    from vlbias.models import load_model

    enc = load_model("openclip:ViT-B-32/random", cache=False)
    rec = enc.record()
    assert not enc.is_loaded
    assert rec == {"spec": "openclip:ViT-B-32/random", "backend": "openclip", "identity": enc.identity}
    full = vitb32.record()  # a loaded model gives its full metadata
    assert full["architecture"] == "ViT-B-32" and full["identity"] == vitb32.identity


def test_provenance_entries_are_read_by_kind_also_from_old_records():
    from vlbias.utils.provenance import entry, label, of_kind

    new = [entry("dataset", "cfd", spec="cfd:/data/CFD", version="CFD 3.0"), entry("protocol", "birhane2024")]
    old = [{"name": "dataset:cfd", "version": "CFD 3.0"}, {"name": "protocol:birhane2024", "version": "1"}]
    for stimuli in (new, old):
        (ds,) = of_kind(stimuli, "dataset")
        assert ds["name"] == "cfd" and ds["kind"] == "dataset" and ds["version"] == "CFD 3.0"
        assert [p["name"] for p in of_kind(stimuli, "protocol")] == ["birhane2024"]
        assert of_kind(stimuli, "lexicon") == []
    assert label(new[0]) == label(old[0]) == "cfd@CFD 3.0"
    with pytest.raises(ValueError):
        entry("weather", "sunny")


def _pandas_way(res, name, columns):
    """How parts were written before: the stamped frame, the constant columns inserted as pandas strings."""
    df = res.stamped(name)
    for col, value in columns.items():
        if col not in df.columns:
            df[col] = pd.Series([value] * len(df), index=df.index, dtype="string")
    return df


@pytest.mark.parametrize("layer", [None, -2])
@pytest.mark.parametrize("seed", [7, None])
@pytest.mark.parametrize("rows", [0, 1, 5])
def test_arrow_table_is_the_stamped_frame_without_pandas_inserts(tmp_path, seed, rows, layer):
    """The sweep writes parts through Arrow: the same schema, values and pandas dtypes as the stamped frame."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    rng = np.random.default_rng(rows)
    table = pd.DataFrame(
        {
            "test": [f"t{i}" for i in range(rows)],
            "effect_size": rng.normal(size=rows),
            "n": np.arange(rows, dtype=np.int64),
            "ok": [i % 2 == 0 for i in range(rows)],
            "maybe": pd.array([i if i % 2 else None for i in range(rows)], dtype="Int64"),
            "group": pd.Categorical([["a", "b"][i % 2] for i in range(rows)]),
            "note": [None if i % 2 else "x" for i in range(rows)],
            "audit": ["own value"] * rows,  # a stamp column the table has already: kept as it is
        },
        index=pd.RangeIndex(10, 10 + rows),
    )
    model = {"spec": "vectors:x.txt", "identity": "abc"}
    if layer is not None:  # a run on one layer: layer and reading stamped after the identity
        model |= {"layer": layer, "reading": "lens"}
    rec = RunRecord(audit="demo", model=model, options={}, seed=seed)
    res = AuditResult("demo", {"results": table}, rec, content_warning="offensive labels")
    assert ("layer" in res.stamped().columns) is (layer is not None)
    columns = {"task_id": "0123abcd", "dataset": None, "stimuli": "probe@1", "note": "not added"}
    got = res.arrow_table("results", columns)
    want = pa.Table.from_pandas(_pandas_way(res, "results", columns), preserve_index=False)
    assert got.schema.names == want.schema.names
    assert got.schema.types == want.schema.types
    assert got.to_pylist() == want.to_pylist()
    meta = json.loads(got.schema.metadata[b"pandas"])
    assert meta["columns"] == json.loads(want.schema.metadata[b"pandas"])["columns"]
    assert got.schema.metadata[b"vlbias.content_warning"] == b"offensive labels"
    pq.write_table(got, tmp_path / "got.parquet")
    _pandas_way(res, "results", columns).to_parquet(tmp_path / "want.parquet", index=False)
    pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / "got.parquet"), pd.read_parquet(tmp_path / "want.parquet"))
