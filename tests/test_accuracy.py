"""Downstream accuracy import: open_clip's results table, CLIP_benchmark JSON and built CSV, any CSV."""

from __future__ import annotations

import io
import json

import pandas as pd
import pytest

from vlbias.cli import main
from vlbias.errors import VlbiasError
from vlbias.zoo import accuracy as acc

# open_clip's docs/openclip_results.csv header, verbatim (values below are made up for the test)
OPENCLIP_HEADER = (
    "name,pretrained,Average perf. on 38 datasets,ImageNet 1k,Caltech-101,CIFAR-10,CIFAR-100,CLEVR Counts,"
    "CLEVR Distance,Country211,Describable Textures,EuroSAT,FGVC Aircraft,Food-101,GTSRB,ImageNet Sketch,"
    "ImageNet v2,ImageNet-A,ImageNet-O,ImageNet-R,KITTI Vehicle Distance,MNIST,ObjectNet,Oxford Flowers-102,"
    "Oxford-IIIT Pet,Pascal VOC 2007,PatchCamelyon,Rendered SST2,RESISC45,Stanford Cars,STL-10,SUN397,SVHN,"
    "Flickr,MSCOCO,WinoGAViL,iWildCam,Camelyon17,FMoW,Dollar Street,GeoDE"
)


def openclip_table(path, rows):
    n = len(OPENCLIP_HEADER.split(",")) - 2
    lines = [OPENCLIP_HEADER]
    for arch, tag, avg, in1k in rows:
        lines.append(",".join([arch, tag, str(avg), str(in1k)] + ["0.5"] * (n - 2)))
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


RUNS = [
    {
        "dataset": "cifar10",
        "model": "ViT-B-32-quickgelu",
        "pretrained": "laion400m_e32",
        "task": "zeroshot_classification",
        "metrics": {"acc1": 0.9074, "acc5": 0.998, "mean_per_class_recall": 0.9075},
        "language": "en",
    },
    {
        "dataset": "wds/imagenet1k",
        "model": "ViT-B-32",
        "pretrained": "openai",
        "task": "zeroshot_classification",
        "metrics": {"acc1": 0.63334, "acc5": 0.88778, "classnames": ["x"]},
        "language": "en",
    },
    {
        "dataset": "flickr30k",
        "model": "ViT-B-32",
        "pretrained": "openai",
        "task": "zeroshot_retrieval",
        "metrics": {"image_retrieval_recall@5": 0.8338, "text_retrieval_recall@5": 0.949},
        "language": "en",
    },
]


def write_runs(folder):
    folder.mkdir(parents=True, exist_ok=True)
    for i, run in enumerate(RUNS):
        (folder / f"benchmark_{i}.json").write_text(json.dumps(run), encoding="utf-8")
    return folder


def build_csv_like_clip_benchmark(folder, out):
    """What CLIP_benchmark's benchmark/build_csv.py does with the run files."""
    rows = []
    for path in sorted(folder.glob("*.json")):
        data = json.loads(path.read_text())
        row = {}
        row.update(data["metrics"])
        row.update(data)
        del row["metrics"]
        row.pop("classnames", None)
        rows.append(row)
    df = pd.DataFrame(rows)
    df["model_fullname"] = df["model"] + " " + df["pretrained"]
    df.to_csv(out, index=False)
    return out


def test_openclip_results_table(tmp_path):
    f = openclip_table(tmp_path / "openclip_results.csv", [("ViT-B-32", "laion2b_s34b_b79k", 0.569, 0.6656)])
    df = acc.read_accuracy(f)
    assert set(df["source_format"]) == {"openclip_results"} and len(df) == 39
    row = df.set_index("metric").loc[["average", "imagenet1k", "cifar10", "oxfordiiitpet"]]
    assert row["value"].tolist() == [0.569, 0.6656, 0.5, 0.5]
    assert set(df["spec"]) == {"openclip:ViT-B-32/laion2b_s34b_b79k"} and set(df["tag"]) == {"laion2b_s34b_b79k"}
    assert df["source_sha256"].str.len().eq(64).all()
    only = acc.read_accuracy(f, metrics=["average"])
    assert only["value"].tolist() == [0.569]


def test_clip_benchmark_json_and_built_csv_agree(tmp_path):
    runs = write_runs(tmp_path / "runs")
    from_json = acc.read_accuracy(runs)
    from_csv = acc.read_accuracy(build_csv_like_clip_benchmark(runs, tmp_path / "benchmark.csv"))
    key = ["spec", "metric", "value", "task"]
    a = from_json[key].sort_values(key).reset_index(drop=True)
    b = from_csv[key].sort_values(key).reset_index(drop=True)
    pd.testing.assert_frame_equal(a, b)
    metrics = set(a["metric"])
    assert {"cifar10/acc1", "imagenet1k/acc1", "flickr30k/image_retrieval_recall@5"} <= metrics  # wds/ dropped
    assert not any("classnames" in m for m in metrics)
    one = acc.read_accuracy(runs / "benchmark_0.json")
    assert one.set_index("metric").loc["cifar10/acc1", "value"] == 0.9074


def test_generic_csv_and_quickgelu_duplicates_join_their_pair(tmp_path):
    f = tmp_path / "mine.csv"
    f.write_text("spec,imagenet_acc,notes\nopenclip:ViT-B-32/openai,0.63,x\nhf:org/my-clip,0.5,y\n", encoding="utf-8")
    df = acc.read_accuracy(f)
    assert df[["spec", "metric", "value"]].values.tolist() == [
        ["openclip:ViT-B-32/openai", "imagenet_acc", 0.63],
        ["hf:org/my-clip", "imagenet_acc", 0.5],
    ]
    g = tmp_path / "arch_tag.csv"
    g.write_text("model,pretrained,score\nViT-B-32-quickgelu,laion400m_e32,0.7\n", encoding="utf-8")
    spec = acc.read_accuracy(g)["spec"].item()
    assert spec == "openclip:ViT-B-32-quickgelu/laion400m_e32"
    assert acc.canonical_spec(spec) == "openclip:ViT-B-32/laion400m_e32"
    assert acc.canonical_spec("openclip:ViT-B-32/openai") == "openclip:ViT-B-32/openai"


@pytest.mark.parametrize(
    "name, text, message",
    [
        ("a.csv", "foo,bar\n1,2\n", "no model column"),
        ("b.csv", "spec,acc\nopenclip:ViT-B-32/openai,0.5\nopenclip:RN50/openai,high\n", "row 3, column 'acc'"),
        ("c.csv", "spec,acc\nopenclip:ViT-B-32/openai,0.5\nopenclip:ViT-B-32/openai,0.6\n", "two values"),
        ("d.csv", "spec,note\nopenclip:ViT-B-32/openai,x\n", "no numeric metric"),
        ("e.json", "{not json", "line 1 is not valid JSON"),
        ("f.json", '{"dataset": "x"}', "not a CLIP_benchmark result"),
        ("g.csv", "spec,acc\nnope:x,0.5\n", "unknown backend"),
    ],
)
def test_bad_accuracy_files_are_one_line_errors(tmp_path, name, text, message):
    f = tmp_path / name
    f.write_text(text, encoding="utf-8")
    with pytest.raises(VlbiasError, match=message) as e:
        acc.read_accuracy(f)
    assert "\n" not in str(e.value)


def test_unknown_metric_and_missing_file(tmp_path):
    f = openclip_table(tmp_path / "r.csv", [("ViT-B-32", "openai", 0.5, 0.6)])
    with pytest.raises(VlbiasError, match="no metric 'imagenet'.*imagenet1k"):
        acc.read_accuracy(f, metrics=["imagenet"])
    with pytest.raises(VlbiasError, match="not found"):
        acc.read_accuracy(tmp_path / "missing.csv")


def test_pinned_download_is_fetched_once_and_checked(tmp_path, monkeypatch):
    import urllib.request

    body = openclip_table(tmp_path / "src.csv", [("RN50", "openai", 0.5, 0.6)]).read_bytes()
    calls = []

    class Response(io.BytesIO):
        def __enter__(self):
            return self

        def __exit__(self, *a):
            return False

    def fake_urlopen(url, timeout):
        calls.append(url)
        return Response(body)

    monkeypatch.setattr(urllib.request, "urlopen", fake_urlopen)
    path = acc.fetch_openclip_results(tmp_path / "cache")
    again = acc.fetch_openclip_results(tmp_path / "cache")
    assert path == again and len(calls) == 1 and path.read_bytes() == body
    assert calls[0] == acc.OPENCLIP_RESULTS_URL and acc.OPENCLIP_RESULTS_COMMIT in calls[0]
    assert acc.OPENCLIP_RESULTS_COMMIT[:12] in path.name

    monkeypatch.setattr(urllib.request, "urlopen", lambda url, timeout: Response(b"<html>not it</html>"))
    with pytest.raises(VlbiasError, match="did not return"):
        acc.fetch_openclip_results(tmp_path / "other")

    def offline(url, timeout):
        raise urllib.error.URLError("no network")

    monkeypatch.setattr(urllib.request, "urlopen", offline)
    with pytest.raises(VlbiasError, match="pass the file instead"):
        acc.fetch_openclip_results(tmp_path / "third")


def test_import_into_a_results_database(tmp_path, capsys):
    from vlbias.zoo.store import ResultsStore

    (tmp_path / "db" / "parts").mkdir(parents=True)
    f = openclip_table(
        tmp_path / "openclip_results.csv",
        [("ViT-B-32", "openai", 0.56, 0.63), ("ViT-B-32-quickgelu", "laion400m_e32", 0.52, 0.60)],
    )
    code = main(["results", "import-accuracy", str(f), "--db", str(tmp_path / "db"), "--metric", "average"])
    assert code == 0 and "imported 2 values (2 models, 1 metric)" in capsys.readouterr().err
    got = ResultsStore(tmp_path / "db").query("SELECT spec, metric, value FROM accuracy ORDER BY value")
    assert got.values.tolist() == [
        ["openclip:ViT-B-32-quickgelu/laion400m_e32", "average", 0.52],
        ["openclip:ViT-B-32/openai", "average", 0.56],
    ]
